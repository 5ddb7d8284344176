// Pieces of the Prometheus text exposition format 0.0.4, for every /metrics
// family the process renders (serving's counters and histograms, the
// monitor's gauges).
// Thread safety: pure functions.
#ifndef SLIPWAY_CORE_PROMETHEUS_TEXT_H_
#define SLIPWAY_CORE_PROMETHEUS_TEXT_H_

#include <string>
#include <string_view>

namespace slipway {

// Shortest text that reads back as `value`, laid out the way the Go client
// (strconv 'g', -1) writes it, so `le` values match what Prometheus users
// type in queries: "5e-05", "0.0001", "0.0025", "1", "1e+06"; "NaN",
// "+Inf", "-Inf" for the non-finite.
std::string PrometheusNumber(double value);

// `name="value"`, the value escaped (backslash, double quote, newline).
std::string PrometheusLabel(std::string_view name, std::string_view value);

// "# HELP name help\n# TYPE name type\n".
std::string PrometheusFamilyHeader(std::string_view name, std::string_view help,
                                   std::string_view type);

// One sample line; `labels` is the comma-separated label list, maybe empty.
void AppendPrometheusSample(std::string* out, std::string_view name,
                            std::string_view labels, std::string_view value);

}  // namespace slipway

#endif  // SLIPWAY_CORE_PROMETHEUS_TEXT_H_
