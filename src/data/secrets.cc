#include "data/secrets.h"

#include <cctype>
#include <cstdlib>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace slipway {
namespace {

constexpr std::string_view kEnvPrefix = "env:";
constexpr std::string_view kMask = "***";

void ReplaceAll(std::string& text, std::string_view needle) {
  if (needle.empty()) return;
  size_t pos = 0;
  while ((pos = text.find(needle, pos)) != std::string::npos) {
    text.replace(pos, needle.size(), kMask);
    pos += kMask.size();
  }
}

// Masks the value following each "password=" (any case): up to the next
// '&' or whitespace, or a whole single-quoted libpq value.
void MaskPasswordKeywords(std::string& text) {
  constexpr std::string_view kKey = "password=";
  size_t pos = 0;
  while (true) {
    size_t found = std::string::npos;
    for (size_t i = pos; i + kKey.size() <= text.size(); ++i) {
      bool match = true;
      for (size_t k = 0; k < kKey.size(); ++k) {
        if (std::tolower(static_cast<unsigned char>(text[i + k])) != kKey[k]) {
          match = false;
          break;
        }
      }
      if (match) {
        found = i;
        break;
      }
    }
    if (found == std::string::npos) return;
    const size_t start = found + kKey.size();
    size_t end = start;
    if (end < text.size() && text[end] == '\'') {
      ++end;
      while (end < text.size() && text[end] != '\'') {
        if (text[end] == '\\' && end + 1 < text.size()) ++end;
        ++end;
      }
      if (end < text.size()) ++end;  // closing quote
    } else {
      while (end < text.size() && text[end] != '&' && text[end] != ' ' &&
             text[end] != '\t' && text[end] != '\n') {
        ++end;
      }
    }
    text.replace(start, end - start, kMask);
    pos = start + kMask.size();
  }
}

}  // namespace

bool IsEnvReference(std::string_view value) {
  return value.substr(0, kEnvPrefix.size()) == kEnvPrefix;
}

absl::StatusOr<std::string> ResolveSecret(std::string_view value,
                                          std::string_view referenced_by) {
  if (!IsEnvReference(value)) return std::string(value);
  const std::string name(value.substr(kEnvPrefix.size()));
  if (name.empty()) {
    return absl::InvalidArgumentError(
        "\"env:\" names no environment variable (referenced by " +
        std::string(referenced_by) + "); write env:NAME");
  }
  const char* resolved = std::getenv(name.c_str());
  if (resolved == nullptr) {
    return absl::InvalidArgumentError("environment variable " + name +
                                      " is not set (referenced by " +
                                      std::string(referenced_by) + ")");
  }
  return std::string(resolved);
}

std::string Redact(std::string_view text, std::string_view secret) {
  std::string out(text);
  if (secret.empty()) return out;
  ReplaceAll(out, secret);
  ReplaceAll(out, PercentEncode(secret, /*upper=*/true));
  ReplaceAll(out, PercentEncode(secret, /*upper=*/false));
  return out;
}

std::string RedactConnectionString(std::string_view connection) {
  std::string out(connection);
  const size_t scheme = out.find("://");
  if (scheme != std::string::npos) {
    const size_t authority = scheme + 3;
    size_t authority_end = out.find_first_of("/?#", authority);
    if (authority_end == std::string::npos) authority_end = out.size();
    // The last '@' ends the user info: a password may itself hold '@'.
    const size_t at = out.rfind('@', authority_end);
    if (at != std::string::npos && at >= authority) {
      const size_t colon = out.find(':', authority);
      if (colon != std::string::npos && colon < at) {
        out.replace(colon + 1, at - colon - 1, kMask);
      }
    }
  }
  MaskPasswordKeywords(out);
  return out;
}

std::string PercentEncode(std::string_view s, bool upper) {
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(digits[c >> 4]);
      out.push_back(digits[c & 15]);
    }
  }
  return out;
}

}  // namespace slipway
