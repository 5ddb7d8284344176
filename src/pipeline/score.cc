#include "pipeline/score.h"

#include <algorithm>
#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/synchronization/mutex.h"
#include "core/status.h"
#include "core/text.h"
#include "data/table.h"
#include "models/features.h"

namespace slipway {
namespace {

constexpr char kModelVersionColumn[] = "model_version";
constexpr char kPredictionColumn[] = "prediction";
// Slices smaller than this are not worth a thread.
constexpr size_t kMinSliceRows = 1024;

// How the predicted class label is stored: in the target's type when every
// label parses as it, as text otherwise.
struct LabelColumn {
  DataType type = DataType::kString;
  std::vector<int64_t> int64_labels;
  std::vector<double> float64_labels;
  std::vector<bool> bool_labels;
  std::vector<std::string> text_labels;
};

LabelColumn MakeLabelColumn(const Signature& signature) {
  LabelColumn column;
  const std::vector<std::string>& labels = signature.class_labels();
  const int classes = signature.task() == Task::kBinaryClassification
                          ? 2
                          : signature.output_width();
  for (int k = 0; k < classes; ++k) {
    column.text_labels.push_back(static_cast<size_t>(k) < labels.size()
                                     ? labels[k]
                                     : std::to_string(k));
  }
  bool parsed = true;
  for (const std::string& text : column.text_labels) {
    int64_t i = 0;
    double d = 0;
    bool b = false;
    switch (signature.label_type()) {
      case DataType::kInt64:
        parsed = parsed && absl::SimpleAtoi(text, &i);
        column.int64_labels.push_back(i);
        break;
      case DataType::kFloat64:
        parsed = parsed && absl::SimpleAtod(text, &d);
        column.float64_labels.push_back(d);
        break;
      case DataType::kBool:
        parsed = parsed && absl::SimpleAtob(text, &b);
        column.bool_labels.push_back(b);
        break;
      case DataType::kString:
        break;
    }
  }
  column.type = parsed ? signature.label_type() : DataType::kString;
  return column;
}

void AppendLabel(const LabelColumn& labels, int k, Column* column) {
  switch (labels.type) {
    case DataType::kInt64:
      column->AppendInt64(labels.int64_labels[k]);
      return;
    case DataType::kFloat64:
      column->AppendFloat64(labels.float64_labels[k]);
      return;
    case DataType::kBool:
      column->AppendBool(labels.bool_labels[k]);
      return;
    case DataType::kString:
      column->AppendString(labels.text_labels[k]);
      return;
  }
}

// The names of the columns ScoreStream adds after the kept ones.
std::vector<std::string> OutputColumnNames(const Signature& signature,
                                           const LabelColumn& labels) {
  std::vector<std::string> names = {kPredictionColumn};
  if (signature.task() == Task::kBinaryClassification) {
    names.push_back("probability");
  } else if (signature.task() == Task::kMulticlassClassification) {
    for (const std::string& label : labels.text_labels) {
      names.push_back("probability_" + label);
    }
  }
  names.push_back(kModelVersionColumn);
  return names;
}

class ScorePipeline {
 public:
  ScorePipeline(DataSource* source, const Model& model, int64_t model_version,
                const std::vector<std::string>& keep, DataSink* sink,
                const ScoreOptions& options)
      : source_(source),
        model_(model),
        model_version_(model_version),
        keep_(keep),
        sink_(sink),
        options_(options),
        threads_(options.threads > 0
                     ? options.threads
                     : std::max(1, static_cast<int>(
                                       std::thread::hardware_concurrency()))),
        labels_(MakeLabelColumn(model.signature())),
        output_names_(OutputColumnNames(model.signature(), labels_)) {}

  absl::StatusOr<ScoreReport> Run() {
    const int64_t start = options_.clock->MonotonicMicros();
    std::thread predictor([this] { PredictLoop(); });
    std::thread writer([this] { WriteLoop(); });
    ReadLoop();
    predictor.join();
    writer.join();
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(status_);
    ScoreReport report;
    report.rows = rows_written_;
    report.seconds =
        static_cast<double>(options_.clock->MonotonicMicros() - start) / 1e6;
    report.source_fingerprint = source_->Fingerprint();
    return report;
  }

 private:
  bool Cancelled() const {
    return options_.cancel != nullptr &&
           options_.cancel->load(std::memory_order_relaxed);
  }

  absl::Status CancelledError() const {
    return absl::CancelledError("scoring " + source_->Describe() +
                                " was cancelled; nothing was written to " +
                                sink_->Describe());
  }

  // Keeps the first failure and wakes every stage so it stops.
  void Fail(absl::Status status) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (status_.ok()) status_ = std::move(status);
    changed_.SignalAll();
  }

  // Runs on the calling thread: the only user of `source_`.
  void ReadLoop() ABSL_LOCKS_EXCLUDED(mu_) {
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        while (in_flight_ >= options_.max_chunks_in_flight && status_.ok()) {
          changed_.Wait(&mu_);
        }
        if (!status_.ok()) return;
        ++in_flight_;
      }
      if (Cancelled()) return Fail(CancelledError());
      absl::StatusOr<std::optional<Table>> chunk = source_->NextChunk();
      if (!chunk.ok()) return Fail(chunk.status());
      absl::MutexLock lock(&mu_);
      if (!chunk->has_value()) {
        --in_flight_;
        read_done_ = true;
        changed_.SignalAll();
        return;
      }
      to_predict_.push_back(std::move(**chunk));
      changed_.SignalAll();
    }
  }

  void PredictLoop() ABSL_LOCKS_EXCLUDED(mu_) {
    while (true) {
      Table input;
      {
        absl::MutexLock lock(&mu_);
        while (to_predict_.empty() && !read_done_ && status_.ok()) {
          changed_.Wait(&mu_);
        }
        if (!status_.ok()) return;
        if (to_predict_.empty()) {
          predict_done_ = true;
          changed_.SignalAll();
          return;
        }
        input = std::move(to_predict_.front());
        to_predict_.pop_front();
      }
      if (Cancelled()) return Fail(CancelledError());
      absl::StatusOr<Table> output = ScoreChunk(std::move(input));
      if (!output.ok()) return Fail(output.status());
      absl::MutexLock lock(&mu_);
      to_write_.push_back(std::move(*output));
      changed_.SignalAll();
    }
  }

  // Runs on its own thread: the only user of `sink_`.
  void WriteLoop() ABSL_LOCKS_EXCLUDED(mu_) {
    int64_t rows = 0;
    while (true) {
      Table output;
      {
        absl::MutexLock lock(&mu_);
        while (to_write_.empty() && !predict_done_ && status_.ok()) {
          changed_.Wait(&mu_);
        }
        if (!status_.ok()) return;
        if (to_write_.empty()) break;
        output = std::move(to_write_.front());
        to_write_.pop_front();
      }
      if (Cancelled()) return Fail(CancelledError());
      const absl::Status written = sink_->Write(output);
      if (!written.ok()) return Fail(written);
      rows += static_cast<int64_t>(output.num_rows());
      {
        absl::MutexLock lock(&mu_);
        --in_flight_;
        rows_written_ = rows;
        changed_.SignalAll();
      }
      if (options_.progress) options_.progress(rows);
    }
    if (Cancelled()) return Fail(CancelledError());
    const absl::Status finished = sink_->Finish();
    if (!finished.ok()) Fail(finished);
  }

  // Fixes which input columns are kept, from the first chunk's columns.
  absl::Status PlanColumns(const Table& input) {
    std::vector<std::string> missing;
    for (const FeatureSpec& feature : model_.signature().features()) {
      if (input.FindColumn(feature.name) == nullptr) {
        missing.push_back(feature.name);
      }
    }
    if (!missing.empty()) {
      return absl::InvalidArgumentError(
          source_->Describe() + " lacks the model's feature" +
          (missing.size() > 1 ? "s " : " ") + QuotedList(missing) +
          "; add the column" + (missing.size() > 1 ? "s" : "") +
          " to the source");
    }
    std::vector<std::string> kept = keep_;
    if (kept.empty()) {
      for (const Column& column : input.columns()) kept.push_back(column.name());
    }
    std::set<std::string> seen;
    for (const std::string& name : kept) {
      const int index = input.ColumnIndex(name);
      if (index < 0) {
        return absl::InvalidArgumentError(
            "score keep: " + source_->Describe() + " has no column '" + name +
            "'; keep only columns the source has");
      }
      if (!seen.insert(name).second) {
        return absl::InvalidArgumentError("score keep: column '" + name +
                                          "' is listed twice");
      }
      if (std::find(output_names_.begin(), output_names_.end(), name) !=
          output_names_.end()) {
        return absl::InvalidArgumentError(
            "score: the kept column '" + name + "' of " + source_->Describe() +
            " has the name of an output column; leave it out of `keep` (or " +
            "list the columns to keep when `keep` is empty)");
      }
      keep_indices_.push_back(static_cast<size_t>(index));
    }
    return absl::OkStatus();
  }

  // Predicts `rows` encoded rows in up to `threads_` slices at once, into
  // one row-major output.
  absl::Status PredictSlices(const std::vector<float>& features, size_t rows,
                             std::vector<float>* out) {
    const size_t width = model_.signature().features().size();
    const size_t slices = std::max<size_t>(
        1, std::min<size_t>(static_cast<size_t>(threads_),
                            rows / kMinSliceRows));
    const size_t per_slice = (rows + slices - 1) / slices;
    std::vector<std::vector<float>> outputs(slices);
    std::vector<absl::Status> statuses(slices);
    auto predict = [&](size_t s) {
      const size_t begin = s * per_slice;
      const size_t count = std::min(rows, begin + per_slice) - begin;
      statuses[s] =
          model_.Predict(features.data() + begin * width, count, &outputs[s]);
    };
    std::vector<std::thread> helpers;
    for (size_t s = 1; s < slices; ++s) helpers.emplace_back(predict, s);
    predict(0);
    for (std::thread& helper : helpers) helper.join();
    out->clear();
    for (size_t s = 0; s < slices; ++s) {
      RETURN_IF_ERROR(statuses[s]);
      out->insert(out->end(), outputs[s].begin(), outputs[s].end());
    }
    return absl::OkStatus();
  }

  absl::StatusOr<Table> ScoreChunk(Table input) {
    if (!planned_) {
      RETURN_IF_ERROR(PlanColumns(input));
      planned_ = true;
    }
    const Signature& signature = model_.signature();
    const size_t rows = input.num_rows();
    RETURN_IF_ERROR(EncodeTable(signature, input, &features_, nullptr),
                    "scoring " + source_->Describe());
    RETURN_IF_ERROR(PredictSlices(features_, rows, &predictions_),
                    "scoring " + source_->Describe() + " with model version " +
                        std::to_string(model_version_));
    Table output;
    for (size_t index : keep_indices_) {
      RETURN_IF_ERROR(
          output.AddColumn(std::move(input.mutable_column(index))));
    }
    for (Column& column : PredictionColumns(rows)) {
      RETURN_IF_ERROR(output.AddColumn(std::move(column)));
    }
    return output;
  }

  std::vector<Column> PredictionColumns(size_t rows) const {
    const Signature& signature = model_.signature();
    const size_t width = static_cast<size_t>(signature.output_width());
    std::vector<Column> columns;
    if (signature.task() == Task::kRegression) {
      Column prediction(kPredictionColumn, DataType::kFloat64);
      prediction.Reserve(rows);
      for (size_t r = 0; r < rows; ++r) {
        prediction.AppendFloat64(predictions_[r]);
      }
      columns.push_back(std::move(prediction));
    } else if (signature.task() == Task::kBinaryClassification) {
      Column prediction(kPredictionColumn, labels_.type);
      Column probability(output_names_[1], DataType::kFloat64);
      prediction.Reserve(rows);
      probability.Reserve(rows);
      for (size_t r = 0; r < rows; ++r) {
        const float p1 = predictions_[r];
        AppendLabel(labels_, p1 > 1.0f - p1 ? 1 : 0, &prediction);
        probability.AppendFloat64(p1);
      }
      columns.push_back(std::move(prediction));
      columns.push_back(std::move(probability));
    } else {
      Column prediction(kPredictionColumn, labels_.type);
      prediction.Reserve(rows);
      std::vector<Column> probabilities;
      for (size_t k = 0; k < width; ++k) {
        probabilities.emplace_back(output_names_[1 + k], DataType::kFloat64);
        probabilities.back().Reserve(rows);
      }
      for (size_t r = 0; r < rows; ++r) {
        const float* p = predictions_.data() + r * width;
        size_t best = 0;
        for (size_t k = 0; k < width; ++k) {
          if (p[k] > p[best]) best = k;
          probabilities[k].AppendFloat64(p[k]);
        }
        AppendLabel(labels_, static_cast<int>(best), &prediction);
      }
      columns.push_back(std::move(prediction));
      for (Column& column : probabilities) columns.push_back(std::move(column));
    }
    Column version(kModelVersionColumn, DataType::kInt64);
    version.Reserve(rows);
    for (size_t r = 0; r < rows; ++r) version.AppendInt64(model_version_);
    columns.push_back(std::move(version));
    return columns;
  }

  DataSource* const source_;
  const Model& model_;
  const int64_t model_version_;
  const std::vector<std::string>& keep_;
  DataSink* const sink_;
  const ScoreOptions& options_;
  const int threads_;
  const LabelColumn labels_;
  const std::vector<std::string> output_names_;

  // Used by the predicting thread only.
  bool planned_ = false;
  std::vector<size_t> keep_indices_;
  std::vector<float> features_;
  std::vector<float> predictions_;

  absl::Mutex mu_;
  absl::CondVar changed_;  // any of the fields below changed
  std::deque<Table> to_predict_ ABSL_GUARDED_BY(mu_);
  std::deque<Table> to_write_ ABSL_GUARDED_BY(mu_);
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;  // read, not yet written
  bool read_done_ ABSL_GUARDED_BY(mu_) = false;
  bool predict_done_ ABSL_GUARDED_BY(mu_) = false;
  int64_t rows_written_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status status_ ABSL_GUARDED_BY(mu_);  // the first failure
};

}  // namespace

absl::StatusOr<ScoreReport> ScoreStream(DataSource* source, const Model& model,
                                        int64_t model_version,
                                        const std::vector<std::string>& keep,
                                        DataSink* sink,
                                        const ScoreOptions& options) {
  if (options.max_chunks_in_flight < 1) {
    return absl::InvalidArgumentError(
        "score: max_chunks_in_flight must be at least 1, got " +
        std::to_string(options.max_chunks_in_flight));
  }
  ScorePipeline pipeline(source, model, model_version, keep, sink, options);
  return pipeline.Run();
}

}  // namespace slipway
