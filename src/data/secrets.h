// Secrets in configuration: a value written as "env:NAME" is read from the
// environment variable NAME at the moment it is needed, so passwords and
// connection URLs never sit in app specs, the store or run records. Literal
// values are accepted too (for local development).
//
// Connectors keep the resolved values only in memory and pass every message
// they produce (Status, log line, description) through Redact() /
// RedactConnectionString(), so a secret never leaves the process in text.
//
// Thread safety: the functions are safe to call concurrently (getenv is only
// read).
#ifndef SLIPWAY_DATA_SECRETS_H_
#define SLIPWAY_DATA_SECRETS_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace slipway {

// True when `value` has the form "env:NAME".
bool IsEnvReference(std::string_view value);

// "env:NAME" -> the value of $NAME; anything else -> `value` itself.
// `referenced_by` names the setting for the error, e.g. "postgres connector
// url": InvalidArgument "environment variable NAME is not set (referenced by
// postgres connector url)". "env:" with no name is InvalidArgument too.
absl::StatusOr<std::string> ResolveSecret(std::string_view value,
                                          std::string_view referenced_by);

// `text` with every occurrence of `secret` (raw, and percent-encoded as it
// appears inside URLs) replaced by "***". An empty secret changes nothing.
std::string Redact(std::string_view text, std::string_view secret);

// A connection string with its password masked as "***": the user-info
// password of a URL ("postgresql://app:pw@host/db" ->
// "postgresql://app:***@host/db"), a "password=" query parameter, and a
// "password=" keyword of a libpq key/value string ("host=h password='pw'").
std::string RedactConnectionString(std::string_view connection);

// Percent-encodes everything but RFC 3986's unreserved characters, with
// uppercase (or lowercase) hex digits.
std::string PercentEncode(std::string_view s, bool upper = true);

}  // namespace slipway

#endif  // SLIPWAY_DATA_SECRETS_H_
