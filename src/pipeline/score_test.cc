#include "pipeline/score.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "models/features.h"
#include "models/model.h"
#include "train/trainer.h"

namespace slipway {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Rows with id = first_id, first_id + 1, ... and x = id / 1000.
Table Rows(int64_t first_id, int64_t n) {
  Column id("id", DataType::kInt64);
  Column x("x", DataType::kFloat64);
  Column note("note", DataType::kString);
  for (int64_t i = 0; i < n; ++i) {
    id.AppendInt64(first_id + i);
    x.AppendFloat64(static_cast<double>(first_id + i) / 1000.0);
    note.AppendString((first_id + i) % 2 == 0 ? "even" : "odd");
  }
  Table table;
  EXPECT_TRUE(table.AddColumn(std::move(id)).ok());
  EXPECT_TRUE(table.AddColumn(std::move(x)).ok());
  EXPECT_TRUE(table.AddColumn(std::move(note)).ok());
  return table;
}

std::vector<std::string> Names(const Table& table) {
  std::vector<std::string> names;
  for (const Column& c : table.columns()) names.push_back(c.name());
  return names;
}

// Counts chunks handed out and taken, to check how many are in flight.
struct Flow {
  absl::Mutex mu;
  int read ABSL_GUARDED_BY(mu) = 0;     // chunks NextChunk returned
  int written ABSL_GUARDED_BY(mu) = 0;  // chunks the sink took
  int max_in_flight ABSL_GUARDED_BY(mu) = 0;
  bool source_done ABSL_GUARDED_BY(mu) = false;
};

class FakeSource : public DataSource {
 public:
  // `chunks` chunks of `rows` rows each; chunk `fail_at` (0-based) fails.
  FakeSource(int chunks, int rows, Flow* flow, int fail_at = -1)
      : chunks_(chunks), rows_(rows), flow_(flow), fail_at_(fail_at) {}

  absl::StatusOr<std::optional<Table>> NextChunk() override {
    if (next_ == fail_at_) {
      return absl::DataLossError("fake source: chunk " +
                                 std::to_string(next_) + " is corrupt");
    }
    absl::MutexLock lock(&flow_->mu);
    if (next_ == chunks_) {
      flow_->source_done = true;
      return std::optional<Table>();
    }
    ++flow_->read;
    flow_->max_in_flight =
        std::max(flow_->max_in_flight, flow_->read - flow_->written);
    Table chunk = Rows(static_cast<int64_t>(next_) * rows_, rows_);
    ++next_;
    return std::optional<Table>(std::move(chunk));
  }
  std::string Fingerprint() const override {
    return "read " + std::to_string(next_);
  }
  std::string Describe() const override { return "fake source"; }

  int chunks_returned() const { return next_; }

 private:
  const int chunks_;
  const int rows_;
  Flow* flow_;
  const int fail_at_;
  int next_ = 0;
};

class FakeSink : public DataSink {
 public:
  explicit FakeSink(Flow* flow) : flow_(flow) {}

  // The first Write waits (bounded) until the source has filled the
  // pipeline with `chunks` chunks or has ended, so the bound is reached.
  void HoldFirstWriteUntilInFlight(int chunks) { hold_until_ = chunks; }

  absl::Status Write(const Table& chunk) override {
    if (hold_until_ > 0 && written_.empty()) {
      const auto deadline =
          std::chrono::steady_clock::now() + std::chrono::seconds(10);
      absl::MutexLock lock(&flow_->mu);
      auto filled = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(flow_->mu) {
        return flow_->read >= hold_until_ || flow_->source_done;
      };
      while (!filled() && std::chrono::steady_clock::now() < deadline) {
        flow_->mu.AwaitWithTimeout(absl::Condition(&filled),
                                   absl::Milliseconds(10));
      }
    }
    {
      absl::MutexLock lock(&flow_->mu);
      ++flow_->written;
    }
    written_.push_back(chunk);
    return absl::OkStatus();
  }
  absl::Status Finish() override {
    finished_ = true;
    return absl::OkStatus();
  }
  std::string Describe() const override { return "fake sink"; }

  const std::vector<Table>& written() const { return written_; }
  bool finished() const { return finished_; }

 private:
  Flow* flow_;
  int hold_until_ = 0;
  std::vector<Table> written_;
  bool finished_ = false;
};

// Predicts from the first feature x alone: binary P(1) = x; multiclass the
// class floor(x * 3) % 3 gets 0.8 and the others 0.1; regression 2x.
class FakeModel : public Model {
 public:
  using Model::Model;
  std::string_view format() const override { return "fake"; }
  absl::Status Predict(const float* rows, size_t num_rows,
                       std::vector<float>* out) const override {
    const size_t width = signature().features().size();
    const int outputs = signature().output_width();
    out->assign(num_rows * outputs, 0.0f);
    for (size_t r = 0; r < num_rows; ++r) {
      const float x = rows[r * width];
      switch (signature().task()) {
        case Task::kBinaryClassification:
          (*out)[r] = x;
          break;
        case Task::kRegression:
          (*out)[r] = 2 * x;
          break;
        case Task::kMulticlassClassification: {
          const int k = static_cast<int>(std::floor(x * 3)) % 3;
          for (int c = 0; c < outputs; ++c) {
            (*out)[r * outputs + c] = c == k ? 0.8f : 0.1f;
          }
          break;
        }
      }
    }
    return absl::OkStatus();
  }
};

std::vector<FeatureSpec> XFeature() {
  return {FeatureSpec{"x", DataType::kFloat64, {}}};
}

FakeModel BinaryModel() {
  return FakeModel(Signature(Task::kBinaryClassification, XFeature(), "y",
                             DataType::kInt64, {"0", "1"}));
}

Table Concatenated(const std::vector<Table>& chunks) {
  Table all;
  for (const Table& chunk : chunks) EXPECT_TRUE(all.AppendRows(chunk).ok());
  return all;
}

TEST(ScoreStreamTest, BinaryGivesLabelTypedLikeTargetAndProbability) {
  Flow flow;
  FakeSource source(1, 1000, &flow);
  FakeSink sink(&flow);
  FakeModel model = BinaryModel();
  auto report = ScoreStream(&source, model, 7, {}, &sink, ScoreOptions());
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->rows, 1000);
  EXPECT_EQ(report->source_fingerprint, "read 1");
  EXPECT_TRUE(sink.finished());
  const Table out = Concatenated(sink.written());
  EXPECT_THAT(Names(out), ElementsAre("id", "x", "note", "prediction",
                                      "probability", "model_version"));
  const Column& prediction = *out.FindColumn("prediction");
  const Column& probability = *out.FindColumn("probability");
  const Column& version = *out.FindColumn("model_version");
  ASSERT_EQ(prediction.type(), DataType::kInt64);
  ASSERT_EQ(version.type(), DataType::kInt64);
  for (size_t r = 0; r < out.num_rows(); ++r) {
    const float p = static_cast<float>(static_cast<double>(r) / 1000.0);
    EXPECT_FLOAT_EQ(probability.Float64At(r), p);
    EXPECT_EQ(prediction.Int64At(r), p > 0.5f ? 1 : 0) << "row " << r;
    EXPECT_EQ(version.Int64At(r), 7);
  }
}

TEST(ScoreStreamTest, MulticlassGivesOneProbabilityColumnPerClass) {
  Flow flow;
  FakeSource source(2, 500, &flow);
  FakeSink sink(&flow);
  FakeModel model(Signature(Task::kMulticlassClassification, XFeature(),
                            "kind", DataType::kString, {"a", "b", "c"}));
  auto report = ScoreStream(&source, model, 2, {"id"}, &sink, ScoreOptions());
  ASSERT_TRUE(report.ok()) << report.status();
  const Table out = Concatenated(sink.written());
  EXPECT_THAT(Names(out),
              ElementsAre("id", "prediction", "probability_a",
                          "probability_b", "probability_c", "model_version"));
  const Column& prediction = *out.FindColumn("prediction");
  ASSERT_EQ(prediction.type(), DataType::kString);
  const std::string labels[] = {"a", "b", "c"};
  for (size_t r = 0; r < out.num_rows(); ++r) {
    const float x = static_cast<float>(static_cast<double>(r) / 1000.0);
    const int k = static_cast<int>(std::floor(x * 3)) % 3;
    EXPECT_EQ(prediction.StringAt(r), labels[k]) << "row " << r;
    EXPECT_FLOAT_EQ(out.FindColumn("probability_" + labels[k])->Float64At(r),
                    0.8f);
  }
}

TEST(ScoreStreamTest, RegressionGivesPredictionOnly) {
  Flow flow;
  FakeSource source(1, 10, &flow);
  FakeSink sink(&flow);
  FakeModel model(Signature(Task::kRegression, XFeature(), "price",
                            DataType::kFloat64, {}));
  auto report =
      ScoreStream(&source, model, 1, {"note", "id"}, &sink, ScoreOptions());
  ASSERT_TRUE(report.ok()) << report.status();
  const Table out = Concatenated(sink.written());
  EXPECT_THAT(Names(out),
              ElementsAre("note", "id", "prediction", "model_version"));
  EXPECT_EQ(out.FindColumn("prediction")->type(), DataType::kFloat64);
  EXPECT_FLOAT_EQ(out.FindColumn("prediction")->Float64At(3), 2 * 0.003f);
  EXPECT_EQ(out.FindColumn("note")->StringAt(3), "odd");
}

TEST(ScoreStreamTest, KeepsRowOrderOverManyChunksAndThreads) {
  Flow flow;
  FakeSource source(60, 2500, &flow);
  FakeSink sink(&flow);
  FakeModel model = BinaryModel();
  ScoreOptions options;
  options.threads = 4;
  std::vector<int64_t> progress;
  options.progress = [&progress](int64_t rows) { progress.push_back(rows); };
  auto report = ScoreStream(&source, model, 1, {"id"}, &sink, options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->rows, 150000);
  ASSERT_EQ(progress.size(), 60u);
  EXPECT_EQ(progress.front(), 2500);
  EXPECT_EQ(progress.back(), 150000);
  const Table out = Concatenated(sink.written());
  ASSERT_EQ(out.num_rows(), 150000u);
  const Column& id = *out.FindColumn("id");
  const Column& probability = *out.FindColumn("probability");
  for (size_t r = 0; r < out.num_rows(); ++r) {
    ASSERT_EQ(id.Int64At(r), static_cast<int64_t>(r));
    ASSERT_FLOAT_EQ(probability.Float64At(r),
                    static_cast<float>(static_cast<double>(r) / 1000.0));
  }
}

TEST(ScoreStreamTest, BoundsTheChunksInFlight) {
  Flow flow;
  FakeSource source(20, 100, &flow);
  FakeSink sink(&flow);
  sink.HoldFirstWriteUntilInFlight(3);
  FakeModel model = BinaryModel();
  ScoreOptions options;
  options.max_chunks_in_flight = 3;
  auto report = ScoreStream(&source, model, 1, {}, &sink, options);
  ASSERT_TRUE(report.ok()) << report.status();
  absl::MutexLock lock(&flow.mu);
  // The held first write let the reader fill every slot, and no more.
  EXPECT_EQ(flow.max_in_flight, 3);
  EXPECT_EQ(flow.written, 20);
}

TEST(ScoreStreamTest, MissingFeatureNamesItAndTheSource) {
  Flow flow;
  FakeSource source(3, 10, &flow);
  FakeSink sink(&flow);
  FakeModel model(Signature(
      Task::kRegression,
      {FeatureSpec{"x", DataType::kFloat64, {}},
       FeatureSpec{"age", DataType::kFloat64, {}},
       FeatureSpec{"plan", DataType::kString, {"basic", "pro"}}},
      "price", DataType::kFloat64, {}));
  auto report = ScoreStream(&source, model, 1, {}, &sink, ScoreOptions());
  ASSERT_EQ(report.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(report.status().message(),
              HasSubstr("fake source lacks the model's features 'age', "
                        "'plan'"));
  EXPECT_FALSE(sink.finished());
  EXPECT_TRUE(sink.written().empty());
}

TEST(ScoreStreamTest, RefusesBadKeepColumns) {
  FakeModel model = BinaryModel();
  {
    Flow flow;
    FakeSource source(1, 10, &flow);
    FakeSink sink(&flow);
    auto report =
        ScoreStream(&source, model, 1, {"id", "zip"}, &sink, ScoreOptions());
    EXPECT_EQ(report.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(report.status().message(), HasSubstr("no column 'zip'"));
  }
  {
    Flow flow;
    FakeSource source(1, 10, &flow);
    FakeSink sink(&flow);
    auto report =
        ScoreStream(&source, model, 1, {"id", "id"}, &sink, ScoreOptions());
    EXPECT_THAT(report.status().message(), HasSubstr("'id' is listed twice"));
  }
}

TEST(ScoreStreamTest, CancelStopsWithoutFinishingTheSink) {
  Flow flow;
  FakeSource source(200, 100, &flow);
  FakeSink sink(&flow);
  FakeModel model = BinaryModel();
  std::atomic<bool> cancel{false};
  ScoreOptions options;
  options.cancel = &cancel;
  options.progress = [&cancel](int64_t) { cancel.store(true); };
  auto report = ScoreStream(&source, model, 1, {}, &sink, options);
  EXPECT_EQ(report.status().code(), absl::StatusCode::kCancelled);
  EXPECT_THAT(report.status().message(), HasSubstr("fake source"));
  EXPECT_FALSE(sink.finished());
  // At most the chunks in flight were read after the first write.
  EXPECT_LE(source.chunks_returned(), 1 + options.max_chunks_in_flight);
}

TEST(ScoreStreamTest, SourceErrorFailsTheRunAndLeavesTheSinkUnfinished) {
  Flow flow;
  FakeSource source(10, 100, &flow, /*fail_at=*/4);
  FakeSink sink(&flow);
  FakeModel model = BinaryModel();
  auto report = ScoreStream(&source, model, 1, {}, &sink, ScoreOptions());
  EXPECT_EQ(report.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(report.status().message(), HasSubstr("chunk 4 is corrupt"));
  EXPECT_FALSE(sink.finished());
}

TEST(ScoreStreamTest, XgboostPredictionsMatchTheModel) {
  Table train = Rows(0, 2000);
  Column y("y", DataType::kInt64);
  for (int64_t i = 0; i < 2000; ++i) y.AppendInt64(i % 7 < 3 ? 1 : 0);
  ASSERT_TRUE(train.AddColumn(std::move(y)).ok());
  TrainOptions train_options;
  train_options.rounds = 5;
  train_options.threads = 1;
  train_options.exclude = {"id"};
  auto trained = TrainXgboost(train, "y", train_options);
  ASSERT_TRUE(trained.ok()) << trained.status();
  auto model = LoadModel(trained->format, trained->model_bytes,
                         trained->signature);
  ASSERT_TRUE(model.ok()) << model.status();

  Flow flow;
  FakeSource source(4, 5000, &flow);
  FakeSink sink(&flow);
  ScoreOptions options;
  options.threads = 3;
  auto report = ScoreStream(&source, **model, 3, {"id"}, &sink, options);
  ASSERT_TRUE(report.ok()) << report.status();
  const Table out = Concatenated(sink.written());
  const Table in = Rows(0, 20000);
  std::vector<float> encoded, expected;
  ASSERT_TRUE(EncodeTable((*model)->signature(), in, &encoded, nullptr).ok());
  ASSERT_TRUE((*model)->Predict(encoded.data(), in.num_rows(), &expected).ok());
  const Column& probability = *out.FindColumn("probability");
  const Column& prediction = *out.FindColumn("prediction");
  for (size_t r = 0; r < in.num_rows(); ++r) {
    ASSERT_EQ(probability.Float64At(r), expected[r]) << "row " << r;
    ASSERT_EQ(prediction.Int64At(r), expected[r] > 0.5f ? 1 : 0);
  }
}

}  // namespace
}  // namespace slipway
