#include "control/optimizer.h"

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "artifacts/local_artifact_store.h"
#include "core/clock.h"
#include "core/filesystem.h"
#include "core/ids.h"
#include "core/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "models/signature.h"
#include "nlohmann/json.hpp"
#include "store/sqlite_store.h"
#include "testing/fake_clock.h"
#include "testing/temp_dir.h"

namespace slipway {
namespace {

using nlohmann::json;
using ::testing::DoubleNear;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::SizeIs;

constexpr int64_t kSecond = 1'000'000;
constexpr int64_t kHour = 3600 * kSecond;
constexpr char kApp[] = "churn";

// An app whose canary is judged on accuracy once each side has 100
// labelled predictions, and whose promotions are watched for two one-hour
// windows on `rollback_metric` ("": the promotion's metric).
std::string SpecYaml(const std::string& rollback_metric = "") {
  std::string yaml = R"(app: churn
data:
  customers: {connector: csv, path: customers.csv}
schema: {target: churned, task: binary_classification}
pipelines:
  train:
    steps:
      - ingest: {source: customers}
      - split: {}
      - train: {objective: "binary:logistic"}
      - evaluate: {metrics: [accuracy, logloss]}
      - register: {alias: challenger}
endpoint:
  model: champion
  canary: {model: challenger, percent: 10, min_rows: 100}
monitor:
  window: 1h
policy:
  promote: {metric: accuracy, min_gain: 0, confidence: 0.95}
  rollback: {kpi_drop: 0.05, windows: 2, min_rows: 100)";
  if (!rollback_metric.empty()) yaml += ", metric: " + rollback_metric;
  yaml += "}\n";
  return yaml;
}

std::vector<std::pair<std::string, int>> Moves(
    const std::vector<AliasMove>& moves) {
  std::vector<std::pair<std::string, int>> out;
  for (const AliasMove& m : moves) out.emplace_back(m.alias, m.version);
  return out;
}

struct PromoteCall {
  std::string app;
  std::vector<std::pair<std::string, int>> moves;
  std::string actor;
  std::string comment;
};

struct MoveCall {
  std::string app;
  std::vector<std::pair<std::string, int>> moves;
  std::string actor;
};

// A decision of the optimizer as the audit log holds it.
struct Decision {
  std::string actor;
  std::string action;
  std::string object;
  json after;
};

class OptimizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = OpenSqliteStore(JoinPath(dir_.path(), "data"), &clock_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    auto artifacts = OpenLocalArtifactStore(LocalFilesystem(),
                                            JoinPath(dir_.path(), "artifacts"));
    ASSERT_TRUE(artifacts.ok()) << artifacts.status();
    artifacts_ = std::move(*artifacts);
    auto audit = AuditLog::Open(store_.get(), LocalFilesystem(),
                                JoinPath(dir_.path(), "data/audit.head"));
    ASSERT_TRUE(audit.ok()) << audit.status();
    audit_ = std::move(*audit);
    registry_ = std::make_unique<Registry>(store_.get(), artifacts_.get(),
                                           audit_.get());
    approvals_ =
        std::make_unique<Approvals>(store_.get(), audit_.get(), &clock_);
    optimizer_ = NewOptimizer();
  }

  // An optimizer over the fixture's store and audit log, as after a
  // restart of the server.
  std::unique_ptr<ContinuousOptimizer> NewOptimizer() {
    ContinuousOptimizer::Options options;
    options.store = store_.get();
    options.registry = registry_.get();
    options.approvals = approvals_.get();
    options.audit = audit_.get();
    options.clock = &clock_;
    options.promote =
        [this](const std::string& app, const std::vector<AliasMove>& moves,
               const std::string& actor,
               const std::string& comment) -> absl::StatusOr<int64_t> {
      promotions_.push_back({app, Moves(moves), actor, comment});
      if (!promote_through_approval_) {
        RETURN_IF_ERROR(registry_->MoveAliases(app, moves, actor));
        return 0;
      }
      json change = {{"moves", json::array()}};
      for (const AliasMove& m : moves) {
        change["moves"].push_back({{"alias", m.alias}, {"version", m.version}});
      }
      ASSIGN_OR_RETURN(ApprovalRecord request,
                       approvals_->Request(app, "promote", change.dump(),
                                           ApprovalCaller{actor, "", ""},
                                           comment, request_expiry_seconds_));
      return request.id;
    };
    options.move_now = [this](const std::string& app,
                              const std::vector<AliasMove>& moves,
                              const std::string& actor) -> absl::Status {
      moves_.push_back({app, Moves(moves), actor});
      if (!move_failure_.ok()) return move_failure_;
      return registry_->MoveAliases(app, moves, actor);
    };
    options.alert = [this](const Alert& alert) { alerts_.push_back(alert); };
    return std::make_unique<ContinuousOptimizer>(std::move(options));
  }

  AppSpec ApplySpec(const std::string& yaml) {
    auto applied = registry_->Apply(kApp, yaml, "/src");
    EXPECT_TRUE(applied.ok()) << applied.status();
    auto spec = ParseAppSpec(yaml, "slipway.yaml");
    EXPECT_TRUE(spec.ok()) << spec.status();
    return spec.value_or(AppSpec{});
  }

  // Registers versions 1..n of a binary classifier with classes "0", "1".
  void RegisterVersions(int n) {
    const Signature signature(Task::kBinaryClassification,
                              {FeatureSpec{"age", DataType::kFloat64, {}}},
                              "churned", DataType::kInt64, {"0", "1"});
    for (int i = 1; i <= n; ++i) {
      NewModelVersion v;
      v.app = kApp;
      v.format = "xgboost-json";
      v.model_bytes = "model " + std::to_string(i);
      v.signature_json = signature.ToJson().dump();
      v.params_json = "{}";
      v.metrics_json = "{}";
      v.data_fingerprint = std::string(64, 'a');
      v.row_count = 10;
      v.run_id = "run-1";
      v.revision = 1;
      auto registered = registry_->Register(v);
      ASSERT_TRUE(registered.ok()) << registered.status();
      ASSERT_EQ(registered->version, i);
    }
  }

  void Move(const std::vector<AliasMove>& moves, const std::string& actor) {
    absl::Status moved = registry_->MoveAliases(kApp, moves, actor);
    ASSERT_TRUE(moved.ok()) << moved;
  }

  std::optional<int> Alias(const std::string& alias) {
    auto version = registry_->ResolveAlias(kApp, alias);
    EXPECT_TRUE(version.ok()) << version.status();
    return version.value_or(std::nullopt);
  }

  // The seq of the last move of `alias`.
  int64_t LastMoveSeq(const std::string& alias) {
    auto history = registry_->AliasHistory(kApp);
    EXPECT_TRUE(history.ok()) << history.status();
    int64_t seq = 0;
    for (const AliasHistoryRecord& h :
         history.value_or(std::vector<AliasHistoryRecord>{})) {
      if (h.alias == alias) seq = h.seq;
    }
    return seq;
  }

  // Logs `rows` predictions of `version` from the clock's time on, one a
  // millisecond, each labelled a millisecond later, then moves the clock
  // past them. Labels alternate "0", "1" from row `first`; exactly
  // `correct_percent` of every 100 consecutive rows are right (P(positive)
  // 0.8 for a positive, 0.2 for a negative), the others wrong the other
  // way round. Which rows are right depends on the version, so two
  // versions with the same percent still give different samples.
  void Serve(int version, int rows, int correct_percent, int first = 0) {
    const int64_t start = clock_.NowMicros();
    std::vector<PredictionRecord> predictions;
    std::vector<FeedbackRecord> feedback;
    for (int i = 0; i < rows; ++i) {
      const int row = first + i;
      const int64_t at = start + int64_t{i} * 1000;
      const bool positive = row % 2 == 1;
      const bool correct = (row * 7 + version * 13) % 100 < correct_percent;
      const double score = positive == correct ? 0.8 : 0.2;
      PredictionRecord p;
      p.request_id = NewId("req", at);
      p.app = kApp;
      p.version = version;
      p.at = at;
      p.prediction_json = "[" + std::to_string(score) + "]";
      predictions.push_back(p);
      FeedbackRecord f;
      f.request_id = p.request_id;
      f.app = kApp;
      f.label = positive ? "1" : "0";
      f.received_at = at + 1000;
      feedback.push_back(f);
    }
    auto logged = store_->AddPredictions(predictions);
    ASSERT_TRUE(logged.ok()) << logged.status();
    auto outcomes = store_->AddFeedback(feedback);
    ASSERT_TRUE(outcomes.ok()) << outcomes.status();
    for (FeedbackOutcome outcome : *outcomes) {
      ASSERT_EQ(outcome, FeedbackOutcome::kAccepted);
    }
    clock_.Advance(int64_t{rows} * 1000 + kSecond);
  }

  // Champion `from` serves an hour, `from_percent` of its 400 labelled
  // predictions right; then `actor` moves champion to `to` (previous to
  // `from`), which serves 400 a second later, `to_percent` right. Returns
  // the move's alias-history seq; promoted_at_ is its time.
  int64_t Promote(int from, int from_percent, int to, int to_percent,
                  const std::string& actor) {
    RegisterVersions(2);
    Move({{"champion", from}}, "cli:ops");
    clock_.Advance(kHour);
    Serve(from, 400, from_percent);
    Move({{"champion", to}, {"previous", from}}, actor);
    promoted_at_ = clock_.NowMicros();
    const int64_t seq = LastMoveSeq("champion");
    clock_.Advance(kSecond);
    Serve(to, 400, to_percent);
    return seq;
  }

  void Check(const AppSpec& spec) {
    absl::Status checked = optimizer_->Check(spec);
    ASSERT_TRUE(checked.ok()) << checked;
  }

  // The optimizer's decisions in the audit log, oldest first.
  std::vector<Decision> Decisions() {
    std::vector<Decision> decisions;
    AuditFilter filter;
    filter.app = kApp;
    auto records = audit_->List(filter);
    EXPECT_TRUE(records.ok()) << records.status();
    for (const AuditRecord& r : records.value_or(std::vector<AuditRecord>{})) {
      if (r.action == "canary.decide" || r.action == "model.rollback" ||
          r.action == "rollback.check") {
        decisions.push_back(
            {r.actor, r.action, r.object, json::parse(r.after_json)});
      }
    }
    return decisions;
  }

  // champion -> v1 (by hand), then the canary: challenger -> v2 (by a run).
  void StartCanary() {
    Move({{"champion", 1}}, "cli:ops");
    clock_.Advance(kSecond);
    Move({{"challenger", 2}}, "run run-1");
    clock_.Advance(kSecond);
  }

  TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<ArtifactStore> artifacts_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<Registry> registry_;
  std::unique_ptr<Approvals> approvals_;
  std::unique_ptr<ContinuousOptimizer> optimizer_;

  bool promote_through_approval_ = false;
  int64_t request_expiry_seconds_ = 0;
  absl::Status move_failure_;
  std::vector<PromoteCall> promotions_;
  std::vector<MoveCall> moves_;
  std::vector<Alert> alerts_;
  int64_t promoted_at_ = 0;  // of the last Promote()
};

TEST_F(OptimizerTest, BetterCanaryIsPromoted) {
  const AppSpec spec = ApplySpec(SpecYaml());
  RegisterVersions(2);
  StartCanary();
  Serve(1, 400, 55);
  Serve(2, 400, 85);

  Check(spec);
  ASSERT_THAT(promotions_, SizeIs(1));
  EXPECT_EQ(promotions_[0].app, kApp);
  EXPECT_THAT(promotions_[0].moves,
              ElementsAre(Pair("champion", 2), Pair("previous", 1)));
  EXPECT_EQ(promotions_[0].actor, "policy");
  EXPECT_THAT(promotions_[0].comment, HasSubstr("canary: v2 over v1"));
  EXPECT_THAT(moves_, IsEmpty());
  EXPECT_THAT(alerts_, IsEmpty());
  EXPECT_EQ(Alias("champion"), 2);

  const std::vector<Decision> decisions = Decisions();
  ASSERT_THAT(decisions, SizeIs(1));
  const Decision& d = decisions[0];
  EXPECT_EQ(d.action, "canary.decide");
  EXPECT_EQ(d.actor, "policy");
  EXPECT_EQ(d.object, "model churn v2");
  EXPECT_EQ(d.after["decision"], "promote");
  EXPECT_EQ(d.after["champion"], 1);
  EXPECT_EQ(d.after["challenger"], 2);
  EXPECT_EQ(d.after["alias"], "challenger");
  EXPECT_EQ(d.after["metric"], "accuracy");
  const json& c = d.after["comparison"];
  EXPECT_EQ(c["metric"], "accuracy");
  EXPECT_EQ(c["paired"], false);
  EXPECT_EQ(c["champion_rows"], 400);
  EXPECT_EQ(c["challenger_rows"], 400);
  EXPECT_THAT(c["champion"].get<double>(), DoubleNear(0.55, 1e-9));
  EXPECT_THAT(c["challenger"].get<double>(), DoubleNear(0.85, 1e-9));
  EXPECT_GT(c["lower"].get<double>(), 0);

  // The canary is over (champion and challenger agree); the promotion is
  // now watched, and v2 has no feedback as champion yet.
  Check(spec);
  EXPECT_THAT(promotions_, SizeIs(1));
  EXPECT_THAT(moves_, IsEmpty());
  EXPECT_THAT(Decisions(), SizeIs(1));
}

TEST_F(OptimizerTest, WorseCanaryIsEnded) {
  const AppSpec spec = ApplySpec(SpecYaml());
  RegisterVersions(2);
  StartCanary();
  Serve(1, 400, 85);
  Serve(2, 400, 55);

  Check(spec);
  EXPECT_THAT(promotions_, IsEmpty());
  ASSERT_THAT(moves_, SizeIs(1));
  EXPECT_THAT(moves_[0].moves, ElementsAre(Pair("challenger", 1)));
  EXPECT_EQ(moves_[0].actor, "policy");
  EXPECT_EQ(Alias("challenger"), 1);
  EXPECT_EQ(Alias("champion"), 1);

  const std::vector<Decision> decisions = Decisions();
  ASSERT_THAT(decisions, SizeIs(1));
  EXPECT_EQ(decisions[0].action, "canary.decide");
  EXPECT_EQ(decisions[0].after["decision"], "end");
  EXPECT_LT(decisions[0].after["comparison"]["upper"].get<double>(), 0);

  Check(spec);
  EXPECT_THAT(moves_, SizeIs(1));
  EXPECT_THAT(Decisions(), SizeIs(1));
}

TEST_F(OptimizerTest, CanaryWaitsForMinRowsOnEachSide) {
  const AppSpec spec = ApplySpec(SpecYaml());
  RegisterVersions(2);
  StartCanary();
  Serve(1, 400, 55);
  Serve(2, 99, 85);

  Check(spec);
  EXPECT_THAT(promotions_, IsEmpty());
  EXPECT_THAT(moves_, IsEmpty());
  EXPECT_THAT(Decisions(), IsEmpty());

  // The hundredth labelled prediction of the canary.
  Serve(2, 1, 85, /*first=*/99);
  Check(spec);
  ASSERT_THAT(promotions_, SizeIs(1));
  const std::vector<Decision> decisions = Decisions();
  ASSERT_THAT(decisions, SizeIs(1));
  EXPECT_EQ(decisions[0].after["decision"], "promote");
  EXPECT_EQ(decisions[0].after["comparison"]["challenger_rows"], 100);
}

TEST_F(OptimizerTest, CanaryWithoutAClearDifferenceWaits) {
  const AppSpec spec = ApplySpec(SpecYaml());
  RegisterVersions(2);
  StartCanary();
  Serve(1, 400, 70);
  Serve(2, 400, 70);

  Check(spec);
  EXPECT_THAT(promotions_, IsEmpty());
  EXPECT_THAT(moves_, IsEmpty());
  EXPECT_THAT(Decisions(), IsEmpty());
  EXPECT_EQ(Alias("champion"), 1);
  EXPECT_EQ(Alias("challenger"), 2);
}

TEST_F(OptimizerTest, PendingPromotionWaitsAndItsRejectionEndsTheCanary) {
  const AppSpec spec = ApplySpec(SpecYaml());
  RegisterVersions(2);
  promote_through_approval_ = true;
  StartCanary();
  Serve(1, 400, 55);
  Serve(2, 400, 85);

  Check(spec);
  ASSERT_THAT(promotions_, SizeIs(1));
  EXPECT_EQ(Alias("champion"), 1);
  ASSERT_THAT(Decisions(), SizeIs(1));
  auto pending = approvals_->List(kApp, "pending");
  ASSERT_TRUE(pending.ok()) << pending.status();
  ASSERT_THAT(*pending, SizeIs(1));
  EXPECT_EQ(pending->front().requested_by, "policy");
  const int64_t id = pending->front().id;

  // The request waits for an approver: nothing is asked twice.
  clock_.Advance(kHour);
  Check(spec);
  EXPECT_THAT(promotions_, SizeIs(1));
  EXPECT_THAT(moves_, IsEmpty());
  EXPECT_THAT(Decisions(), SizeIs(1));

  auto rejected = approvals_->Reject(
      id, ApprovalCaller{"api:ada", "tok-ada", "ada"}, "check fairness first");
  ASSERT_TRUE(rejected.ok()) << rejected.status();
  Check(spec);
  EXPECT_THAT(promotions_, SizeIs(1));
  ASSERT_THAT(moves_, SizeIs(1));
  EXPECT_THAT(moves_[0].moves, ElementsAre(Pair("challenger", 1)));
  EXPECT_EQ(moves_[0].actor, "policy");
  EXPECT_EQ(Alias("challenger"), 1);
  const std::vector<Decision> decisions = Decisions();
  ASSERT_THAT(decisions, SizeIs(2));
  EXPECT_EQ(decisions[1].action, "canary.decide");
  EXPECT_EQ(decisions[1].object, "model churn v2");
  EXPECT_EQ(decisions[1].after["decision"], "end");
  EXPECT_EQ(decisions[1].after["reason"], "its promotion request " +
                                              std::to_string(id) +
                                              " was rejected by api:ada");

  Check(spec);
  EXPECT_THAT(moves_, SizeIs(1));
  EXPECT_THAT(Decisions(), SizeIs(2));
}

TEST_F(OptimizerTest, ExpiredPromotionRequestEndsTheCanary) {
  const AppSpec spec = ApplySpec(SpecYaml());
  RegisterVersions(2);
  promote_through_approval_ = true;
  request_expiry_seconds_ = 3600;
  StartCanary();
  Serve(1, 400, 55);
  Serve(2, 400, 85);
  Check(spec);
  ASSERT_THAT(promotions_, SizeIs(1));

  clock_.Advance(2 * kHour);
  Check(spec);
  ASSERT_THAT(moves_, SizeIs(1));
  EXPECT_THAT(moves_[0].moves, ElementsAre(Pair("challenger", 1)));
  const std::vector<Decision> decisions = Decisions();
  ASSERT_THAT(decisions, SizeIs(2));
  EXPECT_EQ(decisions[1].after["decision"], "end");
  EXPECT_THAT(decisions[1].after["reason"].get<std::string>(),
              HasSubstr("was expired by expiry"));
}

TEST_F(OptimizerTest, RequestsOfAnEarlierCanaryOrOfOthersDoNotDecide) {
  const AppSpec spec = ApplySpec(SpecYaml());
  RegisterVersions(2);
  Move({{"champion", 1}}, "cli:ops");
  // A promotion the policy asked for before this canary began, rejected.
  auto old = approvals_->Request(
      kApp, "promote", R"({"moves":[{"alias":"champion","version":2}]})",
      ApprovalCaller{"policy", "", ""}, "an earlier canary", 0);
  ASSERT_TRUE(old.ok()) << old.status();
  ASSERT_TRUE(approvals_
                  ->Reject(old->id, ApprovalCaller{"api:ada", "tok-ada", "ada"},
                           "not then")
                  .ok());
  clock_.Advance(kSecond);
  Move({{"challenger", 2}}, "run run-1");
  clock_.Advance(kSecond);
  // Someone else's pending request to promote the same version.
  ASSERT_TRUE(approvals_
                  ->Request(kApp, "promote",
                            R"({"moves":[{"alias":"champion","version":2}]})",
                            ApprovalCaller{"cli:olga", "tok-olga", "olga"},
                            "by hand", 0)
                  .ok());
  Serve(1, 400, 55);
  Serve(2, 400, 85);

  Check(spec);
  ASSERT_THAT(promotions_, SizeIs(1));
  EXPECT_THAT(moves_, IsEmpty());
  const std::vector<Decision> decisions = Decisions();
  ASSERT_THAT(decisions, SizeIs(1));
  EXPECT_EQ(decisions[0].after["decision"], "promote");
}

TEST_F(OptimizerTest, DropAfterAPromotionRollsBackOnce) {
  const AppSpec spec = ApplySpec(SpecYaml());
  // Someone promotes the old model by hand; production shows it worse.
  const int64_t move_seq = Promote(2, 85, 1, 55, "cli:ops");
  const int64_t promoted_at = promoted_at_;

  Check(spec);
  EXPECT_THAT(promotions_, IsEmpty());
  ASSERT_THAT(moves_, SizeIs(1));
  EXPECT_THAT(moves_[0].moves,
              ElementsAre(Pair("champion", 2), Pair("previous", 1)));
  EXPECT_EQ(moves_[0].actor, "rollback");
  EXPECT_EQ(Alias("champion"), 2);
  EXPECT_EQ(Alias("previous"), 1);

  const std::vector<Decision> decisions = Decisions();
  ASSERT_THAT(decisions, SizeIs(1));
  const Decision& d = decisions[0];
  EXPECT_EQ(d.action, "model.rollback");
  EXPECT_EQ(d.actor, "policy");
  EXPECT_EQ(d.object, "model churn v1");
  EXPECT_EQ(d.after["decision"], "rollback");
  EXPECT_EQ(d.after["move"], move_seq);
  EXPECT_EQ(d.after["champion"], 1);
  EXPECT_EQ(d.after["previous"], 2);
  EXPECT_EQ(d.after["promoted_at"], FormatTimestamp(promoted_at));
  EXPECT_EQ(d.after["metric"], "accuracy");
  EXPECT_EQ(d.after["kpi_drop"], 0.05);
  EXPECT_EQ(d.after["previous_rows"], 400);
  EXPECT_EQ(d.after["champion_rows"], 400);
  EXPECT_THAT(d.after["reason"].get<std::string>(),
              HasSubstr("dropped by more than kpi_drop 0.05"));
  const json& c = d.after["comparison"];
  EXPECT_THAT(c["champion"].get<double>(), DoubleNear(0.85, 1e-9));
  EXPECT_THAT(c["challenger"].get<double>(), DoubleNear(0.55, 1e-9));
  EXPECT_LT(c["upper"].get<double>(), -0.05);

  ASSERT_THAT(alerts_, SizeIs(1));
  const Alert& alert = alerts_[0];
  EXPECT_EQ(alert.rule, "rollback");
  EXPECT_EQ(alert.app, kApp);
  EXPECT_EQ(alert.state, AlertState::kFiring);
  EXPECT_EQ(alert.metric, "kpi.accuracy");
  EXPECT_EQ(alert.comparison, Comparison::kBelow);
  EXPECT_THAT(alert.value, DoubleNear(0.55, 1e-9));
  EXPECT_THAT(alert.threshold, DoubleNear(0.85 - 0.05, 1e-9));
  EXPECT_EQ(alert.since_micros, clock_.NowMicros());

  // Decided once: again, after a restart, and past the end of the watch.
  Check(spec);
  optimizer_ = NewOptimizer();
  Check(spec);
  clock_.Advance(3 * kHour);
  Check(spec);
  EXPECT_THAT(moves_, SizeIs(1));
  EXPECT_THAT(alerts_, SizeIs(1));
  EXPECT_THAT(Decisions(), SizeIs(1));
}

// A monitoring window of `version` in [start, start + 1h) with `requests`
// requests of which `failed` failed, as the monitor stores it.
MonitorWindowRecord ErrorWindow(int version, int64_t start, int64_t requests,
                                int64_t failed) {
  MonitorWindowRecord w;
  w.app = kApp;
  w.version = version;
  w.start_at = start;
  w.end_at = start + kHour;
  w.rows = requests - failed;
  w.profile_json = "{}";
  w.drift_json = json{{"errors",
                       {{"requests", requests},
                        {"failed", failed},
                        {"rate", static_cast<double>(failed) / requests}}}}
                     .dump();
  w.kpis_json = "{}";
  return w;
}

TEST_F(OptimizerTest, AnErrorRateRiseRollsBackWithoutFeedback) {
  const AppSpec spec = ApplySpec(SpecYaml());
  RegisterVersions(2);
  Move({{"champion", 2}}, "cli:ops");
  clock_.Advance(kHour);
  const int64_t promoted_at = clock_.NowMicros();
  ASSERT_TRUE(store_->PutMonitorWindow(
                        ErrorWindow(2, promoted_at - kHour, 1000, 2))
                  .ok());
  Move({{"champion", 1}, {"previous", 2}}, "cli:ops");
  clock_.Advance(kSecond);
  // 1.5% failed: a rise of 1.3 points, within error_rate_rise (0.01) at
  // 95% on 500 requests.
  ASSERT_TRUE(
      store_->PutMonitorWindow(ErrorWindow(1, promoted_at, 500, 8)).ok());
  Check(spec);
  EXPECT_THAT(moves_, IsEmpty());
  // 12% failed: rolled back, though no label came back.
  ASSERT_TRUE(
      store_->PutMonitorWindow(ErrorWindow(1, promoted_at, 500, 60)).ok());
  Check(spec);
  ASSERT_THAT(moves_, SizeIs(1));
  EXPECT_THAT(moves_[0].moves,
              ElementsAre(Pair("champion", 2), Pair("previous", 1)));
  EXPECT_EQ(moves_[0].actor, "rollback");
  const std::vector<Decision> decisions = Decisions();
  ASSERT_THAT(decisions, SizeIs(1));
  EXPECT_EQ(decisions[0].action, "model.rollback");
  EXPECT_THAT(decisions[0].after["reason"].get<std::string>(),
              HasSubstr("the error rate rose by more than error_rate_rise"));
  EXPECT_EQ(decisions[0].after["error_rate"]["champion"]["failed"], 60);
  EXPECT_EQ(decisions[0].after["error_rate"]["previous"]["requests"], 1000);
  ASSERT_THAT(alerts_, SizeIs(1));
  EXPECT_EQ(alerts_[0].metric, "errors.rate");
  EXPECT_EQ(alerts_[0].comparison, Comparison::kAbove);
  EXPECT_THAT(alerts_[0].value, DoubleNear(0.12, 1e-9));
  EXPECT_THAT(alerts_[0].threshold, DoubleNear(0.002 + 0.01, 1e-9));
}

TEST_F(OptimizerTest, RollbackOnALowerIsBetterMetricAlertsAboveThePrevious) {
  const AppSpec spec = ApplySpec(SpecYaml("logloss"));
  Promote(1, 85, 2, 55, "policy");

  Check(spec);
  ASSERT_THAT(moves_, SizeIs(1));
  EXPECT_THAT(moves_[0].moves,
              ElementsAre(Pair("champion", 1), Pair("previous", 2)));
  const std::vector<Decision> decisions = Decisions();
  ASSERT_THAT(decisions, SizeIs(1));
  EXPECT_EQ(decisions[0].action, "model.rollback");
  EXPECT_EQ(decisions[0].after["metric"], "logloss");
  const json& c = decisions[0].after["comparison"];
  ASSERT_THAT(alerts_, SizeIs(1));
  EXPECT_EQ(alerts_[0].metric, "kpi.logloss");
  EXPECT_EQ(alerts_[0].comparison, Comparison::kAbove);
  EXPECT_DOUBLE_EQ(alerts_[0].value, c["challenger"].get<double>());
  EXPECT_DOUBLE_EQ(alerts_[0].threshold, c["champion"].get<double>() + 0.05);
  EXPECT_GT(alerts_[0].value, alerts_[0].threshold);
}

TEST_F(OptimizerTest, RollbackThatCannotMoveRecordsNothingAndIsTriedAgain) {
  const AppSpec spec = ApplySpec(SpecYaml());
  Promote(2, 85, 1, 55, "cli:ops");

  move_failure_ = absl::UnavailableError("model churn v2 is loading");
  absl::Status failed = optimizer_->Check(spec);
  EXPECT_EQ(failed.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(failed.message()),
              HasSubstr("watching the last promotion of app 'churn'"));
  EXPECT_THAT(Decisions(), IsEmpty());
  EXPECT_THAT(alerts_, IsEmpty());
  EXPECT_EQ(Alias("champion"), 1);

  move_failure_ = absl::OkStatus();
  Check(spec);
  EXPECT_THAT(moves_, SizeIs(2));
  EXPECT_EQ(Alias("champion"), 2);
  ASSERT_THAT(Decisions(), SizeIs(1));
  EXPECT_EQ(Decisions()[0].action, "model.rollback");
  EXPECT_THAT(alerts_, SizeIs(1));
}

TEST_F(OptimizerTest, PromotionWithoutADropIsKeptWhenTheWatchEnds) {
  const AppSpec spec = ApplySpec(SpecYaml());
  const int64_t move_seq = Promote(1, 80, 2, 80, "policy");
  const int64_t promoted_at = promoted_at_;

  Check(spec);
  clock_.Set(promoted_at + 2 * kHour - 1);
  Check(spec);
  EXPECT_THAT(Decisions(), IsEmpty());

  clock_.Set(promoted_at + 2 * kHour);
  Check(spec);
  std::vector<Decision> decisions = Decisions();
  ASSERT_THAT(decisions, SizeIs(1));
  const Decision& d = decisions[0];
  EXPECT_EQ(d.action, "rollback.check");
  EXPECT_EQ(d.actor, "policy");
  EXPECT_EQ(d.object, "model churn v2");
  EXPECT_EQ(d.after["decision"], "kept");
  EXPECT_EQ(d.after["move"], move_seq);
  EXPECT_EQ(d.after["champion"], 2);
  EXPECT_EQ(d.after["previous"], 1);
  EXPECT_EQ(d.after["previous_rows"], 400);
  EXPECT_EQ(d.after["champion_rows"], 400);
  EXPECT_THAT(d.after["reason"].get<std::string>(),
              HasSubstr("within kpi_drop 0.05"));
  EXPECT_THAT(d.after["comparison"]["gain"].get<double>(), DoubleNear(0, 1e-9));

  // Once: again, and after a restart.
  clock_.Advance(kHour);
  Check(spec);
  optimizer_ = NewOptimizer();
  Check(spec);
  EXPECT_THAT(Decisions(), SizeIs(1));
  EXPECT_THAT(moves_, IsEmpty());
  EXPECT_THAT(promotions_, IsEmpty());
  EXPECT_THAT(alerts_, IsEmpty());
  EXPECT_EQ(Alias("champion"), 2);
}

TEST_F(OptimizerTest, PromotionWithTooLittleFeedbackIsKeptWhenTheWatchEnds) {
  const AppSpec spec = ApplySpec(SpecYaml());
  RegisterVersions(2);
  Move({{"champion", 1}}, "cli:ops");
  clock_.Advance(kHour);
  Serve(1, 400, 80);
  Move({{"champion", 2}, {"previous", 1}}, "policy");
  const int64_t promoted_at = clock_.NowMicros();
  clock_.Advance(kSecond);
  Serve(2, 99, 20);

  clock_.Set(promoted_at + 2 * kHour);
  Check(spec);
  const std::vector<Decision> decisions = Decisions();
  ASSERT_THAT(decisions, SizeIs(1));
  EXPECT_EQ(decisions[0].action, "rollback.check");
  EXPECT_EQ(decisions[0].after["decision"], "kept");
  EXPECT_EQ(decisions[0].after["champion_rows"], 99);
  EXPECT_THAT(decisions[0].after["reason"].get<std::string>(),
              HasSubstr("too few labelled predictions"));
  EXPECT_FALSE(decisions[0].after.contains("comparison"));
  EXPECT_THAT(moves_, IsEmpty());
}

TEST_F(OptimizerTest, FirstChampionAndRollbackMovesAreNotWatched) {
  const AppSpec spec = ApplySpec(SpecYaml());
  RegisterVersions(2);
  // The first champion: nothing to go back to.
  Move({{"champion", 1}}, "cli:ops");
  clock_.Advance(2 * kHour + kSecond);
  Check(spec);
  EXPECT_THAT(Decisions(), IsEmpty());

  // A move made by a rollback, however the version it left looked.
  Serve(1, 400, 85);
  Move({{"champion", 2}, {"previous", 1}}, kRollbackActor);
  clock_.Advance(kSecond);
  Serve(2, 400, 55);
  Check(spec);
  clock_.Advance(2 * kHour);
  Check(spec);
  EXPECT_THAT(Decisions(), IsEmpty());
  EXPECT_THAT(moves_, IsEmpty());
  EXPECT_THAT(alerts_, IsEmpty());
  EXPECT_EQ(Alias("champion"), 2);
}

TEST_F(OptimizerTest, CanaryOnTheRolledBackVersionMovesBackToo) {
  const AppSpec spec = ApplySpec(SpecYaml());
  RegisterVersions(2);
  Move({{"champion", 2}}, "cli:ops");
  clock_.Advance(kHour);
  Serve(2, 400, 85);
  Move({{"challenger", 1}}, "run run-1");
  Move({{"champion", 1}, {"previous", 2}}, "cli:ops");
  clock_.Advance(kSecond);
  Serve(1, 400, 55);

  Check(spec);
  ASSERT_THAT(moves_, SizeIs(1));
  EXPECT_THAT(moves_[0].moves,
              ElementsAre(Pair("champion", 2), Pair("previous", 1),
                          Pair("challenger", 2)));
  EXPECT_EQ(moves_[0].actor, "rollback");
  EXPECT_EQ(Alias("champion"), 2);
  EXPECT_EQ(Alias("challenger"), 2);
  EXPECT_THAT(promotions_, IsEmpty());
  ASSERT_THAT(Decisions(), SizeIs(1));
  EXPECT_EQ(Decisions()[0].action, "model.rollback");

  Check(spec);
  EXPECT_THAT(moves_, SizeIs(1));
  EXPECT_THAT(Decisions(), SizeIs(1));
}

}  // namespace
}  // namespace slipway
