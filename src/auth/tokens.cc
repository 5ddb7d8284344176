#include "auth/tokens.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <utility>

#include "core/filesystem.h"
#include "core/hash.h"
#include "core/ids.h"
#include "core/logging.h"
#include "core/status.h"

namespace slipway {
namespace {

constexpr std::string_view kTokenPrefix = "slw_";
constexpr size_t kSecretBytes = 32;
constexpr int64_t kMicrosPerMinute = 60'000'000;
constexpr int64_t kMaxLifetimeMicros = 3650 * 24 * 60 * kMicrosPerMinute;

std::string Hex(const unsigned char* bytes, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kDigits[bytes[i] >> 4]);
    out.push_back(kDigits[bytes[i] & 0xf]);
  }
  return out;
}

absl::StatusOr<std::string> NewSecret() {
  unsigned char bytes[kSecretBytes];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    return absl::InternalError(
        "cannot draw random bytes for a token (OpenSSL RAND_bytes failed)");
  }
  return std::string(kTokenPrefix) + Hex(bytes, sizeof(bytes));
}

std::string Describe(const ApiToken& token) {
  return "API token '" + token.name + "' (" + token.id + ")";
}

absl::StatusOr<ApiToken> FromRecord(const TokenRecord& r) {
  absl::StatusOr<Role> role = ParseRole(r.role);
  if (!role.ok()) {
    return absl::DataLossError("stored token '" + r.id + "' has role '" +
                               r.role +
                               "', which this slipway does not know; "
                               "upgrade slipway");
  }
  return ApiToken{r.id,         r.name,       *role,       r.created_at,
                  r.expires_at, r.revoked_at, r.created_by};
}

absl::Status Errno(const std::string& what, const std::string& path) {
  return absl::FailedPreconditionError(
      what + " '" + path + "': " + std::strerror(errno) +
      "; check that the data directory is writable");
}

// Writes `text` to `path` readable by the owner only: a temporary file
// created 0600, synced, then renamed over `path`.
absl::Status WriteOwnerOnlyFile(const std::string& path,
                                const std::string& text) {
  const std::string temp = path + ".tmp";
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                  S_IRUSR | S_IWUSR);
  if (fd < 0) return Errno("cannot create", temp);
  // The umask cannot widen 0600, but an existing file keeps its mode.
  bool ok = ::fchmod(fd, S_IRUSR | S_IWUSR) == 0;
  size_t written = 0;
  while (ok && written < text.size()) {
    ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) written += static_cast<size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  absl::Status status = ok ? absl::OkStatus() : Errno("cannot write", temp);
  ::close(fd);
  if (status.ok() && ::rename(temp.c_str(), path.c_str()) != 0) {
    status = Errno("cannot rename into place", path);
  }
  if (!status.ok()) {
    ::unlink(temp.c_str());
    return status;
  }
  size_t slash = path.rfind('/');
  return LocalFilesystem()->SyncDir(
      slash == std::string::npos ? "." : path.substr(0, slash));
}

}  // namespace

bool IsWellFormedToken(std::string_view secret) {
  if (secret.size() != kTokenPrefix.size() + 2 * kSecretBytes ||
      secret.substr(0, kTokenPrefix.size()) != kTokenPrefix) {
    return false;
  }
  for (char c : secret.substr(kTokenPrefix.size())) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

absl::StatusOr<int64_t> ParseTokenLifetime(std::string_view text) {
  const absl::Status invalid = absl::InvalidArgumentError(
      "token lifetime '" + std::string(text) +
      "' is not a duration; give a whole number with m (minutes), h "
      "(hours), d (days) or w (weeks), such as 90m, 12h, 30d, at most "
      "3650d");
  if (text.size() < 2) return invalid;
  int64_t unit = 0;
  switch (text.back()) {
    case 'm':
      unit = kMicrosPerMinute;
      break;
    case 'h':
      unit = 60 * kMicrosPerMinute;
      break;
    case 'd':
      unit = 24 * 60 * kMicrosPerMinute;
      break;
    case 'w':
      unit = 7 * 24 * 60 * kMicrosPerMinute;
      break;
    default:
      return invalid;
  }
  std::string_view digits = text.substr(0, text.size() - 1);
  int64_t count = 0;
  auto [end, ec] =
      std::from_chars(digits.data(), digits.data() + digits.size(), count);
  if (ec != std::errc() || end != digits.data() + digits.size() || count < 1 ||
      count > kMaxLifetimeMicros / unit) {
    return invalid;
  }
  return count * unit;
}

TokenService::TokenService(Store* store, Clock* clock)
    : store_(store), clock_(clock) {}

absl::Status TokenService::Load() {
  absl::MutexLock write(&write_mu_);
  ASSIGN_OR_RETURN(std::vector<TokenRecord> records, store_->ListTokens());
  std::vector<Entry> entries;
  for (const TokenRecord& r : records) {
    ASSIGN_OR_RETURN(ApiToken token, FromRecord(r));
    entries.push_back(Entry{std::move(token), r.secret_sha256});
  }
  absl::MutexLock lock(&mu_);
  tokens_ = std::move(entries);
  return absl::OkStatus();
}

absl::StatusOr<IssuedToken> TokenService::Issue(
    const std::string& name, Role role, int64_t lifetime_micros,
    const std::string& created_by) const {
  if (!IsValidName(name)) {
    return absl::InvalidArgumentError(
        "token name '" + name +
        "' is not valid; use 1 to 63 characters of letters, digits, '_', "
        "'.' and '-', starting with a letter or digit");
  }
  if (lifetime_micros < 0 || lifetime_micros > kMaxLifetimeMicros) {
    return absl::InvalidArgumentError(
        "token lifetime must be between 1 minute and 3650 days, or none");
  }
  const int64_t now = clock_->NowMicros();
  ASSIGN_OR_RETURN(std::string secret, NewSecret());
  IssuedToken issued;
  issued.secret = std::move(secret);
  issued.token = ApiToken{NewId("tok", now),
                          name,
                          role,
                          now,
                          lifetime_micros == 0 ? 0 : now + lifetime_micros,
                          0,
                          created_by};
  return issued;
}

absl::Status TokenService::Add(const IssuedToken& issued) {
  const ApiToken& t = issued.token;
  const std::string digest = Sha256Hex(issued.secret);
  RETURN_IF_ERROR(store_->AddToken(
      TokenRecord{t.id, t.name, std::string(RoleName(t.role)), digest,
                  t.created_at, t.expires_at, t.revoked_at, t.created_by}));
  absl::MutexLock lock(&mu_);
  tokens_.push_back(Entry{t, digest});
  return absl::OkStatus();
}

absl::StatusOr<IssuedToken> TokenService::Create(
    const std::string& name, Role role, int64_t lifetime_micros,
    const std::string& created_by) {
  ASSIGN_OR_RETURN(IssuedToken issued,
                   Issue(name, role, lifetime_micros, created_by));
  absl::MutexLock write(&write_mu_);
  RETURN_IF_ERROR(Add(issued));
  LogInfo("auth.token_created", {{"id", issued.token.id},
                                 {"name", name},
                                 {"role", RoleName(role)},
                                 {"created_by", created_by}});
  return issued;
}

absl::StatusOr<bool> TokenService::WriteFirstAdminToken(
    const std::string& path) {
  absl::MutexLock write(&write_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (!tokens_.empty()) return false;
  }
  ASSIGN_OR_RETURN(IssuedToken issued,
                   Issue("admin", Role::kAdmin, 0, "server"));
  RETURN_IF_ERROR(WriteOwnerOnlyFile(path, issued.secret + "\n"));
  RETURN_IF_ERROR(Add(issued));
  LogInfo("auth.admin_token_written",
          {{"path", path}, {"id", issued.token.id}});
  return true;
}

absl::StatusOr<ApiToken> TokenService::Authenticate(
    std::string_view authorization) const {
  if (authorization.empty()) {
    return absl::UnauthenticatedError(
        "no API token: send the header 'Authorization: Bearer <token>' (the "
        "slipway CLI sends $SLIPWAY_TOKEN, else admin.token from the data "
        "directory; `slipway tokens create` makes more)");
  }
  constexpr std::string_view kScheme = "bearer ";
  std::string scheme(authorization.substr(0, kScheme.size()));
  for (char& c : scheme) c = static_cast<char>(std::tolower(c));
  if (scheme != kScheme) {
    return absl::UnauthenticatedError(
        "the Authorization header is not a bearer token; send "
        "'Authorization: Bearer <token>'");
  }
  std::string_view secret = authorization.substr(kScheme.size());
  while (!secret.empty() && secret.front() == ' ') secret.remove_prefix(1);
  while (!secret.empty() && secret.back() == ' ') secret.remove_suffix(1);
  return Verify(secret);
}

absl::StatusOr<ApiToken> TokenService::Verify(std::string_view secret) const {
  if (!IsWellFormedToken(secret)) {
    return absl::UnauthenticatedError(
        "malformed API token: a Slipway token is 'slw_' followed by 64 hex "
        "digits, as `slipway tokens create` prints it; check that it was "
        "copied whole");
  }
  const std::string digest = Sha256Hex(secret);
  absl::ReaderMutexLock lock(&mu_);
  // Every digest is compared, in constant time, whatever matches.
  const Entry* found = nullptr;
  for (const Entry& entry : tokens_) {
    const bool same = entry.secret_sha256.size() == digest.size() &&
                      CRYPTO_memcmp(entry.secret_sha256.data(), digest.data(),
                                    digest.size()) == 0;
    found = same ? &entry : found;
  }
  if (found == nullptr) {
    return absl::UnauthenticatedError(
        "unknown API token: this server has no token with that secret (it "
        "may belong to another data directory, or have been mistyped); ask "
        "an admin for one (`slipway tokens create`)");
  }
  const ApiToken& token = found->token;
  if (token.revoked_at != 0) {
    return absl::UnauthenticatedError(
        Describe(token) + " was revoked at " +
        FormatTimestamp(token.revoked_at) +
        "; use another token, or ask an admin for a new one (`slipway "
        "tokens create`)");
  }
  if (token.expires_at != 0 && clock_->NowMicros() >= token.expires_at) {
    return absl::UnauthenticatedError(
        Describe(token) + " expired at " + FormatTimestamp(token.expires_at) +
        "; ask an admin for a new one (`slipway tokens create --expires "
        "DURATION`)");
  }
  return token;
}

std::vector<ApiToken> TokenService::List() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<ApiToken> list;
  list.reserve(tokens_.size());
  for (const Entry& entry : tokens_) list.push_back(entry.token);
  return list;
}

std::string_view TokenService::State(const ApiToken& token) const {
  if (token.revoked_at != 0) return "revoked";
  if (token.expires_at != 0 && clock_->NowMicros() >= token.expires_at) {
    return "expired";
  }
  return "active";
}

absl::StatusOr<ApiToken> TokenService::Revoke(const std::string& id) {
  absl::MutexLock write(&write_mu_);
  ASSIGN_OR_RETURN(TokenRecord record,
                   store_->RevokeToken(id, clock_->NowMicros()));
  ASSIGN_OR_RETURN(ApiToken revoked, FromRecord(record));
  {
    absl::MutexLock lock(&mu_);
    for (Entry& entry : tokens_) {
      if (entry.token.id == id) entry.token.revoked_at = revoked.revoked_at;
    }
  }
  LogInfo("auth.token_revoked", {{"id", id}, {"name", revoked.name}});
  return revoked;
}

}  // namespace slipway
