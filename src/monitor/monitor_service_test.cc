#include "monitor/monitor_service.h"

#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "core/filesystem.h"
#include "core/hash.h"
#include "core/ids.h"
#include "data/drift_stream.h"
#include "data/table.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "models/features.h"
#include "models/model.h"
#include "models/signature.h"
#include "monitor/alerts.h"
#include "nlohmann/json.hpp"
#include "stats/drift.h"
#include "stats/profile.h"
#include "store/sqlite_store.h"
#include "testing/fake_clock.h"
#include "testing/temp_dir.h"
#include "train/baseline.h"

namespace slipway {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr int64_t kSecond = 1'000'000;
constexpr int64_t kWindow = 60 * kSecond;
constexpr int64_t kForever = std::numeric_limits<int64_t>::max();
const char* const kApp = "churn";

// The drift stream's features, as a model trained on it would take them.
const std::vector<std::string>& FeatureNames() {
  static const std::vector<std::string> names = {
      "age",    "income",        "tenure",       "plan",
      "region", "support_calls", "monthly_spend"};
  return names;
}

DriftStreamOptions Rows(int64_t start, int64_t rows,
                        int64_t covariate_shift_at = -1) {
  DriftStreamOptions options;
  options.start = start;
  options.rows = rows;
  options.covariate_shift_at = covariate_shift_at;
  return options;
}

Table Generate(const DriftStreamOptions& options) {
  absl::StatusOr<Table> table = GenerateDriftTable(options);
  EXPECT_TRUE(table.ok()) << table.status();
  return table.ok() ? *std::move(table) : Table();
}

// Binary churn model signature over the drift stream's columns, with the
// categories of the training rows.
Signature ChurnSignature(const Table& training) {
  std::vector<FeatureSpec> features;
  for (const std::string& name : FeatureNames()) {
    const Column* column = training.FindColumn(name);
    FeatureSpec spec;
    spec.name = name;
    spec.type = column->type();
    if (spec.is_categorical()) spec.categories = CategoryTexts(*column);
    features.push_back(std::move(spec));
  }
  return Signature(Task::kBinaryClassification, std::move(features), "churned",
                   DataType::kInt64, {"0", "1"});
}

// P(churn) rises with support calls; 0.5 when they are missing.
class FakeChurnModel : public Model {
 public:
  explicit FakeChurnModel(Signature signature) : Model(std::move(signature)) {}
  std::string_view format() const override { return "fake"; }
  absl::Status Predict(const float* rows, size_t num_rows,
                       std::vector<float>* out) const override {
    const size_t width = signature().features().size();
    const int calls = signature().FeatureIndex("support_calls");
    out->resize(num_rows);
    for (size_t row = 0; row < num_rows; ++row) {
      const float x = rows[row * width + calls];
      (*out)[row] =
          std::isnan(x) ? 0.5f : 1.0f / (1.0f + std::exp(-0.5f * (x - 6.0f)));
    }
    return absl::OkStatus();
  }
};

// The training rows (0..4999), their signature and baseline, built once.
struct Training {
  Table rows;
  Signature signature;
  std::unique_ptr<FakeChurnModel> model;
  ProfileSet baseline;  // features and the numeric prediction
};

const Training& TrainingData() {
  static const Training* training = [] {
    auto* t = new Training;
    t->rows = Generate(Rows(0, 5000));
    t->signature = ChurnSignature(t->rows);
    t->model = std::make_unique<FakeChurnModel>(t->signature);
    absl::StatusOr<ProfileSet> baseline = BaselineProfile(*t->model, t->rows);
    EXPECT_TRUE(baseline.ok()) << baseline.status();
    if (baseline.ok()) t->baseline = *std::move(baseline);
    return t;
  }();
  return *training;
}

// The training baseline without the prediction's profile.
ProfileSet FeatureBaseline() {
  ProfileSet baseline = TrainingData().baseline;
  baseline.prediction.reset();
  return baseline;
}

Signature RegressionSignature() {
  return Signature(Task::kRegression, {{"size", DataType::kFloat64, {}}},
                   "price", DataType::kFloat64, {});
}

AppRevisionRecord Revision(const std::string& app) {
  AppRevisionRecord r;
  r.app = app;
  r.spec_yaml = "app: " + app + "\n";
  r.spec_sha256 = Sha256Hex(r.spec_yaml);
  r.source_dir = "/srv/apps/" + app;
  return r;
}

AlertRuleSpec Rule(std::string name, std::string metric, Comparison comparison,
                   double threshold, int64_t for_windows,
                   std::optional<TriggerEvent> fire = std::nullopt) {
  AlertRuleSpec rule;
  rule.name = std::move(name);
  rule.metric = std::move(metric);
  rule.comparison = comparison;
  rule.threshold = threshold;
  rule.for_windows = for_windows;
  rule.fire = fire;
  return rule;
}

// Reads the store's database file directly: the Store has no reader for
// the prediction log.
class RawDatabase {
 public:
  explicit RawDatabase(const std::string& data_dir) {
    EXPECT_EQ(sqlite3_open_v2(JoinPath(data_dir, "slipway.db").c_str(), &db_,
                              SQLITE_OPEN_READONLY, nullptr),
              SQLITE_OK);
    sqlite3_busy_timeout(db_, 5000);
  }
  ~RawDatabase() { sqlite3_close(db_); }

  // Every prediction of the log, from its chunks (store/README.md): request
  // id, app, version, at, prediction, inputs; by request id.
  std::vector<std::vector<std::string>> Predictions() {
    std::vector<std::vector<std::string>> predictions;
    for (const std::vector<std::string>& chunk :
         Query("SELECT app, records FROM prediction_chunks")) {
      std::string_view records = chunk[1];
      while (!records.empty()) {
        const size_t end = records.find('\n');
        std::string_view line = records.substr(0, end);
        records.remove_prefix(end + 1);
        std::vector<std::string> fields;
        for (size_t tab = line.find('\t'); tab != std::string_view::npos;
             tab = line.find('\t')) {
          fields.emplace_back(line.substr(0, tab));
          line.remove_prefix(tab + 1);
        }
        fields.emplace_back(line);
        fields.insert(fields.begin() + 1, chunk[0]);
        predictions.push_back(std::move(fields));
      }
    }
    std::sort(predictions.begin(), predictions.end());
    return predictions;
  }

  // Every row of a query of text columns.
  std::vector<std::vector<std::string>> Query(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr),
              SQLITE_OK)
        << sql << ": " << sqlite3_errmsg(db_);
    std::vector<std::vector<std::string>> rows;
    while (stmt != nullptr && sqlite3_step(stmt) == SQLITE_ROW) {
      std::vector<std::string> row;
      for (int c = 0; c < sqlite3_column_count(stmt); ++c) {
        const unsigned char* text = sqlite3_column_text(stmt, c);
        row.push_back(text == nullptr ? "" : reinterpret_cast<const char*>(text));
      }
      rows.push_back(std::move(row));
    }
    sqlite3_finalize(stmt);
    return rows;
  }

 private:
  sqlite3* db_ = nullptr;
};

class MonitorServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = OpenSqliteStore(temp_.path(), &clock_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    ASSERT_TRUE(store_->AddAppRevision(Revision(kApp)).ok());
    spec_.window_seconds = kWindow / kSecond;
    window_start_ = clock_.NowMicros() - clock_.NowMicros() % kWindow;
  }

  std::unique_ptr<MonitorService> NewService() {
    MonitorService::Options options;
    options.store = store_.get();
    options.clock = &clock_;
    options.monitor_spec =
        [this](const std::string& app) -> absl::StatusOr<MonitorSpec> {
      absl::MutexLock lock(&mu_);
      return spec_;
    };
    options.on_alert = [this](const Alert& alert) {
      absl::MutexLock lock(&mu_);
      alerts_.push_back(alert);
    };
    absl::StatusOr<std::unique_ptr<MonitorService>> service =
        MonitorService::Create(std::move(options));
    EXPECT_TRUE(service.ok()) << service.status();
    return service.ok() ? *std::move(service) : nullptr;
  }

  MonitorSpec Spec() {
    absl::MutexLock lock(&mu_);
    return spec_;
  }
  void SetSpec(MonitorSpec spec) {
    absl::MutexLock lock(&mu_);
    spec_ = std::move(spec);
  }
  // The alerts handed to on_alert since the last call.
  std::vector<Alert> TakeAlerts() {
    absl::MutexLock lock(&mu_);
    return std::exchange(alerts_, {});
  }

  // Tracks version `version` of kApp with the training signature.
  void Track(MonitorService& service, std::optional<ProfileSet> baseline,
             int version = 1,
             MonitorService::TrackedAs as = MonitorService::TrackedAs::kServing) {
    ASSERT_TRUE(service
                    .Track(kApp, version, TrainingData().signature,
                           std::move(baseline), Spec(), as)
                    .ok());
  }

  // Observes the table's rows as requests of `batch` rows, answered now
  // with the fake model's predictions in 200 us each; returns the
  // predictions.
  std::vector<float> ObserveTable(MonitorService& service, const Table& table,
                                  const std::string& id_prefix,
                                  size_t batch = 100, int version = 1) {
    const Signature& signature = TrainingData().signature;
    std::vector<float> rows;
    EXPECT_TRUE(EncodeTable(signature, table, &rows, nullptr).ok());
    std::vector<float> outputs;
    EXPECT_TRUE(TrainingData()
                    .model->Predict(rows.data(), table.num_rows(), &outputs)
                    .ok());
    const size_t width = signature.features().size();
    for (size_t first = 0, k = 0; first < table.num_rows();
         first += batch, ++k) {
      const size_t n = std::min(batch, table.num_rows() - first);
      service.Observe(kApp, version, id_prefix + "-" + std::to_string(k),
                      clock_.NowMicros(), 200, rows.data() + first * width, n,
                      outputs.data() + first, 1);
    }
    return outputs;
  }

  std::vector<MonitorWindowRecord> Windows(const std::string& app = kApp) {
    auto windows = store_->ListMonitorWindows(app, 0, kForever);
    EXPECT_TRUE(windows.ok()) << windows.status();
    return windows.ok() ? *windows : std::vector<MonitorWindowRecord>();
  }

  std::vector<AlertRecord> StoredAlerts() {
    auto alerts = store_->ListAlerts(kApp);
    EXPECT_TRUE(alerts.ok()) << alerts.status();
    return alerts.ok() ? *alerts : std::vector<AlertRecord>();
  }

  // Predictions stored in the log's chunks.
  int64_t StoredPredictions() {
    RawDatabase db(temp_.path());
    return static_cast<int64_t>(db.Predictions().size());
  }

  int64_t CountRows(const std::string& table) {
    auto counts = store_->CountRows();
    EXPECT_TRUE(counts.ok()) << counts.status();
    if (!counts.ok()) return -1;
    for (const auto& [name, count] : *counts) {
      if (name == table) return count;
    }
    ADD_FAILURE() << "no table " << table;
    return -1;
  }

  // Moves the clock to the end of the current window and ticks.
  void CloseWindow(MonitorService& service) {
    window_start_ += kWindow;
    clock_.Set(window_start_);
    ASSERT_TRUE(service.Tick().ok());
  }

  TempDir temp_;
  FakeClock clock_;
  std::unique_ptr<Store> store_;
  int64_t window_start_ = 0;  // of the window the clock is in

 private:
  absl::Mutex mu_;
  MonitorSpec spec_ ABSL_GUARDED_BY(mu_);
  std::vector<Alert> alerts_ ABSL_GUARDED_BY(mu_);
};

TEST(BucketQuantileTest, InterpolatesWithinABucket) {
  // 10 requests in (100, 250] us.
  std::optional<double> p50 =
      BucketQuantile({100, 250, 500}, {0, 10, 0, 0}, 0.5);
  ASSERT_TRUE(p50.has_value());
  EXPECT_DOUBLE_EQ(*p50, 175);
  EXPECT_FALSE(BucketQuantile({100}, {0, 0}, 0.5).has_value());
}

TEST(BucketQuantileTest, SpansBucketsAndAnswersTheInfBucketByItsLowerBound) {
  // 4 in (0, 100], 4 in (100, 200]: the median is the first bucket's top,
  // the 75th percentile halfway through the second.
  EXPECT_DOUBLE_EQ(*BucketQuantile({100, 200}, {4, 4, 0}, 0.5), 100);
  EXPECT_DOUBLE_EQ(*BucketQuantile({100, 200}, {4, 4, 0}, 0.75), 150);
  EXPECT_DOUBLE_EQ(*BucketQuantile({100, 200}, {0, 0, 3}, 0.99), 200);
  // Counts that do not fit the bounds answer nothing.
  EXPECT_FALSE(BucketQuantile({100, 200}, {1, 1}, 0.5).has_value());
}

TEST(DriftPolicyForTest, MapsMethodsAndThresholds) {
  DriftSpec spec;
  spec.warn = 0.05;
  spec.alert = 0.4;
  DriftPolicy policy = DriftPolicyFor(spec);
  EXPECT_EQ(policy.defaults.method, DriftMethod::kAuto);
  EXPECT_DOUBLE_EQ(policy.defaults.psi_warn, 0.05);
  EXPECT_DOUBLE_EQ(policy.defaults.psi_alert, 0.4);
  EXPECT_DOUBLE_EQ(policy.defaults.max_wasserstein,
                   DriftThresholds().max_wasserstein);
  EXPECT_TRUE(policy.features.empty());

  // Each method's threshold sets its own level and leaves the others.
  struct Case {
    const char* method;
    double threshold;
    DriftMethod expected;
    std::vector<double DriftThresholds::*> levels;  // set to the threshold
  };
  const DriftThresholds defaults;
  for (const Case& c : std::vector<Case>{
           {"psi", 0.3, DriftMethod::kPsi, {&DriftThresholds::psi_alert}},
           {"ks", 0.01, DriftMethod::kKs, {&DriftThresholds::max_pvalue}},
           {"chi2", 0.001, DriftMethod::kChiSquare,
            {&DriftThresholds::max_pvalue}},
           {"wasserstein", 0.2, DriftMethod::kWasserstein,
            {&DriftThresholds::max_wasserstein}},
           {"js", 0.25, DriftMethod::kJensenShannon,
            {&DriftThresholds::max_js}},
           // auto: the distance level of both distances.
           {"auto", 0.15, DriftMethod::kAuto,
            {&DriftThresholds::max_wasserstein, &DriftThresholds::max_js}}}) {
    spec.rule.method = c.method;
    spec.rule.threshold = c.threshold;
    policy = DriftPolicyFor(spec);
    EXPECT_EQ(policy.defaults.method, c.expected) << c.method;
    for (double DriftThresholds::*level :
         {&DriftThresholds::psi_alert, &DriftThresholds::max_pvalue,
          &DriftThresholds::max_wasserstein, &DriftThresholds::max_js}) {
      const bool set = std::find(c.levels.begin(), c.levels.end(), level) !=
                       c.levels.end();
      const double untouched =
          level == &DriftThresholds::psi_alert ? 0.4 : defaults.*level;
      EXPECT_DOUBLE_EQ(policy.defaults.*level, set ? c.threshold : untouched)
          << c.method;
    }
    EXPECT_DOUBLE_EQ(policy.defaults.psi_warn, 0.05) << c.method;
  }

  // Per-feature overrides, with the spec's warn and alert levels.
  DriftRuleSpec income;
  income.method = "ks";
  income.threshold = 0.001;
  DriftRuleSpec prediction;
  prediction.method = "psi";
  spec.features = {{"income", income}, {"prediction", prediction}};
  policy = DriftPolicyFor(spec);
  ASSERT_EQ(policy.features.size(), 2u);
  EXPECT_EQ(policy.For("income").method, DriftMethod::kKs);
  EXPECT_DOUBLE_EQ(policy.For("income").max_pvalue, 0.001);
  EXPECT_DOUBLE_EQ(policy.For("income").psi_warn, 0.05);
  EXPECT_EQ(policy.For("prediction").method, DriftMethod::kPsi);
  EXPECT_DOUBLE_EQ(policy.For("prediction").psi_alert, 0.4);
  EXPECT_EQ(policy.For("age").method, DriftMethod::kAuto);
  EXPECT_DOUBLE_EQ(policy.For("age").max_wasserstein, 0.15);
}

TEST_F(MonitorServiceTest, CreateRefusesMissingOptions) {
  MonitorService::Options options;
  options.store = store_.get();
  absl::StatusOr<std::unique_ptr<MonitorService>> service =
      MonitorService::Create(options);
  EXPECT_EQ(service.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(service.status().message(), HasSubstr("clock"));
}

TEST_F(MonitorServiceTest, TickStoresTheWindowOnceItEnds) {
  std::unique_ptr<MonitorService> service = NewService();
  Track(*service, FeatureBaseline());
  // The clock is 20 s into an aligned window.
  ASSERT_EQ(clock_.NowMicros() - window_start_, 20 * kSecond);

  ObserveTable(*service, Generate(Rows(5000, 250)), "req-a", 50);
  ASSERT_TRUE(service->Tick().ok());
  clock_.Set(window_start_ + kWindow - 1);
  ASSERT_TRUE(service->Tick().ok());
  EXPECT_TRUE(Windows().empty());

  CloseWindow(*service);
  std::vector<MonitorWindowRecord> windows = Windows();
  ASSERT_EQ(windows.size(), 1u);
  const MonitorWindowRecord& w = windows[0];
  EXPECT_EQ(w.app, kApp);
  EXPECT_EQ(w.version, 1);
  EXPECT_EQ(w.rows, 250);
  EXPECT_EQ(w.start_at, window_start_ - kWindow);
  EXPECT_EQ(w.end_at, window_start_);
  EXPECT_EQ(w.start_at % kWindow, 0);
  json drift = json::parse(w.drift_json);
  ASSERT_TRUE(drift.contains("features")) << w.drift_json;
  EXPECT_EQ(drift["features"].size(), FeatureNames().size());
  for (const std::string& name : FeatureNames()) {
    ASSERT_TRUE(drift["features"].contains(name)) << name;
    EXPECT_FALSE(drift["features"][name]["insufficient"].get<bool>()) << name;
  }
  EXPECT_EQ(drift["features"]["plan"]["kind"], "categorical");
  EXPECT_EQ(drift["features"]["income"]["kind"], "numeric");
  EXPECT_FALSE(drift.contains("prediction"));
  // Every request took 200 us: inside (100, 250] us.
  EXPECT_DOUBLE_EQ(drift["latency_p50_ms"].get<double>(), 0.175);
  EXPECT_DOUBLE_EQ(drift["latency_p99_ms"].get<double>(), 0.2485);
  json profile = json::parse(w.profile_json);
  EXPECT_EQ(profile["rows"], 250);
  EXPECT_EQ(json::parse(w.kpis_json), json::object());

  // A window without rows or feedback is not stored.
  CloseWindow(*service);
  EXPECT_EQ(Windows().size(), 1u);

  // A window whose end passed long ago is closed at its end; the next one
  // starts at the current aligned window.
  ObserveTable(*service, Generate(Rows(6000, 40)), "req-b", 40);
  clock_.Set(window_start_ + 5 * kWindow + 7 * kSecond);
  ASSERT_TRUE(service->Tick().ok());
  windows = Windows();
  ASSERT_EQ(windows.size(), 2u);
  EXPECT_EQ(windows[1].start_at, window_start_);
  EXPECT_EQ(windows[1].end_at, window_start_ + kWindow);
  EXPECT_EQ(windows[1].rows, 40);
  ObserveTable(*service, Generate(Rows(7000, 35)), "req-c", 35);
  clock_.Set(window_start_ + 6 * kWindow);
  ASSERT_TRUE(service->Tick().ok());
  windows = Windows();
  ASSERT_EQ(windows.size(), 3u);
  EXPECT_EQ(windows[2].start_at, window_start_ + 5 * kWindow);
  EXPECT_EQ(windows[2].end_at, window_start_ + 6 * kWindow);
  EXPECT_EQ(windows[2].rows, 35);
}

TEST_F(MonitorServiceTest, WindowWithPredictionProfileComparesThePrediction) {
  std::unique_ptr<MonitorService> service = NewService();
  Track(*service, TrainingData().baseline);
  ObserveTable(*service, Generate(Rows(5000, 500)), "req");
  CloseWindow(*service);
  std::vector<MonitorWindowRecord> windows = Windows();
  ASSERT_EQ(windows.size(), 1u);
  json drift = json::parse(windows[0].drift_json);
  ASSERT_TRUE(drift.contains("prediction")) << windows[0].drift_json;
  EXPECT_EQ(drift["prediction"]["name"], "prediction");
  EXPECT_EQ(drift["prediction"]["kind"], "numeric");
  EXPECT_FALSE(drift["prediction"]["drift"].get<bool>());
  EXPECT_EQ(drift["features"].size(), FeatureNames().size());
  EXPECT_FALSE(drift["features"].contains("prediction"));
  EXPECT_THAT(service->RenderMetrics(),
              HasSubstr("slipway_drift_detected{app=\"churn\",version=\"1\","
                        "feature=\"prediction\"} 0\n"));
  EXPECT_TRUE(TakeAlerts().empty());
}

// The issue's false-alarm acceptance through the server's path (profiler,
// stored windows, alert engine): 5 seeds x 10 undrifted windows of 500
// rows against the 5,000-row baseline raise no drift alert.
TEST_F(MonitorServiceTest, UndriftedTrafficRaisesNoDriftAlert) {
  std::unique_ptr<MonitorService> service = NewService();
  Track(*service, FeatureBaseline());
  int windows = 0;
  for (uint64_t seed = 11; seed <= 15; ++seed) {
    for (int w = 0; w < 10; ++w) {
      DriftStreamOptions options = Rows(100'000 + w * 500, 500);
      options.seed = seed;
      ObserveTable(*service, Generate(options),
                   "req-" + std::to_string(seed) + "-" + std::to_string(w));
      CloseWindow(*service);
      ++windows;
    }
  }
  EXPECT_EQ(Windows().size(), static_cast<size_t>(windows));
  for (const MonitorWindowRecord& window : Windows()) {
    EXPECT_EQ(window.rows, 500);
    for (const auto& [name, drift] :
         json::parse(window.drift_json)["features"].items()) {
      EXPECT_FALSE(drift["insufficient"].get<bool>()) << name;
    }
  }
  std::vector<Alert> fired = TakeAlerts();
  EXPECT_TRUE(fired.empty()) << fired.front().ToJson().dump();
  EXPECT_TRUE(StoredAlerts().empty());
}

TEST_F(MonitorServiceTest, DriftFiresPerFeatureResolvesAndDeduplicates) {
  std::unique_ptr<MonitorService> service = NewService();
  Track(*service, FeatureBaseline());

  ObserveTable(*service, Generate(Rows(5000, 1000, 5000)), "req-w1");
  CloseWindow(*service);
  std::vector<MonitorWindowRecord> windows = Windows();
  ASSERT_EQ(windows.size(), 1u);
  EXPECT_EQ(windows[0].rows, 1000);
  json features = json::parse(windows[0].drift_json)["features"];
  for (const std::string& name : FeatureNames()) {
    const bool shifted = name == "income" || name == "region";
    EXPECT_EQ(features[name]["drift"].get<bool>(), shifted)
        << name << ": " << features[name].dump();
  }

  std::vector<Alert> fired = TakeAlerts();
  ASSERT_EQ(fired.size(), 2u);
  EXPECT_EQ(fired[0].rule, "drift:income");
  EXPECT_EQ(fired[1].rule, "drift:region");
  for (const Alert& a : fired) {
    EXPECT_EQ(a.state, AlertState::kFiring);
    EXPECT_EQ(a.app, kApp);
    EXPECT_EQ(a.fire, TriggerEvent::kDrift);
    EXPECT_EQ(a.since_micros, window_start_);
  }
  EXPECT_EQ(fired[0].metric, "drift.income.drift");
  std::vector<AlertRecord> stored = StoredAlerts();
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored[0].rule, "drift:income");
  EXPECT_EQ(stored[0].state, "firing");
  EXPECT_EQ(stored[1].rule, "drift:region");
  EXPECT_EQ(stored[1].state, "firing");
  EXPECT_EQ(json::parse(stored[0].alert_json)["state"], "firing");

  // Traffic returns to normal: both resolve, once each.
  ObserveTable(*service, Generate(Rows(6000, 1000)), "req-w2");
  CloseWindow(*service);
  features = json::parse(Windows().back().drift_json)["features"];
  for (const std::string& name : FeatureNames()) {
    EXPECT_FALSE(features[name]["drift"].get<bool>()) << name;
  }
  std::vector<Alert> resolved = TakeAlerts();
  ASSERT_EQ(resolved.size(), 2u);
  EXPECT_EQ(resolved[0].rule, "drift:income");
  EXPECT_EQ(resolved[0].state, AlertState::kResolved);
  EXPECT_EQ(resolved[1].rule, "drift:region");
  EXPECT_EQ(resolved[1].state, AlertState::kResolved);
  stored = StoredAlerts();
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored[0].state, "resolved");
  EXPECT_EQ(stored[1].state, "resolved");

  // Another normal window reports nothing new.
  ObserveTable(*service, Generate(Rows(7000, 1000)), "req-w3");
  CloseWindow(*service);
  EXPECT_EQ(Windows().size(), 3u);
  EXPECT_TRUE(TakeAlerts().empty());
  stored = StoredAlerts();
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored[0].state, "resolved");
  EXPECT_EQ(stored[1].state, "resolved");
}

TEST_F(MonitorServiceTest, ChangedRulesKeepTheStateOfTheOthers) {
  std::unique_ptr<MonitorService> service = NewService();
  Track(*service, FeatureBaseline());
  ObserveTable(*service, Generate(Rows(5000, 1000, 5000)), "req-w1");
  CloseWindow(*service);
  ASSERT_EQ(TakeAlerts().size(), 2u);

  // A rule added to the spec rebuilds the engine on the next Tick; the
  // firing drift alerts are not reported again.
  MonitorSpec spec = Spec();
  spec.rules.push_back(Rule("busy", "rows", Comparison::kAbove, 10, 1));
  SetSpec(spec);
  ObserveTable(*service, Generate(Rows(6000, 1000, 5000)), "req-w2");
  CloseWindow(*service);
  std::vector<Alert> fired = TakeAlerts();
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].rule, "busy");
  EXPECT_EQ(fired[0].state, AlertState::kFiring);
  EXPECT_DOUBLE_EQ(fired[0].value, 1000);
  std::vector<AlertRecord> stored = StoredAlerts();
  ASSERT_EQ(stored.size(), 3u);
  for (const AlertRecord& a : stored) EXPECT_EQ(a.state, "firing") << a.rule;
}

TEST_F(MonitorServiceTest, PredictionLogStoresRowsUnderTheirRequestIds) {
  MonitorSpec spec = Spec();
  spec.log_inputs = 1.0;
  SetSpec(spec);
  std::unique_ptr<MonitorService> service = NewService();
  Track(*service, FeatureBaseline());
  const Signature& signature = TrainingData().signature;
  const size_t width = signature.features().size();

  Table table = Generate(Rows(100, 4));
  std::vector<float> rows;
  ASSERT_TRUE(EncodeTable(signature, table, &rows, nullptr).ok());
  const std::vector<float> outputs = {0.25f, 0.5f, 0.125f, 0.75f};
  const int64_t at = clock_.NowMicros() - 3 * kSecond;
  service->Observe(kApp, 1, "req-one", at, 300, rows.data(), 1,
                   outputs.data(), 1);
  service->Observe(kApp, 1, "req-three", at + 1, 300, rows.data() + width, 3,
                   outputs.data() + 1, 1);
  ASSERT_TRUE(service->FlushLog().ok());

  RawDatabase db(temp_.path());
  auto stored = db.Predictions();
  ASSERT_EQ(stored.size(), 4u);
  const std::vector<std::string> ids = {"req-one", "req-three/0",
                                        "req-three/1", "req-three/2"};
  const std::vector<std::string> predictions = {"[0.25]", "[0.5]", "[0.125]",
                                                "[0.75]"};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(stored[i][0], ids[i]);
    EXPECT_EQ(stored[i][1], kApp);
    EXPECT_EQ(stored[i][2], "1");
    EXPECT_EQ(stored[i][3], std::to_string(i == 0 ? at : at + 1));
    EXPECT_EQ(stored[i][4], predictions[i]);
    // The inputs as the model saw them: category texts, numbers, null for
    // a missing cell.
    json inputs = json::parse(stored[i][5]);
    ASSERT_TRUE(inputs.is_object()) << stored[i][5];
    EXPECT_EQ(inputs.size(), width);
    for (const std::string& name : FeatureNames()) {
      const Column& column = *table.FindColumn(name);
      if (column.IsMissing(i)) {
        EXPECT_TRUE(inputs[name].is_null()) << name;
      } else if (column.type() == DataType::kString) {
        EXPECT_EQ(inputs[name], column.dictionary()[column.CodeAt(i)]) << name;
      } else {
        EXPECT_DOUBLE_EQ(inputs[name].get<double>(),
                         static_cast<double>(
                             static_cast<float>(column.NumberAt(i))))
            << name;
      }
    }
  }

  // log_inputs 0 keeps no inputs.
  spec.log_inputs = 0;
  SetSpec(spec);
  CloseWindow(*service);  // the next window takes the spec's settings
  service->Observe(kApp, 1, "req-bare", at, 300, rows.data(), 1,
                   outputs.data(), 1);
  ASSERT_TRUE(service->FlushLog().ok());
  stored = db.Predictions();
  ASSERT_EQ(stored.size(), 5u);
  EXPECT_EQ(stored[0][0], "req-bare");
  EXPECT_EQ(stored[0][4], "[0.25]");
  EXPECT_EQ(stored[0][5], "");
}

TEST_F(MonitorServiceTest, ObserveOfAnUnknownOrDisabledAppLogsNothing) {
  MonitorSpec spec = Spec();
  spec.enabled = false;
  std::unique_ptr<MonitorService> service = NewService();
  ASSERT_TRUE(service
                  ->Track(kApp, 1, TrainingData().signature,
                          FeatureBaseline(), spec)
                  .ok());
  const std::vector<float> row(FeatureNames().size(), 1.0f);
  const float output = 0.5f;
  service->Observe(kApp, 1, "req-off", clock_.NowMicros(), 100, row.data(), 1,
                   &output, 1);
  service->Observe("nobody", 1, "req-x", clock_.NowMicros(), 100, row.data(),
                   1, &output, 1);
  service->Observe(kApp, 9, "req-y", clock_.NowMicros(), 100, row.data(), 1,
                   &output, 1);
  ASSERT_TRUE(service->FlushLog().ok());
  EXPECT_EQ(StoredPredictions(), 0);
}

class FeedbackTest : public MonitorServiceTest {
 protected:
  void SetUp() override {
    MonitorServiceTest::SetUp();
    ASSERT_TRUE(store_->AddAppRevision(Revision("price")).ok());
    ASSERT_TRUE(store_->AddAppRevision(Revision("idle")).ok());
    service_ = NewService();
    Track(*service_, FeatureBaseline());
    ASSERT_TRUE(service_
                    ->Track("price", 1, RegressionSignature(), std::nullopt,
                            Spec())
                    .ok());
    const std::vector<float> row(FeatureNames().size(), 1.0f);
    for (int i = 0; i < 6; ++i) {
      const float p = 0.2f * i;
      service_->Observe(kApp, 1, "req-" + std::to_string(i),
                        clock_.NowMicros(), 100, row.data(), 1, &p, 1);
    }
    const float size = 3, price = 12.5f;
    service_->Observe("price", 1, "req-price", clock_.NowMicros(), 100, &size,
                      1, &price, 1);
    // AddFeedback flushes the log itself.
  }

  absl::StatusOr<json> Feedback(const std::string& app, const json& body) {
    return service_->AddFeedback(app, body);
  }

  std::unique_ptr<MonitorService> service_;
};

TEST_F(FeedbackTest, SingleItemAcceptedThenDuplicate) {
  absl::StatusOr<json> answer =
      Feedback(kApp, {{"request_id", "req-0"}, {"label", 1}});
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(*answer, json::parse(R"({"app": "churn", "accepted": 1,
      "duplicate": 0, "unknown_request": 0, "wrong_app": 0, "late": 0,
      "items": [{"request_id": "req-0", "outcome": "accepted"}]})"));
  EXPECT_EQ(CountRows("feedback"), 1);

  answer = Feedback(kApp, {{"request_id", "req-0"}, {"label", 0}});
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ((*answer)["duplicate"], 1);
  EXPECT_EQ((*answer)["accepted"], 0);
  EXPECT_EQ((*answer)["items"][0]["outcome"], "duplicate");
  EXPECT_EQ(CountRows("feedback"), 1);
}

TEST_F(FeedbackTest, BatchCountsEachOutcome) {
  json body = {{"feedback",
                {{{"request_id", "req-1"}, {"label", "1"}},
                 {{"request_id", "req-nope"}, {"label", 0}},
                 {{"request_id", "req-price"}, {"label", 1}},
                 {{"request_id", "req-1"}, {"label", 0}}}}};
  absl::StatusOr<json> answer = Feedback(kApp, body);
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ((*answer)["app"], kApp);
  EXPECT_EQ((*answer)["accepted"], 1);
  EXPECT_EQ((*answer)["unknown_request"], 1);
  EXPECT_EQ((*answer)["wrong_app"], 1);
  EXPECT_EQ((*answer)["duplicate"], 1);
  ASSERT_EQ((*answer)["items"].size(), 4u);
  EXPECT_EQ((*answer)["items"][1],
            json({{"request_id", "req-nope"}, {"outcome", "unknown_request"}}));
  EXPECT_EQ((*answer)["items"][2]["outcome"], "wrong_app");
  EXPECT_EQ(CountRows("feedback"), 1);

  // A bare array is a batch too: an unknown id is an outcome, not an error.
  answer = Feedback(kApp, json::array({{{"request_id", "req-gone"},
                                        {"label", 1}}}));
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ((*answer)["unknown_request"], 1);
}

// Feedback on a prediction of an earlier window is accepted and counted
// late; the window's time comes from the request id (core/ids.h).
TEST_F(FeedbackTest, FeedbackOnAnEarlierWindowsPredictionIsLate) {
  const std::vector<float> row(FeatureNames().size(), 1.0f);
  const float p = 0.9f;
  const int64_t now = clock_.NowMicros();
  const std::string earlier = NewId("req", now - kWindow);
  const std::string current = NewId("req", now);
  service_->Observe(kApp, 1, earlier, now - kWindow, 100, row.data(), 1, &p,
                    1);
  service_->Observe(kApp, 1, current, now, 100, row.data(), 2, &p, 1);
  absl::StatusOr<json> answer =
      Feedback(kApp, {{"feedback",
                       {{{"request_id", earlier}, {"label", 1}},
                        {{"request_id", current + "/1"}, {"label", 0}}}}});
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ((*answer)["accepted"], 2);
  EXPECT_EQ((*answer)["late"], 1);
  EXPECT_THAT(service_->RenderMetrics(),
              HasSubstr("slipway_feedback_late_total{app=\"churn\"} 1\n"));
}

TEST_F(FeedbackTest, SingleUnknownOrOtherAppsRequestIsNotFound) {
  absl::StatusOr<json> answer =
      Feedback(kApp, {{"request_id", "req-nope"}, {"label", 1}});
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(answer.status().message(), HasSubstr("'req-nope'"));
  EXPECT_THAT(answer.status().message(), HasSubstr("'churn'"));

  answer = Feedback(kApp, {{"request_id", "req-price"}, {"label", 1}});
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(answer.status().message(), HasSubstr("'req-price'"));
  EXPECT_EQ(CountRows("feedback"), 0);
}

TEST_F(FeedbackTest, LabelNotAClassRefusesTheWholeBatch) {
  json body = {{"feedback",
                {{{"request_id", "req-1"}, {"label", 1}},
                 {{"request_id", "req-2"}, {"label", "yes"}}}}};
  absl::StatusOr<json> answer = Feedback(kApp, body);
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(answer.status().message(), HasSubstr("feedback item 1"));
  EXPECT_THAT(answer.status().message(), HasSubstr("'label'"));
  EXPECT_THAT(answer.status().message(), HasSubstr("\"yes\""));
  EXPECT_THAT(answer.status().message(), HasSubstr("0, 1"));
  EXPECT_EQ(CountRows("feedback"), 0);

  // A missing request id or label is refused the same way.
  answer = Feedback(kApp, {{"label", 1}});
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(answer.status().message(), HasSubstr("'request_id'"));
  answer = Feedback(kApp, {{"request_id", "req-1"}});
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(answer.status().message(), HasSubstr("'label'"));
  answer = Feedback(kApp, {{"request_id", "req-1"}, {"label", 2}});
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(answer.status().message(), HasSubstr("feedback item 0"));
  EXPECT_EQ(CountRows("feedback"), 0);
}

TEST_F(FeedbackTest, NumberAndTextLabelsOfAClassAreTheSame) {
  absl::StatusOr<json> answer =
      Feedback(kApp, {{"request_id", "req-1"}, {"label", 1}});
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ((*answer)["accepted"], 1);
  answer = Feedback(kApp, {{"request_id", "req-2"}, {"label", "1"}});
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ((*answer)["accepted"], 1);
  answer = Feedback(kApp, {{"request_id", "req-3"}, {"label", 0.0}});
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ((*answer)["accepted"], 1);

  // Both are stored as the class text.
  clock_.Set(window_start_ + kWindow);
  auto labeled = store_->ListLabeled(kApp, 0, kForever);
  ASSERT_TRUE(labeled.ok()) << labeled.status();
  ASSERT_EQ(labeled->size(), 3u);
  EXPECT_EQ((*labeled)[0].label, "1");
  EXPECT_EQ((*labeled)[1].label, "1");
  EXPECT_EQ((*labeled)[2].label, "0");
}

TEST_F(FeedbackTest, RegressionLabelMustBeANumber) {
  absl::StatusOr<json> answer =
      Feedback("price", {{"request_id", "req-price"}, {"label", "12.5"}});
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(answer.status().message(), HasSubstr("'label'"));
  EXPECT_THAT(answer.status().message(), HasSubstr("number"));
  EXPECT_EQ(CountRows("feedback"), 0);

  answer = Feedback("price", {{"request_id", "req-price"}, {"label", 13.25}});
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ((*answer)["accepted"], 1);
  auto labeled = store_->ListLabeled("price", 0, kForever);
  ASSERT_TRUE(labeled.ok()) << labeled.status();
  ASSERT_EQ(labeled->size(), 1u);
  EXPECT_EQ((*labeled)[0].label, "13.25");
}

TEST_F(FeedbackTest, NonNumericKpiIsRefused) {
  absl::StatusOr<json> answer = Feedback(
      kApp, {{"request_id", "req-1"},
             {"label", 1},
             {"kpis", {{"revenue", "a lot"}}}});
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(answer.status().message(), HasSubstr("'kpis.revenue'"));
  EXPECT_THAT(answer.status().message(), HasSubstr("feedback item 0"));
  answer = Feedback(kApp, {{"request_id", "req-1"}, {"label", 1},
                           {"kpis", 3}});
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(answer.status().message(), HasSubstr("'kpis'"));
  EXPECT_EQ(CountRows("feedback"), 0);
}

TEST_F(FeedbackTest, UnknownAppIsNotFoundAndAnUntrackedOneUnavailable) {
  absl::StatusOr<json> answer =
      Feedback("ghost", {{"request_id", "req-1"}, {"label", 1}});
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(answer.status().message(), HasSubstr("ghost"));

  answer = Feedback("idle", {{"request_id", "req-1"}, {"label", 1}});
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(answer.status().message(), HasSubstr("'idle'"));
  EXPECT_EQ(CountRows("feedback"), 0);
}

TEST_F(MonitorServiceTest, KpisOfFeedbackReceivedInTheWindowAndKpiDecay) {
  MonitorSpec spec = Spec();
  spec.rules.push_back(Rule("acc-low", "kpi.accuracy", Comparison::kBelow,
                            0.9, 1, TriggerEvent::kKpiDecay));
  SetSpec(spec);
  std::unique_ptr<MonitorService> service = NewService();
  Track(*service, FeatureBaseline());

  // 20 single-row requests (too few to decide drift) with known outputs.
  const std::vector<float> row(FeatureNames().size(), 1.0f);
  std::vector<float> outputs;
  json items = json::array();
  int correct = 0;
  double revenue_sum = 0;
  int revenue_rows = 0;
  for (int i = 0; i < 20; ++i) {
    const float p = 0.05f * i + 0.02f;
    outputs.push_back(p);
    const std::string id = "req-" + std::to_string(i);
    service->Observe(kApp, 1, id, clock_.NowMicros(), 100, row.data(), 1,
                     &outputs.back(), 1);
    const int label = i % 3 == 0 ? 1 : 0;
    if ((p > 0.5f ? 1 : 0) == label) ++correct;
    json item = {{"request_id", id}, {"label", label}};
    if (i % 2 == 0) {
      item["kpis"] = {{"revenue", 1.5 * i}};
      revenue_sum += 1.5 * i;
      ++revenue_rows;
    }
    items.push_back(item);
  }
  const double accuracy = correct / 20.0;
  ASSERT_LT(accuracy, 0.9);
  clock_.Advance(5 * kSecond);
  absl::StatusOr<json> answer = service->AddFeedback(kApp, items);
  ASSERT_TRUE(answer.ok()) << answer.status();
  ASSERT_EQ((*answer)["accepted"], 20);

  CloseWindow(*service);
  std::vector<MonitorWindowRecord> windows = Windows();
  ASSERT_EQ(windows.size(), 1u);
  EXPECT_EQ(windows[0].rows, 20);
  json kpis = json::parse(windows[0].kpis_json);
  EXPECT_EQ(kpis["rows"], 20);
  EXPECT_DOUBLE_EQ(kpis["accuracy"].get<double>(), accuracy);
  EXPECT_TRUE(kpis.contains("auc")) << kpis.dump();
  EXPECT_DOUBLE_EQ(kpis["kpis"]["revenue"]["sum"].get<double>(), revenue_sum);
  EXPECT_DOUBLE_EQ(kpis["kpis"]["revenue"]["mean"].get<double>(),
                   revenue_sum / revenue_rows);
  json drift = json::parse(windows[0].drift_json);
  EXPECT_TRUE(drift["features"]["age"]["insufficient"].get<bool>());

  std::vector<Alert> fired = TakeAlerts();
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].rule, "acc-low");
  EXPECT_EQ(fired[0].state, AlertState::kFiring);
  EXPECT_EQ(fired[0].fire, TriggerEvent::kKpiDecay);
  EXPECT_EQ(fired[0].metric, "kpi.accuracy");
  EXPECT_DOUBLE_EQ(fired[0].value, accuracy);
  EXPECT_DOUBLE_EQ(fired[0].threshold, 0.9);
  EXPECT_EQ(fired[0].comparison, Comparison::kBelow);

  // The next window got no feedback: no KPIs, and the alert neither
  // resolves nor fires again.
  service->Observe(kApp, 1, "req-later", clock_.NowMicros(), 100, row.data(),
                   1, &outputs[0], 1);
  CloseWindow(*service);
  windows = Windows();
  ASSERT_EQ(windows.size(), 2u);
  EXPECT_EQ(json::parse(windows[1].kpis_json), json::object());
  EXPECT_TRUE(TakeAlerts().empty());
  std::vector<AlertRecord> stored = StoredAlerts();
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].state, "firing");
}

TEST_F(MonitorServiceTest, FeedbackAloneClosesAWindowWithKpis) {
  std::unique_ptr<MonitorService> service = NewService();
  Track(*service, FeatureBaseline());
  const std::vector<float> row(FeatureNames().size(), 1.0f);
  const float p = 0.9f;
  service->Observe(kApp, 1, "req-a", clock_.NowMicros(), 100, row.data(), 1,
                   &p, 1);
  CloseWindow(*service);
  ASSERT_EQ(Windows().size(), 1u);

  // Feedback in the next window for the prediction of the previous one.
  ASSERT_TRUE(
      service->AddFeedback(kApp, {{"request_id", "req-a"}, {"label", 1}})
          .ok());
  CloseWindow(*service);
  std::vector<MonitorWindowRecord> windows = Windows();
  ASSERT_EQ(windows.size(), 2u);
  EXPECT_EQ(windows[1].rows, 0);
  json kpis = json::parse(windows[1].kpis_json);
  EXPECT_EQ(kpis["rows"], 1);
  EXPECT_DOUBLE_EQ(kpis["accuracy"].get<double>(), 1.0);
}

TEST_F(MonitorServiceTest, PendingRuleContinuesAfterARestart) {
  MonitorSpec spec = Spec();
  spec.rules.push_back(
      Rule("busy", "rows", Comparison::kAbove, 5, 2, TriggerEvent::kNewData));
  SetSpec(spec);
  const Table table = Generate(Rows(5000, 10));
  {
    std::unique_ptr<MonitorService> service = NewService();
    Track(*service, FeatureBaseline());
    ObserveTable(*service, table, "req-1", 10);
    CloseWindow(*service);
    EXPECT_TRUE(TakeAlerts().empty());
    std::vector<AlertRecord> stored = StoredAlerts();
    ASSERT_EQ(stored.size(), 1u);
    EXPECT_EQ(stored[0].rule, "busy");
    EXPECT_EQ(stored[0].state, "pending");
    EXPECT_DOUBLE_EQ(stored[0].value, 10);
  }

  std::unique_ptr<MonitorService> service = NewService();
  Track(*service, FeatureBaseline());
  ObserveTable(*service, table, "req-2", 10);
  CloseWindow(*service);
  std::vector<Alert> fired = TakeAlerts();
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].rule, "busy");
  EXPECT_EQ(fired[0].state, AlertState::kFiring);
  EXPECT_EQ(fired[0].fire, TriggerEvent::kNewData);
  // Pending since the end of the first window, firing since the second's.
  std::vector<AlertRecord> stored = StoredAlerts();
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].state, "firing");
  EXPECT_EQ(stored[0].since, window_start_);
}

TEST_F(MonitorServiceTest, PendingRuleThatStopsHoldingIsStoredResolved) {
  MonitorSpec spec = Spec();
  spec.rules.push_back(Rule("busy", "rows", Comparison::kAbove, 5, 3));
  SetSpec(spec);
  std::unique_ptr<MonitorService> service = NewService();
  Track(*service, FeatureBaseline());
  ObserveTable(*service, Generate(Rows(5000, 10)), "req-1", 10);
  CloseWindow(*service);
  ASSERT_EQ(StoredAlerts().size(), 1u);
  EXPECT_EQ(StoredAlerts()[0].state, "pending");
  ObserveTable(*service, Generate(Rows(5000, 2)), "req-2", 2);
  CloseWindow(*service);
  std::vector<AlertRecord> stored = StoredAlerts();
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].state, "resolved");
  EXPECT_EQ(json::parse(stored[0].alert_json)["state"], "resolved");
  EXPECT_TRUE(TakeAlerts().empty());
}

TEST_F(MonitorServiceTest, RenderMetricsShowsTheLatestWindowAndAlerts) {
  std::unique_ptr<MonitorService> service = NewService();
  Track(*service, FeatureBaseline());
  ObserveTable(*service, Generate(Rows(5000, 1000, 5000)), "req-w1");
  json items = json::array();
  for (int i = 0; i < 3; ++i) {
    items.push_back({{"request_id", "req-w1-" + std::to_string(i) + "/0"},
                     {"label", 1},
                     {"kpis", {{"revenue", 2.0}}}});
  }
  items.push_back({{"request_id", "req-missing"}, {"label", 1}});
  absl::StatusOr<json> answer = service->AddFeedback(kApp, items);
  ASSERT_TRUE(answer.ok()) << answer.status();
  ASSERT_EQ((*answer)["accepted"], 3);
  CloseWindow(*service);

  const std::string text = service->RenderMetrics();
  EXPECT_THAT(text, HasSubstr("slipway_drift_detected{app=\"churn\","
                              "version=\"1\",feature=\"income\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("slipway_drift_detected{app=\"churn\","
                              "version=\"1\",feature=\"age\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("slipway_drift_score{app=\"churn\",version=\"1\","
                              "feature=\"income\"} "));
  EXPECT_THAT(text, HasSubstr("slipway_drift_psi{app=\"churn\",version=\"1\","
                              "feature=\"region\"} "));
  EXPECT_THAT(text, HasSubstr("slipway_monitor_window_rows{app=\"churn\","
                              "version=\"1\"} 1000\n"));
  EXPECT_THAT(text, HasSubstr("slipway_alert_firing{app=\"churn\","
                              "rule=\"drift:income\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("slipway_alert_firing{app=\"churn\","
                              "rule=\"drift:region\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("slipway_feedback_total{app=\"churn\","
                              "outcome=\"accepted\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("slipway_feedback_total{app=\"churn\","
                              "outcome=\"unknown_request\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("slipway_kpi{app=\"churn\",version=\"1\","
                              "kpi=\"accuracy\"} "));
  EXPECT_THAT(text, HasSubstr("slipway_prediction_log_dropped_total"));
  for (const char* family :
       {"slipway_drift_score", "slipway_drift_psi", "slipway_drift_detected",
        "slipway_monitor_window_rows", "slipway_kpi", "slipway_alert_firing",
        "slipway_feedback_total", "slipway_prediction_log_dropped_total"}) {
    for (const char* kind : {"# HELP ", "# TYPE "}) {
      const std::string line = std::string(kind) + family + " ";
      size_t count = 0;
      for (size_t at = text.find(line); at != std::string::npos;
           at = text.find(line, at + 1)) {
        ++count;
      }
      EXPECT_EQ(count, 1u) << line;
    }
  }

  // Resolved: the gauge drops to 0.
  ObserveTable(*service, Generate(Rows(6000, 1000)), "req-w2");
  CloseWindow(*service);
  EXPECT_THAT(service->RenderMetrics(),
              HasSubstr("slipway_alert_firing{app=\"churn\","
                        "rule=\"drift:income\"} 0\n"));
}

// A business KPI's gauge is named like its alert metric, kpi.revenue.sum.
TEST_F(MonitorServiceTest, RenderMetricsNamesBusinessKpisLikeTheirMetrics) {
  std::unique_ptr<MonitorService> service = NewService();
  Track(*service, FeatureBaseline());
  const std::vector<float> row(FeatureNames().size(), 1.0f);
  const float p = 0.9f;
  service->Observe(kApp, 1, "req-a", clock_.NowMicros(), 100, row.data(), 1,
                   &p, 1);
  ASSERT_TRUE(service
                  ->AddFeedback(kApp, {{"request_id", "req-a"},
                                       {"label", 1},
                                       {"kpis", {{"revenue", 12.5}}}})
                  .ok());
  CloseWindow(*service);
  const std::string text = service->RenderMetrics();
  EXPECT_THAT(text, HasSubstr("slipway_kpi{app=\"churn\",version=\"1\","
                              "kpi=\"revenue.sum\"} 12.5\n"))
      << text;
  EXPECT_THAT(text, HasSubstr("slipway_kpi{app=\"churn\",version=\"1\","
                              "kpi=\"revenue.mean\"} 12.5\n"));
  // One row decides no drift: no drift statistic is shown for it.
  EXPECT_THAT(text, Not(HasSubstr("slipway_drift_psi{")));
  EXPECT_THAT(text, Not(HasSubstr("slipway_drift_score{")));
}

TEST_F(MonitorServiceTest, RetentionDeletesOldPredictionsWithTheirFeedback) {
  MonitorSpec spec = Spec();
  spec.retention_seconds = 3600;
  SetSpec(spec);
  std::unique_ptr<MonitorService> service = NewService();
  Track(*service, FeatureBaseline());
  const std::vector<float> row(FeatureNames().size(), 1.0f);
  const float p = 0.75f;
  const int64_t now = clock_.NowMicros();
  // Logged in batches as time goes by: a chunk each.
  service->Observe(kApp, 1, "req-old", now - 2 * 3600 * kSecond, 100,
                   row.data(), 1, &p, 1);
  ASSERT_TRUE(service->FlushLog().ok());
  service->Observe(kApp, 1, "req-edge", now - 3600 * kSecond + kWindow, 100,
                   row.data(), 1, &p, 1);
  ASSERT_TRUE(service->FlushLog().ok());
  service->Observe(kApp, 1, "req-new", now, 100, row.data(), 1, &p, 1);
  ASSERT_TRUE(service
                  ->AddFeedback(kApp, json::array({{{"request_id", "req-old"},
                                                    {"label", 1}},
                                                   {{"request_id", "req-new"},
                                                    {"label", 1}}}))
                  .ok());
  ASSERT_EQ(StoredPredictions(), 3);
  ASSERT_EQ(CountRows("feedback"), 2);

  ASSERT_TRUE(service->Tick().ok());  // the window has not ended
  EXPECT_EQ(StoredPredictions(), 3);

  CloseWindow(*service);
  RawDatabase db(temp_.path());
  auto kept = db.Predictions();
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept[0][0], "req-edge");
  EXPECT_EQ(kept[1][0], "req-new");
  auto feedback = db.Query("SELECT request_id FROM feedback");
  ASSERT_EQ(feedback.size(), 1u);
  EXPECT_EQ(feedback[0][0], "req-new");
  // The window closed before the deletion still counted both labels.
  EXPECT_EQ(json::parse(Windows()[0].kpis_json)["rows"], 2);
}

TEST_F(MonitorServiceTest, ASwappedOutVersionKeepsItsWindowUntilItCloses) {
  std::unique_ptr<MonitorService> service = NewService();
  Track(*service, FeatureBaseline(), 1);
  ObserveTable(*service, Generate(Rows(5000, 50)), "req-v1", 50, 1);
  Track(*service, FeatureBaseline(), 2);
  ObserveTable(*service, Generate(Rows(6000, 40)), "req-v2", 40, 2);
  ObserveTable(*service, Generate(Rows(7000, 5)), "req-v1-late", 5, 1);
  CloseWindow(*service);
  std::vector<MonitorWindowRecord> windows = Windows();
  ASSERT_EQ(windows.size(), 2u);
  EXPECT_EQ(windows[0].version, 1);
  EXPECT_EQ(windows[0].rows, 55);
  EXPECT_EQ(windows[1].version, 2);
  EXPECT_EQ(windows[1].rows, 40);

  // Version 1 saw nothing in the next window and is forgotten.
  ObserveTable(*service, Generate(Rows(8000, 30)), "req-v2-b", 30, 2);
  CloseWindow(*service);
  ObserveTable(*service, Generate(Rows(9000, 7)), "req-v1-gone", 7, 1);
  ObserveTable(*service, Generate(Rows(9100, 8)), "req-v2-c", 8, 2);
  CloseWindow(*service);
  windows = Windows();
  ASSERT_EQ(windows.size(), 4u);
  EXPECT_EQ(windows[2].version, 2);
  EXPECT_EQ(windows[2].rows, 30);
  EXPECT_EQ(windows[3].version, 2);
  EXPECT_EQ(windows[3].rows, 8);
  ASSERT_TRUE(service->FlushLog().ok());
  EXPECT_EQ(StoredPredictions(), 50 + 40 + 5 + 30 + 8);
}

TEST_F(MonitorServiceTest, AVersionBesideTheServingOneIsKeptThroughIdleWindows) {
  std::unique_ptr<MonitorService> service = NewService();
  Track(*service, FeatureBaseline(), 1);
  Track(*service, FeatureBaseline(), 2, MonitorService::TrackedAs::kBeside);
  // Two windows without the beside version's traffic: still followed.
  ObserveTable(*service, Generate(Rows(5000, 20)), "req-a", 20, 1);
  CloseWindow(*service);
  ObserveTable(*service, Generate(Rows(5100, 20)), "req-b", 20, 1);
  CloseWindow(*service);
  ObserveTable(*service, Generate(Rows(5200, 30)), "req-c", 30, 2);
  CloseWindow(*service);
  // The serving version's idle window stores nothing.
  std::vector<MonitorWindowRecord> windows = Windows();
  ASSERT_EQ(windows.size(), 3u);
  EXPECT_EQ(windows[2].version, 2);
  EXPECT_EQ(windows[2].rows, 30);
  // Untracked, it is forgotten once a window passes without it.
  service->Untrack(kApp, 2);
  CloseWindow(*service);
  ObserveTable(*service, Generate(Rows(5300, 10)), "req-d", 10, 2);
  CloseWindow(*service);
  EXPECT_EQ(Windows().size(), 3u);
}

TEST_F(MonitorServiceTest, FailuresAndAShadowsAgreementGoIntoTheWindow) {
  std::unique_ptr<MonitorService> service = NewService();
  Track(*service, FeatureBaseline(), 1);
  Track(*service, FeatureBaseline(), 2, MonitorService::TrackedAs::kBeside);
  ObserveTable(*service, Generate(Rows(5000, 30)), "req-a", 10, 1);
  service->ObserveFailure(kApp, 1);
  // The shadow agreed on 3 rows of 4 (P(class 1) > 0.5 on both, or not).
  const float shadow[] = {0.9f, 0.2f, 0.7f, 0.4f};
  const float primary[] = {0.8f, 0.1f, 0.3f, 0.45f};
  service->ObserveAgreement(kApp, 2, 4, shadow, 1, primary, 1);
  // Outputs of another width are not compared.
  service->ObserveAgreement(kApp, 2, 2, shadow, 2, primary, 1);
  CloseWindow(*service);
  std::vector<MonitorWindowRecord> windows = Windows();
  ASSERT_EQ(windows.size(), 2u);
  EXPECT_EQ(json::parse(windows[1].kpis_json)["agreement"], 0.75);
  EXPECT_EQ(json::parse(windows[1].kpis_json)["agreement_rows"], 4);
  const json errors = json::parse(windows[0].drift_json)["errors"];
  EXPECT_EQ(errors["requests"], 4);
  EXPECT_EQ(errors["failed"], 1);
  EXPECT_DOUBLE_EQ(errors["rate"].get<double>(), 0.25);
  std::string metrics = service->RenderMetrics();
  EXPECT_THAT(metrics, HasSubstr("kpi=\"agreement\"")) << metrics;
}

TEST_F(MonitorServiceTest, TrackRefusesABaselineThatDoesNotFitTheSignature) {
  std::unique_ptr<MonitorService> service = NewService();
  absl::Status status = service->Track(kApp, 1, RegressionSignature(),
                                       FeatureBaseline(), Spec());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("churn v1"));
}

TEST_F(MonitorServiceTest, StartAndStopStoreWhatWasObserved) {
  std::unique_ptr<MonitorService> service = NewService();
  Track(*service, FeatureBaseline());
  service->Start();
  ObserveTable(*service, Generate(Rows(5000, 3)), "req", 3);
  service->Stop();
  EXPECT_EQ(StoredPredictions(), 3);
  // The clock did not move: no window closed.
  EXPECT_TRUE(Windows().empty());
}

}  // namespace
}  // namespace slipway
