// TokenService: the API tokens that guard the control plane (and the
// predict and infer endpoints of apps whose spec says `endpoint.auth:
// token`).
//
// A token is "slw_" followed by 64 hex digits (32 bytes from OpenSSL's
// RAND_bytes). Its secret is shown once, when it is created; the store keeps
// only its SHA-256 (store/store.h TokenRecord). Verification hashes the
// presented secret and compares the digest with every known token's digest
// in constant time (CRYPTO_memcmp over each, no early exit), then checks
// revocation and expiry on the injected clock.
//
// The service keeps every token in memory (read by Load, updated by its own
// Create, Revoke and WriteFirstAdminToken), so a verification costs no
// store query; it is therefore the only writer of its store's tokens.
//
// Errors: Authenticate and Verify answer Unauthenticated with a message that
// says what was wrong (no token, not a bearer token, malformed, unknown,
// revoked, expired) and what to do, and never contain the secret.
// Ownership: `store` and `clock` are borrowed and must outlive the service.
// Thread safety: safe for concurrent use; verifications share a reader lock
// and are not held up by a store write.
#ifndef SLIPWAY_AUTH_TOKENS_H_
#define SLIPWAY_AUTH_TOKENS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "auth/role.h"
#include "core/clock.h"
#include "store/store.h"

namespace slipway {

// The file in the data directory that holds the first admin token.
inline constexpr char kAdminTokenFile[] = "admin.token";

struct ApiToken {
  std::string id;  // "tok-..."
  std::string name;
  Role role = Role::kViewer;
  int64_t created_at = 0;  // unix micros
  int64_t expires_at = 0;  // 0: never
  int64_t revoked_at = 0;  // 0: not revoked
  std::string created_by;  // "server", "token <id>"
};

// A token just created: its secret exists only here.
struct IssuedToken {
  ApiToken token;
  std::string secret;
};

class TokenService {
 public:
  TokenService(Store* store, Clock* clock);

  // Reads every token from the store (DataLoss for a stored role this
  // binary does not know).
  absl::Status Load();

  // Creates a token named `name` (IsValidName) with `role`, expiring
  // `lifetime_micros` from now (0: never), recorded as created by
  // `created_by`.
  absl::StatusOr<IssuedToken> Create(const std::string& name, Role role,
                                     int64_t lifetime_micros,
                                     const std::string& created_by);

  // The token an `Authorization` header value ("Bearer slw_...") names.
  absl::StatusOr<ApiToken> Authenticate(std::string_view authorization) const;
  // The token whose secret is `secret`, if it is valid now.
  absl::StatusOr<ApiToken> Verify(std::string_view secret) const;

  // Every token (revoked and expired ones too), oldest first; no secrets.
  std::vector<ApiToken> List() const;
  // "revoked", "expired" or "active", now.
  std::string_view State(const ApiToken& token) const;

  // Revokes token `id`: NotFound for an unknown id, FailedPrecondition when
  // already revoked.
  absl::StatusOr<ApiToken> Revoke(const std::string& id);

  // First start: when no token exists yet, creates an admin token named
  // "admin" and writes its secret to `path` (mode 0600, replaced
  // atomically) before storing it, so a stored admin token always has its
  // file. Returns whether it wrote one.
  absl::StatusOr<bool> WriteFirstAdminToken(const std::string& path);

 private:
  struct Entry {
    ApiToken token;
    std::string secret_sha256;
  };

  absl::StatusOr<IssuedToken> Issue(const std::string& name, Role role,
                                    int64_t lifetime_micros,
                                    const std::string& created_by) const;
  // Stores `issued` and adds it to the tokens in memory.
  absl::Status Add(const IssuedToken& issued)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);

  Store* const store_;
  Clock* const clock_;
  // Serializes changes (store write, then the copy in memory), so the
  // reader lock is never held across a store write.
  absl::Mutex write_mu_;
  mutable absl::Mutex mu_ ABSL_ACQUIRED_AFTER(write_mu_);
  std::vector<Entry> tokens_ ABSL_GUARDED_BY(mu_);
};

// A token lifetime: a positive whole number with a unit, "90m", "12h",
// "30d" or "2w", as microseconds; at most 10 years. InvalidArgument naming
// the accepted forms otherwise.
absl::StatusOr<int64_t> ParseTokenLifetime(std::string_view text);

// True when `secret` has the form of a Slipway token ("slw_" + 64 lowercase
// hex digits).
bool IsWellFormedToken(std::string_view secret);

}  // namespace slipway

#endif  // SLIPWAY_AUTH_TOKENS_H_
