// CronSchedule: the one cron grammar of Slipway (pipeline triggers in
// slipway.yaml), parsed once and evaluated in UTC at minute resolution.
//
// Grammar: five whitespace-separated fields, `minute hour day-of-month month
// day-of-week`, with ranges 0-59, 0-23, 1-31, 1-12 and 0-7 (0 and 7 are
// Sunday). Each field is a comma-separated list of `*`, `n`, `a-b`, `*/s` or
// `a-b/s` (1 <= s <= the field's maximum). Ranges do not wrap: `22-1` is
// refused; write `22,23,0,1` or `22-23,0-1`. Month and weekday names are not
// accepted.
//
// Days follow Vixie cron: when both day-of-month and day-of-week are
// restricted (their field does not start with `*`), a day matches when
// EITHER matches ("0 0 1 * 1" fires on the 1st and on every Monday);
// otherwise both must match. A schedule whose day-of-month can never occur
// in its months ("0 0 30 2 *") is refused rather than never firing.
//
// Thread safety: a CronSchedule is an immutable value.
#ifndef SLIPWAY_PIPELINE_CRON_H_
#define SLIPWAY_PIPELINE_CRON_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace slipway {

class CronSchedule {
 public:
  // Parses a 5-field expression. InvalidArgument whose message says what is
  // wrong ("hour 25 is out of range 0-23", "it has 4 fields"); callers
  // prefix where the expression came from.
  static absl::StatusOr<CronSchedule> Parse(std::string_view expression);

  // The first fire time strictly after `unix_micros` (a whole UTC minute,
  // in unix micros).
  int64_t NextFireAfter(int64_t unix_micros) const;

  // The latest fire time at or before `unix_micros`.
  int64_t LastFireAtOrBefore(int64_t unix_micros) const;

  const std::string& expression() const { return expression_; }

 private:
  CronSchedule() = default;

  // Whether the UTC day (`day` 1-31, `weekday` 0-6 with 0 = Sunday) matches
  // the day-of-month and day-of-week fields.
  bool DayMatches(int day, int weekday) const;

  std::string expression_;
  // Bit i set: value i matches.
  uint64_t minutes_ = 0;
  uint64_t hours_ = 0;
  uint64_t days_of_month_ = 0;
  uint64_t months_ = 0;
  uint64_t days_of_week_ = 0;  // 7 folded onto 0
  bool day_of_month_restricted_ = false;
  bool day_of_week_restricted_ = false;
};

}  // namespace slipway

#endif  // SLIPWAY_PIPELINE_CRON_H_
