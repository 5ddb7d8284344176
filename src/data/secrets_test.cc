#include "data/secrets.h"

#include <cstdlib>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slipway {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(ResolveSecretTest, LiteralValueIsReturnedAsIs) {
  auto value = ResolveSecret("postgresql://db/x", "postgres connector url");
  ASSERT_TRUE(value.ok());
  EXPECT_EQ(*value, "postgresql://db/x");
}

TEST(ResolveSecretTest, EnvReferenceReadsTheVariable) {
  setenv("SLIPWAY_SECRETS_TEST_SET", "s3cr3t", 1);
  auto value = ResolveSecret("env:SLIPWAY_SECRETS_TEST_SET", "x");
  ASSERT_TRUE(value.ok());
  EXPECT_EQ(*value, "s3cr3t");
  EXPECT_TRUE(IsEnvReference("env:SLIPWAY_SECRETS_TEST_SET"));
  EXPECT_FALSE(IsEnvReference("s3cr3t"));
}

TEST(ResolveSecretTest, UnsetVariableNamesItAndTheSetting) {
  unsetenv("SLIPWAY_SECRETS_TEST_UNSET");
  auto value =
      ResolveSecret("env:SLIPWAY_SECRETS_TEST_UNSET", "postgres connector url");
  ASSERT_EQ(value.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(value.status().message()),
            "environment variable SLIPWAY_SECRETS_TEST_UNSET is not set "
            "(referenced by postgres connector url)");
}

TEST(ResolveSecretTest, EnvWithoutNameIsRefused) {
  auto value = ResolveSecret("env:", "notify secret");
  ASSERT_EQ(value.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(value.status().message()),
              HasSubstr("referenced by notify secret"));
}

TEST(RedactTest, MasksRawAndPercentEncodedSecret) {
  EXPECT_EQ(Redact("login p@ss/1 failed, again p@ss/1", "p@ss/1"),
            "login *** failed, again ***");
  EXPECT_EQ(Redact("postgresql://u:p%40ss%2F1@h/db", "p@ss/1"),
            "postgresql://u:***@h/db");
  EXPECT_EQ(Redact("postgresql://u:p%40ss%2f1@h/db", "p@ss/1"),
            "postgresql://u:***@h/db");
  EXPECT_EQ(Redact("nothing here", ""), "nothing here");
}

TEST(RedactConnectionStringTest, MasksEveryPasswordForm) {
  EXPECT_EQ(RedactConnectionString("postgresql://app:pw@db:5432/x"),
            "postgresql://app:***@db:5432/x");
  // The last '@' before the path ends the user info.
  EXPECT_EQ(RedactConnectionString("postgresql://app:p@w@db/x"),
            "postgresql://app:***@db/x");
  EXPECT_EQ(RedactConnectionString("postgresql://app@db/x?password=pw&a=1"),
            "postgresql://app@db/x?password=***&a=1");
  EXPECT_EQ(RedactConnectionString("host=db password='p w\\'x' user=app"),
            "host=db password=*** user=app");
  EXPECT_EQ(RedactConnectionString("host=db PASSWORD=pw user=app"),
            "host=db PASSWORD=*** user=app");
  EXPECT_EQ(RedactConnectionString("postgresql://app@db:5432/x"),
            "postgresql://app@db:5432/x");
  EXPECT_THAT(RedactConnectionString("postgresql://app:hunter2@db/x"),
              Not(HasSubstr("hunter2")));
}

}  // namespace
}  // namespace slipway
