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

TEST(IdsTest, MillisecondsThenRandomInLowercaseHex) {
  const std::string id = NewId("req", int64_t{0x123456789abc} * 1000 + 999);
  ASSERT_EQ(id.size(), 4u + 20u);
  EXPECT_EQ(id.substr(0, 16), "req-123456789abc");
  EXPECT_EQ(NewId("", 0).substr(0, 13), "-000000000000");
  for (char c : id.substr(16)) {
    EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << id;
  }
  EXPECT_NE(NewId("req", 0), NewId("req", 0));
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

TEST(IdsTest, IdMillisReadsTheTimeNewIdWrote) {
  const int64_t micros = 1'764'248'317'123'456;
  EXPECT_EQ(IdMillis(NewId("req", micros)), micros / 1000);
  EXPECT_EQ(IdMillis(NewId("run-x", 0)), 0);
  for (const char* other : {"r1", "req-", "req-018bcfe568000000000",
                            "req-018bcfe56800000000001",
                            "req-018BCFE5680000000001",
                            "req-018bcfe5680000000001/3"}) {
    EXPECT_FALSE(IdMillis(other).has_value()) << other;
  }
}

TEST(IdsTest, ShadowAndRowIdsKeepTheRequestAndItsTime) {
  const std::string id = NewId("req", 1'700'000'000'123'456);
  EXPECT_EQ(ShadowLoggedId(id), id + "~shadow");
  EXPECT_EQ(ShadowLoggedId(id + "/7"), id + "~shadow/7");
  for (const std::string& logged :
       {id, id + "/7", id + "~shadow", id + "~shadow/7"}) {
    EXPECT_EQ(LoggedRequestId(logged), id) << logged;
    EXPECT_EQ(IdMillis(LoggedRequestId(logged)), 1'700'000'000'123) << logged;
  }
}

}  // namespace
}  // namespace slipway
