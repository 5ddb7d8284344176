#include "pipeline/cron.h"

#include <ctime>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slipway {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int64_t kSecond = 1'000'000;

// "2024-02-28 23:55" (UTC) as unix micros, through libc's own calendar.
int64_t Utc(const std::string& text) {
  std::tm tm{};
  EXPECT_NE(strptime(text.c_str(), "%Y-%m-%d %H:%M", &tm), nullptr) << text;
  return static_cast<int64_t>(timegm(&tm)) * kSecond;
}

// Unix micros as "2024-02-28 23:55" (UTC), seconds shown only when not 0.
std::string Show(int64_t micros) {
  std::time_t seconds = static_cast<std::time_t>(micros / kSecond);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[32];
  std::strftime(text, sizeof(text),
                tm.tm_sec == 0 && micros % kSecond == 0 ? "%Y-%m-%d %H:%M"
                                                        : "%Y-%m-%d %H:%M:%S",
                &tm);
  return text;
}

CronSchedule MustParse(const std::string& expression) {
  absl::StatusOr<CronSchedule> schedule = CronSchedule::Parse(expression);
  EXPECT_TRUE(schedule.ok()) << expression << ": " << schedule.status();
  return *schedule;
}

// The first `count` fire times after `from`.
std::vector<std::string> Fires(const std::string& expression,
                               const std::string& from, int count) {
  CronSchedule schedule = MustParse(expression);
  std::vector<std::string> fires;
  int64_t t = Utc(from);
  for (int i = 0; i < count; ++i) {
    t = schedule.NextFireAfter(t);
    fires.push_back(Show(t));
  }
  return fires;
}

std::string ParseError(const std::string& expression) {
  absl::StatusOr<CronSchedule> schedule = CronSchedule::Parse(expression);
  EXPECT_FALSE(schedule.ok()) << expression;
  EXPECT_EQ(schedule.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(schedule.status().message());
}

TEST(CronTest, DailyFireCrossesTheDayBoundary) {
  EXPECT_THAT(
      Fires("55 23 * * *", "2024-03-10 12:00", 3),
      ElementsAre("2024-03-10 23:55", "2024-03-11 23:55", "2024-03-12 23:55"));
}

TEST(CronTest, NextFireIsStrictlyAfterEvenOnAFireMinute) {
  CronSchedule schedule = MustParse("55 23 * * *");
  EXPECT_EQ(Show(schedule.NextFireAfter(Utc("2024-03-10 23:55"))),
            "2024-03-11 23:55");
  EXPECT_EQ(Show(schedule.NextFireAfter(Utc("2024-03-10 23:55") - 1)),
            "2024-03-10 23:55");
  EXPECT_EQ(
      Show(schedule.NextFireAfter(Utc("2024-03-10 23:55") + 59 * kSecond)),
      "2024-03-11 23:55");
}

TEST(CronTest, HourListSpansMidnightAndTheNewYear) {
  EXPECT_THAT(
      Fires("*/20 22,23,0,1 * * *", "2024-12-31 21:59", 13),
      ElementsAre("2024-12-31 22:00", "2024-12-31 22:20", "2024-12-31 22:40",
                  "2024-12-31 23:00", "2024-12-31 23:20", "2024-12-31 23:40",
                  "2025-01-01 00:00", "2025-01-01 00:20", "2025-01-01 00:40",
                  "2025-01-01 01:00", "2025-01-01 01:20", "2025-01-01 01:40",
                  "2025-01-01 22:00"));
  // The same hours written as two ranges.
  EXPECT_EQ(Fires("*/20 22-23,0-1 * * *", "2024-12-31 21:59", 13),
            Fires("*/20 22,23,0,1 * * *", "2024-12-31 21:59", 13));
}

TEST(CronTest, DayOfMonthSkipsMonthsThatLackIt) {
  EXPECT_THAT(Fires("0 0 31 * *", "2024-01-31 00:00", 4),
              ElementsAre("2024-03-31 00:00", "2024-05-31 00:00",
                          "2024-07-31 00:00", "2024-08-31 00:00"));
  EXPECT_THAT(
      Fires("15 6 1 */3 *", "2024-11-15 00:00", 3),
      ElementsAre("2025-01-01 06:15", "2025-04-01 06:15", "2025-07-01 06:15"));
}

TEST(CronTest, LeapDayFiresOnlyInLeapYears) {
  EXPECT_THAT(Fires("0 12 29 2 *", "2024-03-01 00:00", 2),
              ElementsAre("2028-02-29 12:00", "2032-02-29 12:00"));
  // 2100 is not a leap year: eight years between leap days.
  EXPECT_THAT(Fires("0 12 29 2 *", "2096-03-01 00:00", 1),
              ElementsAre("2104-02-29 12:00"));
  // Every day at the end of February, leap or not.
  EXPECT_THAT(Fires("0 0 28-29 2 *", "2023-02-27 00:00", 4),
              ElementsAre("2023-02-28 00:00", "2024-02-28 00:00",
                          "2024-02-29 00:00", "2025-02-28 00:00"));
}

TEST(CronTest, DayOfWeekAloneRestrictsDays) {
  // 2024-05-01 is a Wednesday.
  EXPECT_THAT(Fires("0 9 * * 1", "2024-05-01 00:00", 2),
              ElementsAre("2024-05-06 09:00", "2024-05-13 09:00"));
  EXPECT_THAT(Fires("0 9 * * 1-5", "2024-05-03 10:00", 2),
              ElementsAre("2024-05-06 09:00", "2024-05-07 09:00"));
  // 0 and 7 are both Sunday.
  EXPECT_EQ(Fires("0 0 * * 7", "2024-05-01 00:00", 3),
            Fires("0 0 * * 0", "2024-05-01 00:00", 3));
  EXPECT_THAT(Fires("0 0 * * 7", "2024-05-01 00:00", 1),
              ElementsAre("2024-05-05 00:00"));
}

TEST(CronTest, BothDayFieldsRestrictedMeansEither) {
  // The 13th or any Friday (2024-10-13 is a Sunday).
  EXPECT_THAT(Fires("0 9 13 * 5", "2024-10-01 00:00", 4),
              ElementsAre("2024-10-04 09:00", "2024-10-11 09:00",
                          "2024-10-13 09:00", "2024-10-18 09:00"));
  // February 30th never comes, but Mondays do.
  EXPECT_THAT(Fires("0 0 30 2 1", "2024-02-01 00:00", 2),
              ElementsAre("2024-02-05 00:00", "2024-02-12 00:00"));
}

TEST(CronTest, ADayFieldStartingWithStarLeavesTheOtherToRestrict) {
  // Vixie cron: "*/2" counts as unrestricted, so both must match: odd days
  // of September 2024 that are Mondays (2, 9, 16, 23, 30 are Mondays).
  EXPECT_THAT(Fires("0 9 */2 * 1", "2024-09-01 00:00", 2),
              ElementsAre("2024-09-09 09:00", "2024-09-23 09:00"));
}

TEST(CronTest, LastFireAtOrBeforeLooksBackAcrossDaysMonthsAndYears) {
  CronSchedule nightly = MustParse("30 23,0 * * *");
  EXPECT_EQ(Show(nightly.LastFireAtOrBefore(Utc("2024-03-01 00:10"))),
            "2024-02-29 23:30");
  EXPECT_EQ(Show(nightly.LastFireAtOrBefore(Utc("2024-03-01 00:30"))),
            "2024-03-01 00:30");
  EXPECT_EQ(Show(nightly.LastFireAtOrBefore(Utc("2024-03-01 00:30") +
                                            59 * kSecond + 999'999)),
            "2024-03-01 00:30");
  EXPECT_EQ(Show(nightly.LastFireAtOrBefore(Utc("2024-03-01 00:30") - 1)),
            "2024-02-29 23:30");
  EXPECT_EQ(
      Show(MustParse("0 0 31 * *").LastFireAtOrBefore(Utc("2024-05-15 00:00"))),
      "2024-03-31 00:00");
  EXPECT_EQ(
      Show(
          MustParse("0 12 29 2 *").LastFireAtOrBefore(Utc("2028-01-01 00:00"))),
      "2024-02-29 12:00");
  EXPECT_EQ(
      Show(MustParse("0 9 13 * 5").LastFireAtOrBefore(Utc("2024-10-17 00:00"))),
      "2024-10-13 09:00");
}

TEST(CronTest, NextAndLastAgreeOnEveryMinuteOfTwoDays) {
  for (const char* expression :
       {"* * * * *", "*/7 */5 * * *", "30 23,0 * * *", "0-10/3 22-23 * * 0,3",
        "59 23 28-31 * *", "0 9 13 * 5", "5 0-23/2 28-29,1 2-3 *"}) {
    SCOPED_TRACE(expression);
    CronSchedule schedule = MustParse(expression);
    // A minute fires exactly when the last fire at or before it is itself;
    // the next fire after any minute is the first such minute.
    const int64_t start = Utc("2024-02-28 12:00");
    std::vector<int64_t> fires;
    for (int64_t t = start; t < start + 2 * 86400 * kSecond;
         t += 60 * kSecond) {
      if (schedule.LastFireAtOrBefore(t) == t) fires.push_back(t);
    }
    ASSERT_FALSE(fires.empty());
    int64_t t = start - 1;
    for (int64_t fire : fires) {
      t = schedule.NextFireAfter(t);
      ASSERT_EQ(Show(t), Show(fire));
    }
  }
}

TEST(CronTest, AcceptsEveryFieldForm) {
  for (const char* expression :
       {"* * * * *", "*/15 0-6 1,15 */2 1-5", "0 3 * * 7",
        "5 0-23/2 * 1-12/3 0", "0  3  *  *  *", "\t0 3 * * *\t",
        "0,30 8-12,14-18/2 1-7,15 1,6-8 *", "59 23 31 12 6"}) {
    EXPECT_TRUE(CronSchedule::Parse(expression).ok()) << expression;
  }
  EXPECT_EQ(MustParse("0 3 * * *").expression(), "0 3 * * *");
}

TEST(CronTest, RefusesMalformedExpressionsSayingWhy) {
  EXPECT_EQ(ParseError(""), "it has 0 fields");
  EXPECT_EQ(ParseError("0 3 * *"), "it has 4 fields");
  EXPECT_EQ(ParseError("0 3 * * * *"), "it has 6 fields");
  EXPECT_EQ(ParseError("60 * * * *"), "minute 60 is out of range 0-59");
  EXPECT_EQ(ParseError("0 25 * * *"), "hour 25 is out of range 0-23");
  EXPECT_EQ(ParseError("0 0 0 * *"), "day-of-month 0 is out of range 1-31");
  EXPECT_EQ(ParseError("0 0 * 13 *"), "month 13 is out of range 1-12");
  EXPECT_EQ(ParseError("0 0 * * 8"), "day-of-week 8 is out of range 0-7");
  EXPECT_EQ(ParseError("*/0 * * * *"),
            "minute field '*/0' needs a step between 1 and 59 after '/'");
  EXPECT_EQ(ParseError("* */24 * * *"),
            "hour field '*/24' needs a step between 1 and 23 after '/'");
  EXPECT_EQ(ParseError("*/x * * * *"),
            "minute field '*/x' needs a step between 1 and 59 after '/'");
  EXPECT_EQ(ParseError("5/2 * * * *"),
            "minute field '5/2' needs '*' or a range a-b before '/'");
  EXPECT_EQ(ParseError("0 3 * jan *"),
            "month field has 'jan' where a number is expected");
  EXPECT_EQ(ParseError("0 3 * * mon"),
            "day-of-week field has 'mon' where a number is expected");
  EXPECT_EQ(ParseError("-5 * * * *"),
            "minute field '-5' has a range a-b with a side missing");
  EXPECT_EQ(ParseError("* 3- * * *"),
            "hour field '3-' has a range a-b with a side missing");
  EXPECT_EQ(ParseError("+5 * * * *"),
            "minute field has '+5' where a number is expected");
  EXPECT_EQ(ParseError("1,,2 * * * *"),
            "minute field '1,,2' has an empty list entry");
  EXPECT_EQ(ParseError("1, * * * *"),
            "minute field '1,' has an empty list entry");
  EXPECT_EQ(ParseError("99999999999999999999 * * * *"),
            "minute field has '99999999999999999999' where a number is "
            "expected");
  EXPECT_THAT(ParseError("0 22-1 * * *"),
              HasSubstr("hour range '22-1' runs backwards"));
}

TEST(CronTest, RefusesADayOfMonthThatNeverOccurs) {
  EXPECT_EQ(ParseError("0 0 30 2 *"),
            "day-of-month '30' never occurs in month '2', so the schedule "
            "would never fire");
  EXPECT_THAT(ParseError("0 0 31 4,6,9,11 *"), HasSubstr("never occurs"));
  EXPECT_TRUE(CronSchedule::Parse("0 0 31 4,5 *").ok());
  EXPECT_TRUE(CronSchedule::Parse("0 0 29 2 *").ok());
}

}  // namespace
}  // namespace slipway
