#include "core/ids.h"

#include <random>

#include "absl/strings/str_format.h"

namespace slipway {

std::string NewId(std::string_view prefix, int64_t unix_micros) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint32_t random = static_cast<uint32_t>(rng());
  return absl::StrFormat("%s-%012x%08x", std::string(prefix),
                         static_cast<uint64_t>(unix_micros / 1000), random);
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
