// StepOutput: one named output of a step of a run ("data", "train",
// "model", ...), as it lies in the step's output directory
// (<run_dir>/<step>/), so that command steps can read any output and a later
// run can reuse it (step caching):
//
//   table      NAME.csv (+ NAME.types.json: {"columns": [{"name", "type"}]},
//              the column types, so a table reads back as it was written)
//   model      model/ (pipeline/model_dir.h)
//   metrics    metrics.json (a JSON object)
//   transform  transform.json (models/transform.h)
//   files      NAME/ or any other file a command step declared
//
// Every output has a fingerprint: the SHA-256 of what is on disk (a table's
// CSV and types text; for a directory, its files' relative paths and
// bytes), except ingest's `data`, whose fingerprint is the data's as read
// from its source. Outputs
// also carry their lineage: the fingerprint and row count of the ingested
// data they derive from, which a registered version records.
//
// A built-in step hands its values to later built-in steps in memory (the
// table, model or metrics it wrote); an output read from disk (a cached
// one, or one a command step wrote) is loaded on first use and then kept.
//
// The outputs of a step are stored with it (StepRecord::outputs_json,
// "artifacts"), relative to the step directory, so a cache hit can rebuild
// them in the new run's directory.
//
// Thread safety: a StepOutput may be shared between the steps of a run;
// its Load* methods are safe to call concurrently.
#ifndef SLIPWAY_PIPELINE_STEP_OUTPUTS_H_
#define SLIPWAY_PIPELINE_STEP_OUTPUTS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/filesystem.h"
#include "data/table.h"
#include "models/loader.h"
#include "nlohmann/json.hpp"
#include "pipeline/model_dir.h"

namespace slipway {

enum class OutputKind { kTable, kModel, kMetrics, kTransform, kFiles };
std::string_view OutputKindName(OutputKind kind);

// Where an output's data came from.
struct Lineage {
  std::string data_fingerprint;  // ingest's fingerprint; empty: unknown
  int64_t data_rows = 0;
};

class StepOutput {
 public:
  StepOutput(std::string step, std::string name, OutputKind kind,
             std::string path, std::string fingerprint, Lineage lineage);

  const std::string& step() const { return step_; }  // the producer
  const std::string& name() const { return name_; }
  OutputKind kind() const { return kind_; }
  // Absolute path of the file or directory.
  const std::string& path() const { return path_; }
  const std::string& fingerprint() const { return fingerprint_; }
  const Lineage& lineage() const { return lineage_; }
  // True for tables a transform step wrote (model-side feature columns).
  bool transformed() const { return transformed_; }
  // REQUIRES: the output is not shared yet.
  void set_transformed(bool transformed) { transformed_ = transformed; }

  // The value, from memory or read from disk once. FailedPrecondition when
  // the output is of another kind.
  absl::StatusOr<std::shared_ptr<const Table>> LoadTable(Filesystem* fs) const;
  // `input` (may be null), `fallback_target` and `loading` as ReadModelDir
  // takes them.
  absl::StatusOr<std::shared_ptr<const ModelDir>> LoadModel(
      Filesystem* fs, const Table* input, std::string_view fallback_target,
      const ModelLoadOptions& loading = {}) const;
  absl::StatusOr<nlohmann::json> LoadMetrics(Filesystem* fs) const;
  absl::StatusOr<std::string> LoadTransform(Filesystem* fs) const;

  // The table held in memory, or null.
  std::shared_ptr<const Table> KeptTable() const;
  void KeepTable(std::shared_ptr<const Table> table);
  void KeepModel(std::shared_ptr<const ModelDir> model);

  // {"kind", "path" (relative to `step_dir`), "sha256", "data_sha256",
  // "data_rows", "transformed"}.
  nlohmann::json ToJson(const std::string& step_dir) const;
  static absl::StatusOr<std::shared_ptr<StepOutput>> FromJson(
      const std::string& step, const std::string& name,
      const nlohmann::json& json, const std::string& step_dir);

 private:
  absl::Status CheckKind(OutputKind want) const;

  const std::string step_;
  const std::string name_;
  const OutputKind kind_;
  const std::string path_;
  const std::string fingerprint_;
  const Lineage lineage_;
  bool transformed_ = false;

  mutable absl::Mutex mu_;
  mutable std::shared_ptr<const Table> table_ ABSL_GUARDED_BY(mu_);
  mutable std::shared_ptr<const ModelDir> model_ ABSL_GUARDED_BY(mu_);
};

using StepOutputs = std::vector<std::shared_ptr<StepOutput>>;

// Writers for built-in steps; each writes into `step_dir` and returns the
// output with its value kept in memory. A table's fingerprint is that of
// its CSV and types files unless `fingerprint` is given (ingest passes the
// source's).
absl::StatusOr<std::shared_ptr<StepOutput>> WriteTableOutput(
    Filesystem* fs, const std::string& step, const std::string& step_dir,
    const std::string& name, std::shared_ptr<const Table> table,
    Lineage lineage, std::string fingerprint = "");
absl::StatusOr<std::shared_ptr<StepOutput>> WriteModelOutput(
    Filesystem* fs, const std::string& step, const std::string& step_dir,
    std::shared_ptr<const ModelDir> model, Lineage lineage);
absl::StatusOr<std::shared_ptr<StepOutput>> WriteMetricsOutput(
    Filesystem* fs, const std::string& step, const std::string& step_dir,
    const nlohmann::json& metrics, Lineage lineage);
absl::StatusOr<std::shared_ptr<StepOutput>> WriteTransformOutput(
    Filesystem* fs, const std::string& step, const std::string& step_dir,
    const std::string& transform_json, Lineage lineage);
// `from` passed through under a new step and name (validate's gate):
// its files linked (or copied) into `step_dir`, same fingerprint, lineage
// and in-memory value.
absl::StatusOr<std::shared_ptr<StepOutput>> PassThroughOutput(
    const StepOutput& from, const std::string& step,
    const std::string& step_dir, const std::string& name);

// The outputs a command or notebook step left in `step_dir`: each declared
// name as NAME.csv (table) or NAME/ (files) or NAME (files), `model` for
// model/ and `metrics` for metrics.json. InvalidArgument naming the step
// and the file it expected for a declared output that is missing.
absl::StatusOr<StepOutputs> FindProgramOutputs(
    Filesystem* fs, const std::string& step, const std::string& step_dir,
    const std::vector<std::string>& declared, Lineage lineage);

// The "artifacts" object of a step's outputs_json and back.
nlohmann::json OutputsToJson(const StepOutputs& outputs,
                             const std::string& step_dir);
absl::StatusOr<StepOutputs> OutputsFromJson(const std::string& step,
                                            const nlohmann::json& artifacts,
                                            const std::string& step_dir);

// Makes `to` hold what `from` holds (a file or a directory tree): hard
// links where the filesystem allows, copies otherwise. `to` must not exist.
absl::Status LinkOrCopy(const std::string& from, const std::string& to);
// Removes `path` and everything below it; OK when it does not exist.
absl::Status RemoveTree(const std::string& path);
// Symlinks each output's file or directory (and a table's types file) into
// `input_dir`/<producer>/ (step3.md: SLIPWAY_INPUT_DIR/<step>/<files>).
absl::Status LinkInputs(const std::string& input_dir,
                        const StepOutputs& inputs);

// SHA-256 of a file, or of a directory tree (relative paths and bytes, in
// sorted order).
absl::StatusOr<std::string> FingerprintPath(Filesystem* fs,
                                            const std::string& path);

}  // namespace slipway

#endif  // SLIPWAY_PIPELINE_STEP_OUTPUTS_H_
