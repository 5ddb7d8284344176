#include "core/ids.h"

#include <algorithm>
#include <random>

namespace slipway {
namespace {

// `value`'s lowest `digits` hex digits, lowercase, zero-padded.
void AppendHex(uint64_t value, int digits, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = digits - 1; i >= 0; --i) {
    out->push_back(kHex[(value >> (4 * i)) & 0xf]);
  }
}

}  // namespace

// Every predict answer carries a new id: formatted by hand, not with
// StrFormat, which cost about 1% of a single-row request's CPU.
std::string NewId(std::string_view prefix, int64_t unix_micros) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const uint32_t random = static_cast<uint32_t>(rng());
  std::string id;
  id.reserve(prefix.size() + 21);
  id.append(prefix);
  id.push_back('-');
  // Milliseconds fit 12 hex digits until the year 10889.
  AppendHex(static_cast<uint64_t>(unix_micros / 1000), 12, &id);
  AppendHex(random, 8, &id);
  return id;
}

std::string ShadowLoggedId(std::string_view logged_id) {
  static constexpr std::string_view kShadow = "~shadow";
  const size_t slash = std::min(logged_id.find('/'), logged_id.size());
  std::string id(logged_id.size() + kShadow.size(), '\0');
  logged_id.copy(id.data(), slash);
  kShadow.copy(id.data() + slash, kShadow.size());
  logged_id.copy(id.data() + slash + kShadow.size(), std::string_view::npos,
                 slash);
  return id;
}

std::string_view LoggedRequestId(std::string_view logged_id) {
  return logged_id.substr(0, logged_id.find_first_of("/~"));
}

std::optional<int64_t> IdMillis(std::string_view id) {
  const size_t dash = id.rfind('-');
  if (dash == std::string_view::npos || id.size() - dash - 1 != 20) {
    return std::nullopt;
  }
  int64_t millis = 0;
  for (size_t i = dash + 1; i < id.size(); ++i) {
    const char c = id[i];
    int digit;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else {
      return std::nullopt;
    }
    if (i < dash + 13) millis = millis * 16 + digit;
  }
  return millis;
}

bool IsValidName(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9');
  };
  if (!alnum(name[0])) return false;
  for (char c : name) {
    if (!alnum(c) && c != '_' && c != '-' && c != '.') return false;
  }
  return true;
}

}  // namespace slipway
