// slipway_bench_score: Slipway's side of bench/scoring/run. Scores a CSV
// file into a CSV file with the batch scoring of a score step
// (pipeline/data_io.h opens both files as a csv data entry would be opened,
// pipeline/score.h streams them through the model).
//
//   slipway_bench_score MODEL_DIR INPUT_CSV OUTPUT_CSV [--threads N]
//                       [--chunk-rows N] [--version V]
//
// MODEL_DIR holds what `slipway models export` writes: model.json (native
// XGBoost JSON) and signature.json. Every input column is kept. Prints one
// JSON object: {"rows", "seconds", "fingerprint", "peak_rss_kb"}, where
// seconds covers opening the files, scoring and committing the output and
// peak_rss_kb is the process's peak resident set (getrusage). Errors go to
// stderr with exit status 1.
#include <sys/resource.h>

#include <cstdint>
#include <iostream>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "core/clock.h"
#include "core/filesystem.h"
#include "core/status.h"
#include "models/model.h"
#include "models/signature.h"
#include "nlohmann/json.hpp"
#include "pipeline/app_spec.h"
#include "pipeline/data_io.h"
#include "pipeline/score.h"

namespace slipway {
namespace {

constexpr char kUsage[] =
    "usage: slipway_bench_score MODEL_DIR INPUT_CSV OUTPUT_CSV [--threads N] "
    "[--chunk-rows N] [--version V]\n";

struct Args {
  std::string model_dir;
  std::string input;
  std::string output;
  int threads = 0;
  int64_t chunk_rows = 65536;
  int64_t version = 1;
};

absl::StatusOr<Args> ParseArgs(int argc, char** argv) {
  Args args;
  int positional = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--threads" || arg == "--chunk-rows" || arg == "--version") {
      int64_t value = 0;
      if (i + 1 >= argc || !absl::SimpleAtoi(argv[i + 1], &value) ||
          value < 0) {
        return absl::InvalidArgumentError(arg + " takes a number >= 0");
      }
      ++i;
      if (arg == "--threads") args.threads = static_cast<int>(value);
      if (arg == "--chunk-rows") args.chunk_rows = value;
      if (arg == "--version") args.version = value;
    } else if (positional == 0) {
      args.model_dir = arg;
      ++positional;
    } else if (positional == 1) {
      args.input = arg;
      ++positional;
    } else if (positional == 2) {
      args.output = arg;
      ++positional;
    } else {
      return absl::InvalidArgumentError("unexpected argument '" + arg + "'");
    }
  }
  if (positional != 3) return absl::InvalidArgumentError("missing arguments");
  return args;
}

absl::StatusOr<std::unique_ptr<Model>> LoadExportedModel(
    const std::string& dir) {
  Filesystem* fs = LocalFilesystem();
  ASSIGN_OR_RETURN(std::string signature_text,
                   fs->ReadFile(JoinPath(dir, "signature.json")));
  const nlohmann::json json = nlohmann::json::parse(
      signature_text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return absl::InvalidArgumentError(dir + "/signature.json is not JSON");
  }
  ASSIGN_OR_RETURN(Signature signature, Signature::FromJson(json));
  ASSIGN_OR_RETURN(std::string bytes, fs->ReadFile(JoinPath(dir, "model.json")));
  return LoadModel(kXgboostJsonFormat, bytes, std::move(signature));
}

DataSourceSpec CsvEntry(const std::string& name, const std::string& path,
                        int64_t chunk_rows) {
  DataSourceSpec entry;
  entry.name = name;
  entry.connector = Connector::kCsv;
  entry.path = path;
  entry.chunk_rows = chunk_rows;
  return entry;
}

int64_t PeakRssKb() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;  // kilobytes on Linux
}

absl::Status Run(int argc, char** argv) {
  ASSIGN_OR_RETURN(Args args, ParseArgs(argc, argv));
  ASSIGN_OR_RETURN(std::unique_ptr<Model> model,
                   LoadExportedModel(args.model_dir));
  const int64_t start = RealClock()->MonotonicMicros();
  ASSIGN_OR_RETURN(std::unique_ptr<DataSource> source,
                   OpenSpecSource(CsvEntry("input", args.input,
                                           args.chunk_rows),
                                  "", LocalFilesystem()));
  ASSIGN_OR_RETURN(std::unique_ptr<DataSink> sink,
                   OpenSpecSink(CsvEntry("output", args.output,
                                         args.chunk_rows),
                                "", LocalFilesystem()));
  ScoreOptions options;
  options.threads = args.threads;
  ASSIGN_OR_RETURN(ScoreReport report,
                   ScoreStream(source.get(), *model, args.version, {},
                               sink.get(), options));
  const double seconds =
      static_cast<double>(RealClock()->MonotonicMicros() - start) / 1e6;
  nlohmann::json out = {{"rows", report.rows},
                        {"seconds", seconds},
                        {"fingerprint", report.source_fingerprint},
                        {"peak_rss_kb", PeakRssKb()}};
  std::cout << out.dump() << std::endl;
  return absl::OkStatus();
}

}  // namespace
}  // namespace slipway

int main(int argc, char** argv) {
  const absl::Status status = slipway::Run(argc, argv);
  if (!status.ok()) {
    std::cerr << "slipway_bench_score: " << status.message() << "\n"
              << slipway::kUsage;
    return 1;
  }
  return 0;
}
