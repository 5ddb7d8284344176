#include "pipeline/cron.h"

#include <bit>
#include <charconv>
#include <vector>

#include "absl/status/status.h"

namespace slipway {
namespace {

constexpr int64_t kMicrosPerMinute = 60'000'000;
constexpr int64_t kMinutesPerDay = 24 * 60;
// Every (month, day, weekday) combination that exists occurs within one
// 400-year Gregorian cycle, so a search this long always finds a fire time
// of a schedule that Parse accepted.
constexpr int64_t kSearchDays = 146'097 + 366;

struct FieldLimits {
  std::string_view name;
  int min;
  int max;
};

constexpr FieldLimits kFields[5] = {{"minute", 0, 59},
                                    {"hour", 0, 23},
                                    {"day-of-month", 1, 31},
                                    {"month", 1, 12},
                                    {"day-of-week", 0, 7}};

// Days in `month` of a leap year: the most the month can ever have.
constexpr int kMaxDaysInMonth[13] = {0,  31, 29, 31, 30, 31, 30,
                                     31, 31, 30, 31, 30, 31};

// Digits only (no sign), within int range.
bool ParseNumber(std::string_view text, int64_t* out) {
  if (text.empty() || text.front() < '0' || text.front() > '9') return false;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *out);
  return ec == std::errc() && ptr == end;
}

// Parses one field into a bit set (bit i: value i matches). Returns what is
// wrong, or "" when the field is valid.
std::string ParseField(std::string_view field, const FieldLimits& limits,
                       uint64_t* bits) {
  const std::string name(limits.name);
  const std::string range =
      std::to_string(limits.min) + "-" + std::to_string(limits.max);
  auto number = [&](std::string_view text, int* out) -> std::string {
    int64_t value;
    if (!ParseNumber(text, &value)) {
      return name + " field has '" + std::string(text) +
             "' where a number is expected";
    }
    if (value < limits.min || value > limits.max) {
      return name + " " + std::string(text) + " is out of range " + range;
    }
    *out = static_cast<int>(value);
    return "";
  };
  size_t start = 0;
  while (true) {
    size_t comma = field.find(',', start);
    std::string_view item = field.substr(start, comma == std::string_view::npos
                                                    ? std::string_view::npos
                                                    : comma - start);
    if (item.empty()) {
      return name + " field '" + std::string(field) +
             "' has an empty list entry";
    }
    std::string_view base = item;
    int64_t step = 1;
    size_t slash = item.find('/');
    if (slash != std::string_view::npos) {
      base = item.substr(0, slash);
      if (!ParseNumber(item.substr(slash + 1), &step) || step < 1 ||
          step > limits.max) {
        return name + " field '" + std::string(item) +
               "' needs a step between 1 and " + std::to_string(limits.max) +
               " after '/'";
      }
      if (base != "*" && base.find('-') == std::string_view::npos) {
        return name + " field '" + std::string(item) +
               "' needs '*' or a range a-b before '/'";
      }
    }
    int low = limits.min;
    int high = limits.max;
    if (base != "*") {
      size_t dash = base.find('-');
      if (dash == std::string_view::npos) {
        std::string problem = number(base, &low);
        if (!problem.empty()) return problem;
        high = low;
      } else {
        if (dash == 0 || dash + 1 == base.size()) {
          return name + " field '" + std::string(item) +
                 "' has a range a-b with a side missing";
        }
        std::string problem = number(base.substr(0, dash), &low);
        if (problem.empty()) problem = number(base.substr(dash + 1), &high);
        if (!problem.empty()) return problem;
        if (low > high) {
          return name + " range '" + std::string(base) +
                 "' runs backwards (ranges do not wrap; list both parts, "
                 "such as 22-23,0-1)";
        }
      }
    }
    for (int64_t v = low; v <= high; v += step) *bits |= uint64_t{1} << v;
    if (comma == std::string_view::npos) return "";
    start = comma + 1;
  }
}

// The lowest set bit at or above `from`, or -1.
int NextBit(uint64_t bits, int from) {
  if (from > 63) return -1;
  uint64_t masked = bits & (~uint64_t{0} << from);
  return masked == 0 ? -1 : std::countr_zero(masked);
}

// The highest set bit at or below `from`, or -1.
int PrevBit(uint64_t bits, int from) {
  if (from < 0) return -1;
  uint64_t mask = from >= 63 ? ~uint64_t{0} : (uint64_t{1} << (from + 1)) - 1;
  uint64_t masked = bits & mask;
  return masked == 0 ? -1 : 63 - std::countl_zero(masked);
}

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

// Days since 1970-01-01 of a proleptic Gregorian date, and back (H. Hinnant's
// civil-date algorithms).
int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

struct CivilDate {
  int64_t year;
  int month;  // 1-12
  int day;    // 1-31
};

CivilDate CivilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const int month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  return {yoe + era * 400 + (month <= 2), month, day};
}

// 0 = Sunday; 1970-01-01 was a Thursday.
int Weekday(int64_t days) { return static_cast<int>(((days % 7) + 7 + 4) % 7); }

int64_t ToMicros(int64_t days, int hour, int minute) {
  return ((days * kMinutesPerDay) + hour * 60 + minute) * kMicrosPerMinute;
}

}  // namespace

absl::StatusOr<CronSchedule> CronSchedule::Parse(std::string_view expression) {
  std::vector<std::string_view> fields;
  size_t i = 0;
  while (i < expression.size()) {
    while (i < expression.size() &&
           (expression[i] == ' ' || expression[i] == '\t')) {
      ++i;
    }
    size_t start = i;
    while (i < expression.size() && expression[i] != ' ' &&
           expression[i] != '\t') {
      ++i;
    }
    if (i > start) fields.push_back(expression.substr(start, i - start));
  }
  if (fields.size() != 5) {
    return absl::InvalidArgumentError("it has " +
                                      std::to_string(fields.size()) + " field" +
                                      (fields.size() == 1 ? "" : "s"));
  }
  CronSchedule schedule;
  schedule.expression_ = std::string(expression);
  uint64_t* bits[5] = {&schedule.minutes_, &schedule.hours_,
                       &schedule.days_of_month_, &schedule.months_,
                       &schedule.days_of_week_};
  for (int f = 0; f < 5; ++f) {
    std::string problem = ParseField(fields[f], kFields[f], bits[f]);
    if (!problem.empty()) return absl::InvalidArgumentError(problem);
  }
  if (schedule.days_of_week_ & (uint64_t{1} << 7)) {
    schedule.days_of_week_ = (schedule.days_of_week_ & ~(uint64_t{1} << 7)) | 1;
  }
  schedule.day_of_month_restricted_ = fields[2].front() != '*';
  schedule.day_of_week_restricted_ = fields[4].front() != '*';

  // With the day-of-week unrestricted only the day-of-month picks days, and
  // it must name a day that some chosen month has.
  if (schedule.day_of_month_restricted_ && !schedule.day_of_week_restricted_) {
    bool occurs = false;
    for (int month = 1; month <= 12 && !occurs; ++month) {
      if (!(schedule.months_ & (uint64_t{1} << month))) continue;
      occurs = NextBit(schedule.days_of_month_, 1) <= kMaxDaysInMonth[month];
    }
    if (!occurs) {
      return absl::InvalidArgumentError(
          "day-of-month '" + std::string(fields[2]) +
          "' never occurs in month '" + std::string(fields[3]) +
          "', so the schedule would never fire");
    }
  }
  return schedule;
}

bool CronSchedule::DayMatches(int day, int weekday) const {
  const bool dom = days_of_month_ & (uint64_t{1} << day);
  const bool dow = days_of_week_ & (uint64_t{1} << weekday);
  if (day_of_month_restricted_ && day_of_week_restricted_) return dom || dow;
  return dom && dow;
}

int64_t CronSchedule::NextFireAfter(int64_t unix_micros) const {
  const int64_t first = FloorDiv(unix_micros, kMicrosPerMinute) + 1;
  int64_t days = FloorDiv(first, kMinutesPerDay);
  const int64_t minute_of_day = first - days * kMinutesPerDay;
  int hour = static_cast<int>(minute_of_day / 60);
  int minute = static_cast<int>(minute_of_day % 60);
  const int64_t last_day = days + kSearchDays;
  while (days <= last_day) {
    const CivilDate date = CivilFromDays(days);
    if (!(months_ & (uint64_t{1} << date.month))) {
      days = date.month == 12 ? DaysFromCivil(date.year + 1, 1, 1)
                              : DaysFromCivil(date.year, date.month + 1, 1);
      hour = minute = 0;
      continue;
    }
    if (!DayMatches(date.day, Weekday(days))) {
      ++days;
      hour = minute = 0;
      continue;
    }
    const int next_hour = NextBit(hours_, hour);
    if (next_hour < 0) {
      ++days;
      hour = minute = 0;
      continue;
    }
    if (next_hour != hour) {
      hour = next_hour;
      minute = 0;
    }
    const int next_minute = NextBit(minutes_, minute);
    if (next_minute < 0) {
      minute = 0;
      if (++hour == 24) {
        ++days;
        hour = 0;
      }
      continue;
    }
    return ToMicros(days, hour, next_minute);
  }
  // Unreachable for a parsed schedule (see kSearchDays); "never" is the
  // answer that cannot make a caller fire.
  return INT64_MAX;
}

int64_t CronSchedule::LastFireAtOrBefore(int64_t unix_micros) const {
  const int64_t first = FloorDiv(unix_micros, kMicrosPerMinute);
  int64_t days = FloorDiv(first, kMinutesPerDay);
  const int64_t minute_of_day = first - days * kMinutesPerDay;
  int hour = static_cast<int>(minute_of_day / 60);
  int minute = static_cast<int>(minute_of_day % 60);
  const int64_t last_day = days - kSearchDays;
  while (days >= last_day) {
    const CivilDate date = CivilFromDays(days);
    if (!(months_ & (uint64_t{1} << date.month))) {
      days = DaysFromCivil(date.year, date.month, 1) - 1;
      hour = 23;
      minute = 59;
      continue;
    }
    if (!DayMatches(date.day, Weekday(days))) {
      --days;
      hour = 23;
      minute = 59;
      continue;
    }
    const int prev_hour = PrevBit(hours_, hour);
    if (prev_hour < 0) {
      --days;
      hour = 23;
      minute = 59;
      continue;
    }
    if (prev_hour != hour) {
      hour = prev_hour;
      minute = 59;
    }
    const int prev_minute = PrevBit(minutes_, minute);
    if (prev_minute < 0) {
      minute = 59;
      if (--hour < 0) {
        --days;
        hour = 23;
      }
      continue;
    }
    return ToMicros(days, hour, prev_minute);
  }
  // Unreachable for a parsed schedule, like NextFireAfter's "never".
  return INT64_MIN;
}

}  // namespace slipway
