// slipway_bench_tool: the Slipway side of bench/run-all. Each invocation does
// one measured operation in a fresh process and prints one JSON object on
// stdout, so the driver can interleave it with the Python side
// (bench/python_side.py prints the same fields).
//
//   load FILE
//     ReadCsv -> {"seconds", "rows", "value_bytes", "peak_rss_kb"}
//   train FILE TARGET ROUNDS DEPTH THREADS [MODEL_OUT]
//     ReadCsv, then TrainXgboost (binary:logistic, hist, eta 0.3)
//     -> {"load_seconds", "train_seconds", "rows", "peak_rss_kb"};
//     MODEL_OUT, when given, receives the model JSON after timing stops
//     (run-all compares it with the Python model).
//
// peak_rss_kb is getrusage(RUSAGE_SELF).ru_maxrss: the process's high-water
// mark, start-up included. Errors go to stderr with exit status 1.
#include <sys/resource.h>

#include <cstdint>
#include <iostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "core/clock.h"
#include "core/filesystem.h"
#include "core/status.h"
#include "data/csv.h"
#include "nlohmann/json.hpp"
#include "train/trainer.h"

namespace slipway {
namespace {

constexpr char kUsage[] =
    "usage: slipway_bench_tool load FILE\n"
    "       slipway_bench_tool train FILE TARGET ROUNDS DEPTH THREADS "
    "[MODEL_OUT]\n";

int64_t PeakRssKb() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;  // kilobytes on Linux
}

double SecondsSince(int64_t start_micros) {
  return static_cast<double>(RealClock()->MonotonicMicros() - start_micros) /
         1e6;
}

absl::StatusOr<int> ParseInt(const std::string& name, const std::string& text,
                             int min) {
  int value = 0;
  if (!absl::SimpleAtoi(text, &value) || value < min) {
    return absl::InvalidArgumentError(name + " must be an integer >= " +
                                      std::to_string(min) + ", got '" + text +
                                      "'");
  }
  return value;
}

absl::StatusOr<nlohmann::json> Load(const std::string& path) {
  const int64_t start = RealClock()->MonotonicMicros();
  ASSIGN_OR_RETURN(CsvData data, ReadCsv(LocalFilesystem(), path));
  const double seconds = SecondsSince(start);
  return nlohmann::json{{"seconds", seconds},
                        {"rows", data.rows},
                        {"value_bytes", data.table.ValueBytes()},
                        {"peak_rss_kb", PeakRssKb()}};
}

absl::StatusOr<nlohmann::json> Train(const std::vector<std::string>& args) {
  const std::string& path = args[0];
  const std::string& target = args[1];
  TrainOptions options;
  options.objective = "binary:logistic";
  options.eta = 0.3;
  ASSIGN_OR_RETURN(options.rounds, ParseInt("ROUNDS", args[2], 1));
  ASSIGN_OR_RETURN(options.max_depth, ParseInt("DEPTH", args[3], 1));
  ASSIGN_OR_RETURN(options.threads, ParseInt("THREADS", args[4], 1));

  const int64_t load_start = RealClock()->MonotonicMicros();
  ASSIGN_OR_RETURN(CsvData data, ReadCsv(LocalFilesystem(), path));
  const double load_seconds = SecondsSince(load_start);

  const int64_t train_start = RealClock()->MonotonicMicros();
  ASSIGN_OR_RETURN(TrainedModel model,
                   TrainXgboost(data.table, target, options));
  const double train_seconds = SecondsSince(train_start);

  if (args.size() > 5) {
    RETURN_IF_ERROR(LocalFilesystem()->WriteFileAtomic(args[5],
                                                       model.model_bytes),
                    "writing MODEL_OUT");
  }
  return nlohmann::json{{"load_seconds", load_seconds},
                        {"train_seconds", train_seconds},
                        {"rows", data.rows},
                        {"peak_rss_kb", PeakRssKb()}};
}

int Main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  absl::StatusOr<nlohmann::json> result;
  if (args.size() == 2 && args[0] == "load") {
    result = Load(args[1]);
  } else if ((args.size() == 6 || args.size() == 7) && args[0] == "train") {
    result = Train(std::vector<std::string>(args.begin() + 1, args.end()));
  } else {
    std::cerr << kUsage;
    return 2;
  }
  if (!result.ok()) {
    std::cerr << "slipway_bench_tool: " << std::string(result.status().message())
              << "\n";
    return 1;
  }
  std::cout << result->dump() << "\n";
  return 0;
}

}  // namespace
}  // namespace slipway

int main(int argc, char** argv) { return slipway::Main(argc, argv); }
