// slipway_bench_xgb_predict: the compute ceiling of bench/serving/run.
// Loads a model.json with XGBoost's C API and times
// XGBoosterPredictFromDense in this process, one thread, with the same
// prediction config and array-interface input that Slipway's XGBoost
// backend passes (models/xgboost_model.cc) — everything a served prediction
// costs minus HTTP, JSON and batching.
//
//   slipway_bench_xgb_predict MODEL_JSON ROWS_CSV SECONDS BATCH...
//
// ROWS_CSV holds feature rows only: no header, one row per line, every row
// with the model's number of features, at least max(BATCH) rows. For each
// BATCH (in the order given) the tool predicts rows [k*BATCH, (k+1)*BATCH)
// for k = 0, 1, 2, ... cycling through the file, untimed for 0.2 s (warm-up)
// and then timed for SECONDS, and prints one JSON object:
//   {"batches": [{"rows", "calls", "seconds", "us_per_call",
//                 "rows_per_second"}, ...], "peak_rss_kb"}
// Each call copies its output out of XGBoost's buffer, as Slipway does.
// Errors go to stderr with exit status 1.
#include <sys/resource.h>

#include <cstdint>
#include <iostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "core/clock.h"
#include "core/filesystem.h"
#include "core/status.h"
#include "models/xgboost_api.h"
#include "nlohmann/json.hpp"
#include "xgboost/c_api.h"

namespace slipway {
namespace {

constexpr char kUsage[] =
    "usage: slipway_bench_xgb_predict MODEL_JSON ROWS_CSV SECONDS BATCH...\n";

// The same config as Slipway's XgboostModel::Predict.
constexpr char kPredictConfig[] =
    "{\"type\":0,\"training\":false,\"iteration_begin\":0,"
    "\"iteration_end\":0,\"strict_shape\":false,\"cache_id\":0,"
    "\"missing\":NaN}";

constexpr int64_t kWarmUpMicros = 200000;

int64_t PeakRssKb() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;  // kilobytes on Linux
}

// Row-major floats of ROWS_CSV; every line must have `width` values.
absl::StatusOr<std::vector<float>> ReadRows(const std::string& path,
                                            size_t width, size_t* num_rows) {
  ASSIGN_OR_RETURN(std::string text, LocalFilesystem()->ReadFile(path),
                   "reading ROWS_CSV");
  std::vector<float> values;
  size_t line_number = 0;
  *num_rows = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    if (line.empty()) continue;
    const std::vector<absl::string_view> cells = absl::StrSplit(line, ',');
    if (cells.size() != width) {
      return absl::InvalidArgumentError(
          path + ":" + std::to_string(line_number) + ": " +
          std::to_string(cells.size()) + " values, but the model has " +
          std::to_string(width) + " features");
    }
    for (absl::string_view cell : cells) {
      float value = 0;
      if (!absl::SimpleAtof(cell, &value)) {
        return absl::InvalidArgumentError(
            path + ":" + std::to_string(line_number) + ": '" +
            std::string(cell) + "' is not a number");
      }
      values.push_back(value);
    }
    ++*num_rows;
  }
  return values;
}

absl::StatusOr<int> ParsePositive(const std::string& name,
                                  const std::string& text) {
  int value = 0;
  if (!absl::SimpleAtoi(text, &value) || value < 1) {
    return absl::InvalidArgumentError(name + " must be a whole number >= 1, " +
                                      "got '" + text + "'");
  }
  return value;
}

// Predicts `batch`-row slices of `rows` back to back: untimed for the
// warm-up, then for `seconds`.
absl::StatusOr<nlohmann::json> TimeBatch(void* booster,
                                         const std::vector<float>& rows,
                                         size_t num_rows, size_t width,
                                         size_t batch, int seconds) {
  const size_t slices = num_rows / batch;
  std::vector<float> out;
  Clock* clock = RealClock();
  int64_t calls = 0;
  int64_t start = clock->MonotonicMicros();
  int64_t deadline = start + kWarmUpMicros;
  bool timing = false;
  for (size_t k = 0;; k = (k + 1) % slices) {
    // Built per call, as Slipway builds one per Predict call.
    const std::string array = DenseArrayInterface(
        rows.data() + k * batch * width, batch, width);
    const bst_ulong* shape = nullptr;
    bst_ulong dims = 0;
    const float* result = nullptr;
    RETURN_IF_ERROR(XgbCheck(XGBoosterPredictFromDense(
                                 booster, array.c_str(), kPredictConfig,
                                 /*m=*/nullptr, &shape, &dims, &result),
                             "XGBoosterPredictFromDense"));
    size_t total = 1;
    for (bst_ulong d = 0; d < dims; ++d) total *= shape[d];
    out.assign(result, result + total);
    if (timing) ++calls;
    const int64_t now = clock->MonotonicMicros();
    if (now >= deadline) {
      if (timing) {
        const double elapsed = static_cast<double>(now - start) / 1e6;
        return nlohmann::json{
            {"rows", batch},
            {"calls", calls},
            {"seconds", elapsed},
            {"us_per_call", elapsed * 1e6 / static_cast<double>(calls)},
            {"rows_per_second",
             static_cast<double>(calls * batch) / elapsed}};
      }
      timing = true;
      start = now;
      deadline = now + static_cast<int64_t>(seconds) * 1000000;
    }
  }
}

absl::StatusOr<nlohmann::json> Run(const std::vector<std::string>& args) {
  ASSIGN_OR_RETURN(int seconds, ParsePositive("SECONDS", args[2]));
  std::vector<size_t> batches;
  for (size_t i = 3; i < args.size(); ++i) {
    ASSIGN_OR_RETURN(int batch, ParsePositive("BATCH", args[i]));
    batches.push_back(static_cast<size_t>(batch));
  }

  void* handle = nullptr;
  RETURN_IF_ERROR(XgbCheck(XGBoosterCreate(nullptr, 0, &handle),
                           "XGBoosterCreate"));
  XgbBooster booster(handle);
  RETURN_IF_ERROR(XgbCheck(XGBoosterLoadModel(booster.get(), args[0].c_str()),
                           "loading MODEL_JSON " + args[0]));
  RETURN_IF_ERROR(
      XgbCheck(XGBoosterSetParam(booster.get(), "nthread", "1"), "nthread"));
  bst_ulong width = 0;
  RETURN_IF_ERROR(XgbCheck(XGBoosterGetNumFeature(booster.get(), &width),
                           "XGBoosterGetNumFeature"));

  size_t num_rows = 0;
  ASSIGN_OR_RETURN(std::vector<float> rows,
                   ReadRows(args[1], static_cast<size_t>(width), &num_rows));
  nlohmann::json results = nlohmann::json::array();
  for (size_t batch : batches) {
    if (batch > num_rows) {
      return absl::InvalidArgumentError(
          "BATCH " + std::to_string(batch) + " is larger than ROWS_CSV's " +
          std::to_string(num_rows) + " rows; write more rows");
    }
    ASSIGN_OR_RETURN(nlohmann::json result,
                     TimeBatch(booster.get(), rows, num_rows,
                               static_cast<size_t>(width), batch, seconds));
    results.push_back(std::move(result));
  }
  return nlohmann::json{{"batches", results}, {"peak_rss_kb", PeakRssKb()}};
}

int Main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() < 4) {
    std::cerr << kUsage;
    return 2;
  }
  absl::StatusOr<nlohmann::json> result = Run(args);
  if (!result.ok()) {
    std::cerr << "slipway_bench_xgb_predict: "
              << std::string(result.status().message()) << "\n";
    return 1;
  }
  std::cout << result->dump() << "\n";
  return 0;
}

}  // namespace
}  // namespace slipway

int main(int argc, char** argv) { return slipway::Main(argc, argv); }
