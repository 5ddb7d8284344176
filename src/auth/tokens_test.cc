#include "auth/tokens.h"

#include <sys/stat.h>

#include <map>
#include <memory>
#include <string>

#include "core/filesystem.h"
#include "core/hash.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/sqlite_store.h"
#include "testing/fake_clock.h"
#include "testing/temp_dir.h"

namespace slipway {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr int64_t kHour = 3'600'000'000;

class TokenServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = OpenSqliteStore(dir_.path(), &clock_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    tokens_ = std::make_unique<TokenService>(store_.get(), &clock_);
    ASSERT_TRUE(tokens_->Load().ok());
  }

  std::map<std::string, int64_t> Counts() {
    std::map<std::string, int64_t> counts;
    auto rows = store_->CountRows();
    EXPECT_TRUE(rows.ok()) << rows.status();
    for (const auto& [table, n] : *rows) counts[table] = n;
    return counts;
  }

  // The Unauthenticated message for `secret`; fails the test when valid.
  std::string Refusal(const std::string& secret) {
    absl::StatusOr<ApiToken> token = tokens_->Verify(secret);
    EXPECT_EQ(token.status().code(), absl::StatusCode::kUnauthenticated)
        << token.status();
    return std::string(token.status().message());
  }

  TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<TokenService> tokens_;
};

TEST_F(TokenServiceTest, CreatedTokenVerifiesAndOnlyItsHashIsStored) {
  auto issued = tokens_->Create("ci", Role::kOperator, 0, "token tok-x");
  ASSERT_TRUE(issued.ok()) << issued.status();
  EXPECT_TRUE(IsWellFormedToken(issued->secret)) << issued->secret;
  EXPECT_EQ(issued->token.role, Role::kOperator);
  EXPECT_EQ(issued->token.expires_at, 0);

  auto verified = tokens_->Verify(issued->secret);
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_EQ(verified->id, issued->token.id);
  EXPECT_EQ(verified->name, "ci");
  auto header = tokens_->Authenticate("Bearer " + issued->secret);
  ASSERT_TRUE(header.ok()) << header.status();

  auto records = store_->ListTokens();
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 1u);
  EXPECT_EQ((*records)[0].secret_sha256, Sha256Hex(issued->secret));
  EXPECT_EQ((*records)[0].created_by, "token tok-x");
  // Nowhere in the database files (the WAL included).
  for (const char* file : {"slipway.db", "slipway.db-wal"}) {
    const std::string path = JoinPath(dir_.path(), file);
    if (!LocalFilesystem()->Exists(path)) continue;
    auto bytes = LocalFilesystem()->ReadFile(path);
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    EXPECT_EQ(bytes->find(issued->secret), std::string::npos) << file;
  }

  // A second service over the same store knows the token.
  TokenService reloaded(store_.get(), &clock_);
  ASSERT_TRUE(reloaded.Load().ok());
  EXPECT_TRUE(reloaded.Verify(issued->secret).ok());
}

TEST_F(TokenServiceTest, EachBadTokenSaysWhatIsWrong) {
  auto good = tokens_->Create("ci", Role::kViewer, 2 * kHour, "server");
  ASSERT_TRUE(good.ok());
  const auto before = Counts();

  EXPECT_THAT(Refusal("slw_1234"), HasSubstr("malformed API token"));
  EXPECT_THAT(Refusal(""), HasSubstr("malformed API token"));
  std::string upper = good->secret;
  upper[10] = 'G';
  EXPECT_THAT(Refusal(upper), HasSubstr("malformed API token"));

  std::string other = good->secret;
  other.back() = other.back() == '0' ? '1' : '0';
  const std::string unknown = Refusal(other);
  EXPECT_THAT(unknown, HasSubstr("unknown API token"));
  EXPECT_THAT(unknown, HasSubstr("slipway tokens create"));
  EXPECT_THAT(unknown, Not(HasSubstr(other)));

  auto none = tokens_->Authenticate("");
  EXPECT_EQ(none.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(none.status().message()),
              HasSubstr("Authorization: Bearer"));
  auto basic = tokens_->Authenticate("Basic dXNlcjpwYXNz");
  EXPECT_THAT(std::string(basic.status().message()),
              HasSubstr("not a bearer token"));

  clock_.Advance(2 * kHour);
  const std::string expired = Refusal(good->secret);
  EXPECT_THAT(expired, HasSubstr("API token 'ci'"));
  EXPECT_THAT(expired, HasSubstr("expired at"));
  EXPECT_THAT(expired, Not(HasSubstr(good->secret)));

  auto ops = tokens_->Create("ops", Role::kOperator, 0, "server");
  ASSERT_TRUE(ops.ok());
  ASSERT_TRUE(tokens_->Revoke(ops->token.id).ok());
  const std::string revoked = Refusal(ops->secret);
  EXPECT_THAT(revoked, HasSubstr("API token 'ops'"));
  EXPECT_THAT(revoked, HasSubstr("was revoked at"));

  auto again = tokens_->Revoke(ops->token.id);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(tokens_->Revoke("tok-nope").status().code(),
            absl::StatusCode::kNotFound);
  // Refused tokens changed nothing; the one created and revoked did.
  auto after = Counts();
  EXPECT_EQ(after["tokens"], before.at("tokens") + 1);
}

TEST_F(TokenServiceTest, ExpiryIsExactOnTheClock) {
  auto issued = tokens_->Create("short", Role::kAdmin, kHour, "server");
  ASSERT_TRUE(issued.ok());
  EXPECT_EQ(issued->token.expires_at, clock_.NowMicros() + kHour);
  clock_.Advance(kHour - 1);
  EXPECT_TRUE(tokens_->Verify(issued->secret).ok());
  clock_.Advance(1);
  EXPECT_FALSE(tokens_->Verify(issued->secret).ok());
}

TEST_F(TokenServiceTest, RefusesBadNamesAndLifetimes) {
  EXPECT_EQ(
      tokens_->Create("bad name", Role::kViewer, 0, "server").status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(tokens_->Create("x", Role::kViewer, -5, "server").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(store_->ListTokens()->empty());
}

TEST_F(TokenServiceTest, FirstAdminTokenIsWrittenOnceOwnerOnly) {
  const std::string path = JoinPath(dir_.path(), kAdminTokenFile);
  auto wrote = tokens_->WriteFirstAdminToken(path);
  ASSERT_TRUE(wrote.ok()) << wrote.status();
  EXPECT_TRUE(*wrote);
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto text = LocalFilesystem()->ReadFile(path);
  ASSERT_TRUE(text.ok());
  ASSERT_FALSE(text->empty());
  const std::string secret = text->substr(0, text->size() - 1);
  auto token = tokens_->Verify(secret);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->role, Role::kAdmin);
  EXPECT_EQ(token->created_by, "server");

  auto again = tokens_->WriteFirstAdminToken(path);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  EXPECT_EQ(*LocalFilesystem()->ReadFile(path), *text);
}

TEST(RoleTest, NamesParseAndOrder) {
  for (Role r :
       {Role::kViewer, Role::kOperator, Role::kApprover, Role::kAdmin}) {
    EXPECT_EQ(*ParseRole(RoleName(r)), r);
  }
  EXPECT_THAT(std::string(ParseRole("root").status().message()),
              HasSubstr("viewer, operator, approver, admin"));
  EXPECT_TRUE(RoleAllows(Role::kAdmin, Role::kOperator));
  EXPECT_TRUE(RoleAllows(Role::kApprover, Role::kOperator));
  EXPECT_FALSE(RoleAllows(Role::kViewer, Role::kOperator));
}

TEST(TokenLifetimeTest, ParsesUnitsAndRefusesTheRest) {
  EXPECT_EQ(*ParseTokenLifetime("90m"), 90 * 60'000'000LL);
  EXPECT_EQ(*ParseTokenLifetime("12h"), 12 * kHour);
  EXPECT_EQ(*ParseTokenLifetime("30d"), 30 * 24 * kHour);
  EXPECT_EQ(*ParseTokenLifetime("2w"), 14 * 24 * kHour);
  for (const char* bad : {"", "d", "0d", "-1d", "1y", "10", "1.5h", "3651d",
                          "99999999999999999w"}) {
    EXPECT_EQ(ParseTokenLifetime(bad).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

}  // namespace
}  // namespace slipway
