#include "core/ids.h"

#include "gtest/gtest.h"

namespace slipway {
namespace {

TEST(IdsTest, IdsSortByTime) {
  std::string a = NewId("run", 1000000);
  std::string b = NewId("run", 2000000);
  EXPECT_LT(a, b);
  EXPECT_EQ(a.substr(0, 4), "run-");
  EXPECT_EQ(a.size(), 4u + 20u);
}

TEST(IdsTest, ValidNames) {
  EXPECT_TRUE(IsValidName("churn"));
  EXPECT_TRUE(IsValidName("churn_v2.1-a"));
  EXPECT_FALSE(IsValidName(""));
  EXPECT_FALSE(IsValidName("../x"));
  EXPECT_FALSE(IsValidName("a/b"));
  EXPECT_FALSE(IsValidName("-a"));
  EXPECT_FALSE(IsValidName(std::string(64, 'a')));
}

}  // namespace
}  // namespace slipway
