#include "pipeline/app_spec.h"

#include <string>
#include <variant>
#include <vector>

#include "core/filesystem.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slipway {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// The complete example of docs/app-spec.md (DocumentationExamplesParse
// keeps the two equal).
constexpr char kFullSpec[] = R"(app: churn
description: "Which customers will leave next month"
use_case:
  problem: which customers will leave next month
  integration: [rest, batch]
  owner: growth-team
  business_kpi: retained_revenue
data:
  train:
    connector: csv
    path: data/train.csv
    header: true
    skip_lines: 0
    delimiter: ","
    types: {plan: string, tenure: int64}
    missing_values: ["", "NA"]
schema:
  target: churned
  id: customer_id
  features: {age: float64, plan: string, tenure: int64}
  exclude: [signup_date]
  task: binary_classification
pipelines:
  train:
    trigger: {schedule: "0 3 * * *", on: [drift, kpi_decay, new_data]}
    steps:
      - ingest:   {source: train}
      - validate: {max_null_fraction: 0.05, min_rows: 100, ranges: {age: [0, 120]}, allowed: {plan: [basic, pro]}}
      - split:    {test_fraction: 0.2, seed: 7, stratify: true}
      - train:    {engine: xgboost, objective: "binary:logistic", rounds: 200, max_depth: 6, eta: 0.3,
                   subsample: 0.8, colsample_bytree: 0.9, min_child_weight: 2, lambda: 1.5, alpha: 0.1,
                   seed: 3, threads: 2}
      - evaluate: {metrics: [auc, logloss, accuracy]}
      - register: {alias: challenger}
  data_check:
    kind: check
    steps:
      - ingest: {source: train, name: load}
      - validate: {min_rows: 10}
endpoint: {model: champion, batching: {max_batch: 32, max_delay_us: 800, max_queue: 2048}, runtime: {workers: 4, recycle_after: 0, timeout: 2m, threads: 2}}
monitor:
  window: 5m
  drift: {method: psi, warn: 0.1, alert: 0.25}
  rules:
    - {name: churn-auc-low, metric: kpi.auc, below: 0.80, for: 3, fire: kpi_decay}
    - {name: latency-high, metric: latency.p99_ms, above: 50}
policy:
  promote: {metric: auc, min_gain: 0.005, approval: required}
  rollback: {kpi_drop: 0.05}
  apply: {approval: required}
  approvals: {expire_after: 7d, self_approval: allowed}
notify:
  - {webhook: "http://127.0.0.1:9000/hook", secret: "env:HOOK_SECRET"}
)";

TEST(AppSpecTest, ParsesTheFullExample) {
  absl::StatusOr<AppSpec> parsed = ParseAppSpec(kFullSpec, "slipway.yaml");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const AppSpec& spec = *parsed;
  EXPECT_EQ(spec.file_name, "slipway.yaml");
  EXPECT_EQ(spec.app, "churn");
  EXPECT_EQ(spec.description, "Which customers will leave next month");
  ASSERT_TRUE(spec.use_case.has_value());
  EXPECT_EQ(spec.use_case->problem, "which customers will leave next month");
  EXPECT_THAT(spec.use_case->integration, ElementsAre("rest", "batch"));
  EXPECT_EQ(spec.use_case->owner, "growth-team");
  EXPECT_EQ(spec.use_case->business_kpi, "retained_revenue");

  ASSERT_EQ(spec.data.size(), 1u);
  const DataSourceSpec& train_data = spec.data[0];
  EXPECT_EQ(train_data.name, "train");
  EXPECT_EQ(train_data.connector, Connector::kCsv);
  EXPECT_EQ(train_data.path, "data/train.csv");
  EXPECT_TRUE(train_data.header);
  EXPECT_EQ(train_data.delimiter, ',');
  ASSERT_EQ(train_data.types.size(), 2u);
  EXPECT_EQ(train_data.types[0].column, "plan");
  EXPECT_EQ(train_data.types[0].type, DataType::kString);
  EXPECT_EQ(train_data.types[1].type, DataType::kInt64);
  EXPECT_THAT(train_data.missing_values, ElementsAre("", "NA"));
  EXPECT_EQ(train_data.location.line, 9);
  EXPECT_EQ(train_data.location.column, 3);
  EXPECT_EQ(spec.FindDataSource("train"), &spec.data[0]);
  EXPECT_EQ(spec.FindDataSource("nope"), nullptr);

  EXPECT_EQ(spec.schema.target, "churned");
  EXPECT_EQ(spec.schema.id, "customer_id");
  ASSERT_EQ(spec.schema.features.size(), 3u);
  EXPECT_EQ(spec.schema.features[0].column, "age");
  EXPECT_EQ(spec.schema.features[0].type, DataType::kFloat64);
  EXPECT_EQ(spec.schema.features[2].column, "tenure");
  EXPECT_THAT(spec.schema.exclude, ElementsAre("signup_date"));
  EXPECT_EQ(spec.schema.task, Task::kBinaryClassification);

  ASSERT_EQ(spec.pipelines.size(), 2u);
  const PipelineSpec& train = spec.pipelines[0];
  EXPECT_EQ(train.name, "train");
  EXPECT_EQ(train.kind, PipelineKind::kTrain);
  EXPECT_EQ(train.trigger.schedule, "0 3 * * *");
  EXPECT_THAT(train.trigger.on,
              ElementsAre(TriggerEvent::kDrift, TriggerEvent::kKpiDecay,
                          TriggerEvent::kNewData));
  ASSERT_EQ(train.steps.size(), 6u);
  std::vector<StepKind> kinds;
  for (const StepSpec& step : train.steps) kinds.push_back(step.kind());
  EXPECT_THAT(kinds, ElementsAre(StepKind::kIngest, StepKind::kValidate,
                                 StepKind::kSplit, StepKind::kTrain,
                                 StepKind::kEvaluate, StepKind::kRegister));
  EXPECT_EQ(train.steps[0].location.line, 27);
  EXPECT_EQ(train.steps[0].location.column, 9);
  EXPECT_EQ(train.steps[3].location.line, 30);
  EXPECT_EQ(std::get<IngestStepSpec>(train.steps[0].params).source, "train");

  const auto& validate = std::get<ValidateStepSpec>(train.steps[1].params);
  EXPECT_DOUBLE_EQ(validate.max_null_fraction, 0.05);
  EXPECT_EQ(validate.min_rows, 100);
  ASSERT_EQ(validate.ranges.size(), 1u);
  EXPECT_EQ(validate.ranges[0].column, "age");
  EXPECT_DOUBLE_EQ(validate.ranges[0].min, 0);
  EXPECT_DOUBLE_EQ(validate.ranges[0].max, 120);
  ASSERT_EQ(validate.allowed.size(), 1u);
  EXPECT_EQ(validate.allowed[0].column, "plan");
  EXPECT_THAT(validate.allowed[0].values, ElementsAre("basic", "pro"));

  const auto& split = std::get<SplitStepSpec>(train.steps[2].params);
  EXPECT_DOUBLE_EQ(split.test_fraction, 0.2);
  EXPECT_EQ(split.seed, 7);
  EXPECT_TRUE(split.stratify);

  const auto& t = std::get<TrainStepSpec>(train.steps[3].params);
  EXPECT_EQ(t.engine, TrainEngine::kXgboost);
  EXPECT_EQ(t.objective, "binary:logistic");
  EXPECT_EQ(t.rounds, 200);
  EXPECT_EQ(t.max_depth, 6);
  EXPECT_DOUBLE_EQ(t.eta, 0.3);
  EXPECT_DOUBLE_EQ(t.subsample, 0.8);
  EXPECT_DOUBLE_EQ(t.colsample_bytree, 0.9);
  EXPECT_DOUBLE_EQ(t.min_child_weight, 2);
  EXPECT_DOUBLE_EQ(t.lambda, 1.5);
  EXPECT_DOUBLE_EQ(t.alpha, 0.1);
  EXPECT_EQ(t.seed, 3);
  EXPECT_EQ(t.threads, 2);

  EXPECT_THAT(std::get<EvaluateStepSpec>(train.steps[4].params).metrics,
              ElementsAre("auc", "logloss", "accuracy"));
  EXPECT_EQ(std::get<RegisterStepSpec>(train.steps[5].params).alias,
            "challenger");

  const PipelineSpec& check = spec.pipelines[1];
  EXPECT_EQ(check.kind, PipelineKind::kCheck);
  EXPECT_EQ(check.steps[0].name, "load");
  EXPECT_EQ(check.FindStep("load"), &check.steps[0]);
  EXPECT_EQ(check.FindStep("ingest"), nullptr);
  EXPECT_EQ(spec.FindPipeline("data_check"), &spec.pipelines[1]);

  EXPECT_EQ(spec.endpoint.model, "champion");
  EXPECT_EQ(spec.endpoint.batching.max_batch, 32);
  EXPECT_EQ(spec.endpoint.batching.max_delay_us, 800);
  EXPECT_EQ(spec.endpoint.batching.max_queue, 2048);
  EXPECT_EQ(spec.endpoint.runtime.workers, 4);
  EXPECT_EQ(spec.endpoint.runtime.recycle_after, 0);
  EXPECT_EQ(spec.endpoint.runtime.timeout_seconds, 120);
  EXPECT_EQ(spec.endpoint.runtime.threads, 2);

  EXPECT_EQ(spec.monitor.window_seconds, 300);
  EXPECT_EQ(spec.monitor.drift.rule.method, "psi");
  EXPECT_DOUBLE_EQ(spec.monitor.drift.alert, 0.25);
  ASSERT_EQ(spec.monitor.rules.size(), 2u);
  EXPECT_EQ(spec.monitor.rules[0].name, "churn-auc-low");
  EXPECT_EQ(spec.monitor.rules[0].comparison, Comparison::kBelow);
  EXPECT_DOUBLE_EQ(spec.monitor.rules[0].threshold, 0.8);
  EXPECT_EQ(spec.monitor.rules[0].for_windows, 3);
  EXPECT_EQ(spec.monitor.rules[0].fire, TriggerEvent::kKpiDecay);
  EXPECT_EQ(spec.monitor.rules[1].comparison, Comparison::kAbove);
  EXPECT_EQ(spec.monitor.rules[1].for_windows, 1);
  EXPECT_FALSE(spec.monitor.rules[1].fire.has_value());

  ASSERT_TRUE(spec.policy.promote.has_value());
  EXPECT_EQ(spec.policy.promote->metric, "auc");
  EXPECT_DOUBLE_EQ(spec.policy.promote->min_gain, 0.005);
  EXPECT_TRUE(spec.policy.promote->requires_approval);
  EXPECT_DOUBLE_EQ(spec.policy.promote->confidence, 0.95);
  ASSERT_TRUE(spec.policy.rollback.has_value());
  EXPECT_DOUBLE_EQ(spec.policy.rollback->kpi_drop, 0.05);
  EXPECT_TRUE(spec.policy.apply.requires_approval);
  EXPECT_EQ(spec.policy.approvals.expire_after_seconds, 7 * 86400);
  EXPECT_FALSE(spec.policy.approvals.forbid_self_approval);

  ASSERT_EQ(spec.notify.size(), 1u);
  EXPECT_EQ(spec.notify[0].webhook, "http://127.0.0.1:9000/hook");
  EXPECT_EQ(spec.notify[0].secret, "env:HOOK_SECRET");
  EXPECT_EQ(spec.notify[0].location.line, 53);
}

TEST(AppSpecTest, DriftRulesPerFeature) {
  absl::StatusOr<AppSpec> spec = ParseAppSpec(
      "app: churn\n"
      "monitor:\n"
      "  drift:\n"
      "    method: auto\n"
      "    features:\n"
      "      income: {method: wasserstein, threshold: 0.2}\n"
      "      plan: {method: chi2, threshold: 0.01}\n"
      "      prediction: {method: psi}\n",
      "slipway.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  const DriftSpec& drift = spec->monitor.drift;
  EXPECT_EQ(drift.rule.method, "auto");
  ASSERT_EQ(drift.features.size(), 3u);
  EXPECT_EQ(drift.features[0].first, "income");
  EXPECT_EQ(drift.features[0].second.method, "wasserstein");
  EXPECT_DOUBLE_EQ(*drift.features[0].second.threshold, 0.2);
  EXPECT_EQ(drift.features[1].second.method, "chi2");
  EXPECT_EQ(drift.features[1].second.location.line, 7);
  EXPECT_EQ(drift.features[2].first, "prediction");
  EXPECT_FALSE(drift.features[2].second.threshold.has_value());
}

// Every YAML example of docs/app-spec.md that is an app is valid, and the
// complete one is the spec tested field by field above.
TEST(AppSpecTest, DocumentationExamplesParse) {
  absl::StatusOr<std::string> doc = LocalFilesystem()->ReadFile(
      std::string(SLIPWAY_SOURCE_DIR) + "/docs/app-spec.md");
  ASSERT_TRUE(doc.ok()) << doc.status();
  std::vector<std::string> examples;
  size_t pos = 0;
  const std::string open = "```yaml\n";
  while ((pos = doc->find(open, pos)) != std::string::npos) {
    size_t start = pos + open.size();
    size_t end = doc->find("```", start);
    ASSERT_NE(end, std::string::npos);
    std::string block = doc->substr(start, end - start);
    if (block.rfind("app:", 0) == 0) examples.push_back(block);
    pos = end + 3;
  }
  ASSERT_GE(examples.size(), 2u);
  EXPECT_EQ(examples[0], kFullSpec);
  for (const std::string& example : examples) {
    absl::StatusOr<AppSpec> spec = ParseAppSpec(example, "app-spec.md");
    EXPECT_TRUE(spec.ok()) << spec.status() << "\n" << example;
  }
}

TEST(AppSpecTest, MinimalSpecTakesDefaults) {
  absl::StatusOr<AppSpec> spec = ParseAppSpec("app: churn\n", "slipway.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->app, "churn");
  EXPECT_FALSE(spec->use_case.has_value());
  EXPECT_TRUE(spec->data.empty());
  EXPECT_TRUE(spec->pipelines.empty());
  EXPECT_EQ(spec->schema.target, "");
  EXPECT_FALSE(spec->schema.task.has_value());
  EXPECT_EQ(spec->endpoint.model, "champion");
  EXPECT_EQ(spec->endpoint.batching.max_batch, 64);
  EXPECT_EQ(spec->endpoint.batching.max_delay_us, 0);
  EXPECT_EQ(spec->endpoint.batching.max_queue, 8192);
  EXPECT_EQ(spec->endpoint.runtime.workers, 2);
  EXPECT_EQ(spec->endpoint.runtime.recycle_after, 10000);
  EXPECT_EQ(spec->endpoint.runtime.timeout_seconds, 30);
  EXPECT_EQ(spec->endpoint.runtime.threads, 1);
  EXPECT_EQ(spec->monitor.window_seconds, 300);
  EXPECT_EQ(spec->monitor.drift.rule.method, "auto");
  EXPECT_FALSE(spec->monitor.drift.rule.threshold.has_value());
  EXPECT_TRUE(spec->monitor.drift.features.empty());
  EXPECT_DOUBLE_EQ(spec->monitor.drift.warn, 0.1);
  EXPECT_DOUBLE_EQ(spec->monitor.drift.alert, 0.25);
  EXPECT_TRUE(spec->monitor.enabled);
  EXPECT_DOUBLE_EQ(spec->monitor.log_inputs, 0);
  EXPECT_EQ(spec->monitor.retention_seconds, 30 * 86400);
  EXPECT_FALSE(spec->policy.promote.has_value());
  EXPECT_FALSE(spec->policy.rollback.has_value());
  EXPECT_TRUE(spec->notify.empty());
}

TEST(AppSpecTest, MinimalTrainPipelineTakesDefaults) {
  constexpr char kSpec[] = R"(app: churn
data:
  train: {path: train.csv}
schema: {target: churned}
pipelines:
  train:
    steps:
      - ingest: {source: train}
      - validate:
      - split: {}
      - train: {}
      - evaluate: {}
      - register: {}
)";
  absl::StatusOr<AppSpec> spec = ParseAppSpec(kSpec, "slipway.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  const DataSourceSpec& source = spec->data[0];
  EXPECT_EQ(source.connector, Connector::kCsv);
  EXPECT_TRUE(source.header);
  EXPECT_EQ(source.skip_lines, 0);
  EXPECT_EQ(source.delimiter, ',');
  EXPECT_TRUE(source.columns.empty());
  EXPECT_EQ(source.missing_values, CsvOptions().missing_values);

  const PipelineSpec& pipeline = spec->pipelines[0];
  EXPECT_EQ(pipeline.kind, PipelineKind::kTrain);
  EXPECT_EQ(pipeline.concurrency, 1);
  EXPECT_EQ(pipeline.trigger.schedule, "");
  EXPECT_TRUE(pipeline.trigger.on.empty());
  ASSERT_EQ(pipeline.steps.size(), 6u);
  EXPECT_EQ(pipeline.steps[1].name, "validate");
  const auto& validate = std::get<ValidateStepSpec>(pipeline.steps[1].params);
  EXPECT_DOUBLE_EQ(validate.max_null_fraction, 1.0);
  EXPECT_EQ(validate.min_rows, 1);
  const auto& split = std::get<SplitStepSpec>(pipeline.steps[2].params);
  EXPECT_DOUBLE_EQ(split.test_fraction, 0.2);
  EXPECT_EQ(split.seed, 0);
  EXPECT_FALSE(split.stratify);
  const auto& train = std::get<TrainStepSpec>(pipeline.steps[3].params);
  EXPECT_EQ(train.objective, "");
  EXPECT_EQ(train.rounds, 100);
  EXPECT_EQ(train.max_depth, 6);
  EXPECT_DOUBLE_EQ(train.eta, 0.3);
  EXPECT_DOUBLE_EQ(train.subsample, 1.0);
  EXPECT_DOUBLE_EQ(train.colsample_bytree, 1.0);
  EXPECT_DOUBLE_EQ(train.min_child_weight, 1.0);
  EXPECT_DOUBLE_EQ(train.lambda, 1.0);
  EXPECT_DOUBLE_EQ(train.alpha, 0.0);
  EXPECT_EQ(train.threads, 0);
  EXPECT_TRUE(
      std::get<EvaluateStepSpec>(pipeline.steps[4].params).metrics.empty());
  EXPECT_EQ(std::get<RegisterStepSpec>(pipeline.steps[5].params).alias, "");
}

TEST(AppSpecTest, CsvOptionsFollowTheSource) {
  constexpr char kSpec[] = R"(app: iris
data:
  flowers:
    path: iris.csv
    header: false
    skip_lines: 1
    delimiter: ";"
    columns: [sepal_length, species]
    types: {species: string}
    missing_values: ["?"]
)";
  absl::StatusOr<AppSpec> spec = ParseAppSpec(kSpec, "slipway.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  CsvOptions options = CsvOptionsFor(spec->data[0]);
  EXPECT_FALSE(options.header);
  EXPECT_EQ(options.skip_lines, 1);
  EXPECT_EQ(options.delimiter, ';');
  EXPECT_THAT(options.column_names, ElementsAre("sepal_length", "species"));
  ASSERT_EQ(options.column_types.size(), 1u);
  EXPECT_EQ(options.column_types.at("species"), DataType::kString);
  EXPECT_THAT(options.missing_values, ElementsAre("?"));
}

TEST(AppSpecTest, AcceptsCronForms) {
  for (const char* schedule :
       {"* * * * *", "*/15 0-6 1,15 */2 1-5", "0 3 * * 7",
        "5 0-23/2 * 1-12/3 0", "0  3  *  *  *"}) {
    std::string yaml =
        std::string("app: a\ndata: {d: {path: x.csv}}\n") +
        "pipelines:\n  c:\n    kind: check\n    trigger: {schedule: \"" +
        schedule + "\"}\n    steps: [{ingest: {source: d}}]\n";
    absl::StatusOr<AppSpec> spec = ParseAppSpec(yaml, "slipway.yaml");
    EXPECT_TRUE(spec.ok()) << schedule << ": " << spec.status();
  }
}

TEST(AppSpecTest, ParsesPipelineConcurrency) {
  absl::StatusOr<AppSpec> spec = ParseAppSpec(
      "app: a\ndata: {d: {path: x.csv}}\n"
      "pipelines:\n  c:\n    kind: check\n    concurrency: 3\n"
      "    steps: [{ingest: {source: d}}]\n",
      "slipway.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->pipelines[0].concurrency, 3);
}

TEST(AppSpecTest, ParsesDurations) {
  for (auto [text, seconds] : std::vector<std::pair<std::string, int64_t>>{
           {"1s", 1}, {"90s", 90}, {"5m", 300}, {"2h", 7200}}) {
    absl::StatusOr<AppSpec> spec =
        ParseAppSpec("app: a\nmonitor: {window: " + text + "}\n", "s.yaml");
    ASSERT_TRUE(spec.ok()) << spec.status();
    EXPECT_EQ(spec->monitor.window_seconds, seconds) << text;
  }
}

TEST(AppSpecTest, ParsesMonitorLogAndRetention) {
  absl::StatusOr<AppSpec> spec = ParseAppSpec(
      "app: a\nmonitor: {enabled: false, log_inputs: 0.25, retention: 7d}\n",
      "s.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_FALSE(spec->monitor.enabled);
  EXPECT_DOUBLE_EQ(spec->monitor.log_inputs, 0.25);
  EXPECT_EQ(spec->monitor.retention_seconds, 7 * 86400);
}

// The Step-3 keys: connectors, step kinds, common step keys, DAG links.
constexpr char kDagSpec[] = R"(app: shop
data:
  train: {path: train.csv}
  events: {connector: jsonl, path: events.jsonl, types: {age: float64}, chunk_rows: 1000}
  local: {connector: sqlite, path: shop.db, query: "SELECT * FROM t", table: out, batch_rows: 500}
  sales:
    connector: postgres
    url: "postgresql://app@127.0.0.1:5432/shop"
    password: env:SHOP_PW
    query: "SELECT * FROM customers"
    schema: public
  scored: {connector: postgres, url: env:SCORE_DB, table: churn_scores}
  archive: {connector: postgres, url: "host=127.0.0.1 dbname=shop", table: archive}
schema: {target: churned, id: customer_id}
pipelines:
  train:
    retry_interrupted: true
    steps:
      - ingest: {source: train}
      - validate: {}
        name: check
      - split: {seed: 1}
      - transform: {impute: {numeric: constant, categorical: constant}, fill_value: -1,
                    fill_category: unknown, encode: onehot, max_categories: 20,
                    standardize: true, columns: [age, plan]}
        inputs: [split]
      - command: {run: "/usr/bin/python3 prep.py --fast", params: {rounds: 50, eta: 0.5},
                  env: {TOKEN: "env:PREP_TOKEN", MODE: fast, EMPTY: ""}, working_dir: scripts}
        name: prep
        inputs: [transform.train, check]
        outputs: [features, report]
        retries: 2
        retry_backoff: 5s
        timeout: 10m
        memory: 2GiB
        cache: false
      - notebook: {path: notebooks/train.ipynb, params: {rounds: 50}, kernel: ir}
        inputs: [prep.features]
      - command: {run: [/usr/bin/python3, train.py, ""]}
        name: fit
        inputs: [transform]
        after: [prep]
        timeout: 500ms
        memory: 1500MB
      - evaluate: {metrics: [auc]}
        inputs: [fit.model, split.test]
      - register: {alias: challenger}
        inputs: [notebook.model]
        after: [evaluate]
  nightly:
    kind: score
    trigger: {schedule: "0 4 * * *"}
    steps:
      - score: {source: sales, model: "3", sink: scored, keep: [customer_id], chunk_rows: 4096, threads: 2}
      - ingest: {source: events}
        name: load_events
        after: [score]
      - sink: {to: local}
endpoint:
  model: champion
  fields: [age, plan, tenure]
)";

std::vector<std::string> Names(const std::vector<const StepSpec*>& steps) {
  std::vector<std::string> names;
  for (const StepSpec* step : steps) names.push_back(step->name);
  return names;
}

TEST(AppSpecTest, ParsesConnectors) {
  absl::StatusOr<AppSpec> spec = ParseAppSpec(kDagSpec, "slipway.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  const DataSourceSpec* events = spec->FindDataSource("events");
  ASSERT_NE(events, nullptr);
  EXPECT_EQ(events->connector, Connector::kJsonl);
  EXPECT_EQ(events->path, "events.jsonl");
  ASSERT_EQ(events->types.size(), 1u);
  EXPECT_EQ(events->types[0].type, DataType::kFloat64);
  EXPECT_EQ(events->chunk_rows, 1000);

  const DataSourceSpec* local = spec->FindDataSource("local");
  EXPECT_EQ(local->connector, Connector::kSqlite);
  EXPECT_EQ(local->path, "shop.db");
  EXPECT_EQ(local->query, "SELECT * FROM t");
  EXPECT_EQ(local->table, "out");
  EXPECT_EQ(local->batch_rows, 500);
  EXPECT_EQ(local->chunk_rows, 65536);

  const DataSourceSpec* sales = spec->FindDataSource("sales");
  EXPECT_EQ(sales->connector, Connector::kPostgres);
  EXPECT_EQ(sales->url, "postgresql://app@127.0.0.1:5432/shop");
  EXPECT_EQ(sales->password, "env:SHOP_PW");
  EXPECT_EQ(sales->query, "SELECT * FROM customers");
  EXPECT_EQ(sales->db_schema, "public");
  EXPECT_EQ(sales->table, "");
  EXPECT_EQ(sales->batch_rows, 1000);

  const DataSourceSpec* scored = spec->FindDataSource("scored");
  EXPECT_EQ(scored->url, "env:SCORE_DB");
  EXPECT_EQ(scored->table, "churn_scores");
  EXPECT_EQ(scored->query, "");
  EXPECT_EQ(spec->FindDataSource("archive")->url, "host=127.0.0.1 dbname=shop");
  EXPECT_EQ(ConnectorName(Connector::kPostgres), "postgres");
  EXPECT_EQ(ConnectorName(Connector::kJsonl), "jsonl");

  EXPECT_THAT(spec->endpoint.fields, ElementsAre("age", "plan", "tenure"));
}

TEST(AppSpecTest, ParsesStep3StepKindsAndCommonKeys) {
  absl::StatusOr<AppSpec> spec = ParseAppSpec(kDagSpec, "slipway.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  const PipelineSpec& train = spec->pipelines[0];
  EXPECT_TRUE(train.retry_interrupted);
  EXPECT_FALSE(spec->pipelines[1].retry_interrupted);

  const StepSpec* check = train.FindStep("check");
  ASSERT_NE(check, nullptr);
  EXPECT_EQ(check->kind(), StepKind::kValidate);
  EXPECT_EQ(check->location.line, 20);

  const StepSpec* transform_step = train.FindStep("transform");
  ASSERT_NE(transform_step, nullptr);
  EXPECT_EQ(StepKindName(transform_step->kind()), "transform");
  const auto& transform = std::get<TransformStepSpec>(transform_step->params);
  EXPECT_EQ(transform.impute_numeric, NumericImpute::kConstant);
  EXPECT_EQ(transform.impute_categorical, CategoricalImpute::kConstant);
  EXPECT_DOUBLE_EQ(transform.fill_value, -1);
  EXPECT_EQ(transform.fill_category, "unknown");
  EXPECT_EQ(transform.encode, CategoricalEncoding::kOneHot);
  EXPECT_EQ(transform.max_categories, 20);
  EXPECT_TRUE(transform.standardize);
  EXPECT_THAT(transform.columns, ElementsAre("age", "plan"));
  EXPECT_THAT(transform_step->inputs, ElementsAre("split"));

  const StepSpec* prep = train.FindStep("prep");
  ASSERT_NE(prep, nullptr);
  EXPECT_EQ(prep->kind(), StepKind::kCommand);
  const auto& command = std::get<CommandStepSpec>(prep->params);
  EXPECT_TRUE(command.shell);
  EXPECT_THAT(command.argv,
              ElementsAre("/bin/sh", "-c", "/usr/bin/python3 prep.py --fast"));
  EXPECT_EQ(command.params_json, R"({"rounds":50,"eta":0.5})");
  using Env = std::pair<std::string, std::string>;
  EXPECT_THAT(command.env, ElementsAre(Env{"TOKEN", "env:PREP_TOKEN"},
                                       Env{"MODE", "fast"}, Env{"EMPTY", ""}));
  EXPECT_EQ(command.working_dir, "scripts");
  EXPECT_THAT(prep->inputs, ElementsAre("transform.train", "check"));
  EXPECT_THAT(prep->outputs, ElementsAre("features", "report"));
  EXPECT_EQ(prep->policy.retries, 2);
  EXPECT_EQ(prep->policy.retry_backoff_ms, 5000);
  EXPECT_EQ(prep->policy.timeout_ms, 600000);
  EXPECT_EQ(prep->policy.memory_bytes, int64_t{2} << 30);
  EXPECT_FALSE(prep->policy.cache);

  const StepSpec* notebook_step = train.FindStep("notebook");
  ASSERT_NE(notebook_step, nullptr);
  const auto& notebook = std::get<NotebookStepSpec>(notebook_step->params);
  EXPECT_EQ(notebook.path, "notebooks/train.ipynb");
  EXPECT_EQ(notebook.params_json, R"({"rounds":50})");
  EXPECT_EQ(notebook.kernel, "ir");
  // Policy defaults.
  EXPECT_EQ(notebook_step->policy.retries, 0);
  EXPECT_EQ(notebook_step->policy.retry_backoff_ms, 10000);
  EXPECT_EQ(notebook_step->policy.timeout_ms, 0);
  EXPECT_EQ(notebook_step->policy.memory_bytes, 0);
  EXPECT_TRUE(notebook_step->policy.cache);

  const StepSpec* fit = train.FindStep("fit");
  ASSERT_NE(fit, nullptr);
  const auto& argv = std::get<CommandStepSpec>(fit->params);
  EXPECT_FALSE(argv.shell);
  EXPECT_THAT(argv.argv, ElementsAre("/usr/bin/python3", "train.py", ""));
  EXPECT_EQ(argv.params_json, "{}");
  EXPECT_EQ(argv.working_dir, "");
  EXPECT_THAT(fit->after, ElementsAre("prep"));
  EXPECT_EQ(fit->policy.timeout_ms, 500);
  EXPECT_EQ(fit->policy.memory_bytes, 1500000000);

  const PipelineSpec& nightly = spec->pipelines[1];
  EXPECT_EQ(nightly.kind, PipelineKind::kScore);
  const auto& score = std::get<ScoreStepSpec>(nightly.steps[0].params);
  EXPECT_EQ(score.source, "sales");
  EXPECT_EQ(score.sink, "scored");
  EXPECT_EQ(score.model, "3");
  EXPECT_THAT(score.keep, ElementsAre("customer_id"));
  EXPECT_EQ(score.chunk_rows, 4096);
  EXPECT_EQ(score.threads, 2);
  EXPECT_EQ(std::get<SinkStepSpec>(nightly.steps[2].params).to, "local");
}

TEST(AppSpecTest, StepKindDefaults) {
  absl::StatusOr<AppSpec> spec = ParseAppSpec(
      "app: a\ndata: {d: {path: d.csv}, o: {path: o.csv}}\n"
      "pipelines:\n  s:\n    kind: score\n    steps:\n"
      "      - score: {source: d, sink: o}\n"
      "      - ingest: {source: d}\n"
      "      - transform: {}\n"
      "      - notebook: {path: n.ipynb}\n"
      "      - command: {run: make}\n",
      "slipway.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  const std::vector<StepSpec>& steps = spec->pipelines[0].steps;
  const auto& score = std::get<ScoreStepSpec>(steps[0].params);
  EXPECT_EQ(score.model, "champion");
  EXPECT_TRUE(score.keep.empty());
  EXPECT_EQ(score.chunk_rows, 0);
  EXPECT_EQ(score.threads, 0);
  const auto& transform = std::get<TransformStepSpec>(steps[2].params);
  EXPECT_EQ(transform.impute_numeric, NumericImpute::kNone);
  EXPECT_EQ(transform.impute_categorical, CategoricalImpute::kNone);
  EXPECT_EQ(transform.encode, CategoricalEncoding::kNative);
  EXPECT_EQ(transform.max_categories, 50);
  EXPECT_FALSE(transform.standardize);
  EXPECT_EQ(transform.fill_category, "missing");
  const auto& notebook = std::get<NotebookStepSpec>(steps[3].params);
  EXPECT_EQ(notebook.kernel, "python3");
  EXPECT_EQ(notebook.params_json, "{}");
  const auto& command = std::get<CommandStepSpec>(steps[4].params);
  EXPECT_THAT(command.argv, ElementsAre("/bin/sh", "-c", "make"));
  EXPECT_TRUE(command.env.empty());
}

TEST(AppSpecTest, ParamsBecomeJson) {
  absl::StatusOr<AppSpec> spec = ParseAppSpec(
      R"(app: a
pipelines:
  c:
    kind: check
    steps:
      - command:
          run: "true"
          params:
            int: 7
            neg: -3
            float: 2.5
            exp: 1e3
            str: hello
            quoted_int: "7"
            quoted_bool: 'true'
            yes: true
            no: FALSE
            nothing: null
            tilde: ~
            empty:
            text: "a \"b\"\n"
            list: [1, x, [], {}]
            map: {nested: {deep: 0.125}}
            "key with space": v
)",
      "slipway.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(
      std::get<CommandStepSpec>(spec->pipelines[0].steps[0].params).params_json,
      R"({"int":7,"neg":-3,"float":2.5,"exp":1000,"str":"hello",)"
      R"("quoted_int":"7","quoted_bool":"true","yes":true,"no":false,)"
      R"("nothing":null,"tilde":null,"empty":null,"text":"a \"b\"\n",)"
      R"("list":[1,"x",[],{}],"map":{"nested":{"deep":0.125}},)"
      R"("key with space":"v"})");
}

TEST(AppSpecTest, ParsesDurationsAndSizes) {
  for (auto [text, ms] :
       std::vector<std::pair<std::string, int64_t>>{{"0ms", 0},
                                                    {"250ms", 250},
                                                    {"5s", 5000},
                                                    {"2m", 120000},
                                                    {"1h", 3600000}}) {
    absl::StatusOr<AppSpec> spec = ParseAppSpec(
        "app: a\npipelines:\n  c:\n    kind: check\n    steps:\n"
        "      - command: {run: x}\n        retry_backoff: " +
            text + "\n",
        "s.yaml");
    ASSERT_TRUE(spec.ok()) << spec.status();
    EXPECT_EQ(spec->pipelines[0].steps[0].policy.retry_backoff_ms, ms) << text;
  }
  for (auto [text, bytes] : std::vector<std::pair<std::string, int64_t>>{
           {"1048576B", 1048576},
           {"1024KiB", 1048576},
           {"64MiB", int64_t{64} << 20},
           {"3GiB", int64_t{3} << 30},
           {"2000KB", 2000000},
           {"5MB", 5000000},
           {"2GB", 2000000000}}) {
    absl::StatusOr<AppSpec> spec = ParseAppSpec(
        "app: a\npipelines:\n  c:\n    kind: check\n    steps:\n"
        "      - notebook: {path: n.ipynb}\n        memory: " +
            text + "\n",
        "s.yaml");
    ASSERT_TRUE(spec.ok()) << spec.status();
    EXPECT_EQ(spec->pipelines[0].steps[0].policy.memory_bytes, bytes) << text;
  }
}

TEST(AppSpecTest, DependenciesFollowInputsAfterOrTheListOrder) {
  absl::StatusOr<AppSpec> spec = ParseAppSpec(kDagSpec, "slipway.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  const PipelineSpec& train = spec->pipelines[0];
  auto deps = [&](std::string_view name) {
    return Names(StepDependencies(train, *train.FindStep(name)));
  };
  EXPECT_THAT(deps("ingest"), ElementsAre());
  EXPECT_THAT(deps("check"), ElementsAre("ingest"));
  EXPECT_THAT(deps("split"), ElementsAre("check"));
  EXPECT_THAT(deps("transform"), ElementsAre("split"));
  // In file order, whatever the order of 'inputs'.
  EXPECT_THAT(deps("prep"), ElementsAre("check", "transform"));
  EXPECT_THAT(deps("notebook"), ElementsAre("prep"));
  EXPECT_THAT(deps("fit"), ElementsAre("transform", "prep"));
  EXPECT_THAT(deps("evaluate"), ElementsAre("split", "fit"));
  EXPECT_THAT(deps("register"), ElementsAre("notebook", "evaluate"));

  const PipelineSpec& nightly = spec->pipelines[1];
  EXPECT_THAT(Names(StepDependencies(nightly, nightly.steps[1])),
              ElementsAre("score"));
  EXPECT_THAT(Names(StepDependencies(nightly, nightly.steps[2])),
              ElementsAre("load_events"));
}

TEST(AppSpecTest, StepOutputsAndInputs) {
  EXPECT_THAT(BuiltinOutputs(StepKind::kIngest), ElementsAre("data"));
  EXPECT_THAT(BuiltinOutputs(StepKind::kValidate), ElementsAre("data"));
  EXPECT_THAT(BuiltinOutputs(StepKind::kSplit), ElementsAre("train", "test"));
  EXPECT_THAT(BuiltinOutputs(StepKind::kTransform),
              ElementsAre("train", "test", "transform"));
  EXPECT_THAT(BuiltinOutputs(StepKind::kTrain), ElementsAre("model"));
  EXPECT_THAT(BuiltinOutputs(StepKind::kEvaluate), ElementsAre("metrics"));
  for (StepKind kind : {StepKind::kRegister, StepKind::kScore, StepKind::kSink,
                        StepKind::kCommand, StepKind::kNotebook}) {
    EXPECT_THAT(BuiltinOutputs(kind), ElementsAre()) << StepKindName(kind);
  }

  absl::StatusOr<AppSpec> spec = ParseAppSpec(kDagSpec, "slipway.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  const PipelineSpec& train = spec->pipelines[0];
  EXPECT_THAT(StepOutputNames(*train.FindStep("prep")),
              ElementsAre("features", "report", "model", "metrics"));
  EXPECT_THAT(StepOutputNames(*train.FindStep("fit")),
              ElementsAre("model", "metrics"));
  EXPECT_THAT(StepOutputNames(*train.FindStep("split")),
              ElementsAre("train", "test"));

  StepInput whole = ResolveStepInput("split");
  EXPECT_EQ(whole.step, "split");
  EXPECT_EQ(whole.output, "");
  StepInput one = ResolveStepInput("transform.train");
  EXPECT_EQ(one.step, "transform");
  EXPECT_EQ(one.output, "train");
}

// A train pipeline whose model comes from a notebook needs no schema
// target: the notebook knows what it predicts.
TEST(AppSpecTest, NotebookTrainPipelineNeedsNoTarget) {
  absl::StatusOr<AppSpec> spec = ParseAppSpec(
      "app: a\ndata: {d: {path: d.csv}}\n"
      "pipelines:\n  train:\n    steps:\n"
      "      - ingest: {source: d}\n"
      "      - notebook: {path: train.ipynb}\n"
      "      - register: {alias: champion}\n",
      "slipway.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_THAT(
      Names(StepDependencies(spec->pipelines[0], spec->pipelines[0].steps[2])),
      ElementsAre("notebook"));
}

// Every shipped example is a valid spec.
TEST(AppSpecTest, ExamplesParse) {
  for (const char* example :
       {"breast-cancer", "churn-postgres", "wine-sklearn", "fashion-torch"}) {
    const std::string path = std::string(SLIPWAY_SOURCE_DIR) + "/examples/" +
                             example + "/slipway.yaml";
    absl::StatusOr<std::string> yaml = LocalFilesystem()->ReadFile(path);
    ASSERT_TRUE(yaml.ok()) << yaml.status();
    absl::StatusOr<AppSpec> spec = ParseAppSpec(*yaml, path);
    EXPECT_TRUE(spec.ok()) << spec.status();
  }
}

// Step 1's example keeps its meaning: a chain in file order.
TEST(AppSpecTest, Step1ExampleIsALinearChain) {
  absl::StatusOr<std::string> yaml = LocalFilesystem()->ReadFile(
      std::string(SLIPWAY_SOURCE_DIR) + "/examples/breast-cancer/slipway.yaml");
  ASSERT_TRUE(yaml.ok()) << yaml.status();
  absl::StatusOr<AppSpec> spec = ParseAppSpec(*yaml, "slipway.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  const PipelineSpec& train = spec->pipelines[0];
  std::vector<std::string> names;
  for (const StepSpec& step : train.steps) {
    EXPECT_TRUE(step.inputs.empty());
    EXPECT_TRUE(step.after.empty());
    EXPECT_TRUE(step.outputs.empty());
    EXPECT_EQ(step.policy.retries, 0);
    EXPECT_EQ(step.policy.timeout_ms, 0);
    std::vector<std::string> deps = Names(StepDependencies(train, step));
    if (names.empty()) {
      EXPECT_THAT(deps, ElementsAre());
    } else {
      EXPECT_THAT(deps, ElementsAre(names.back()));
    }
    names.push_back(step.name);
  }
  EXPECT_THAT(names, ElementsAre("ingest", "validate", "split", "train",
                                 "evaluate", "register"));
  EXPECT_FALSE(train.retry_interrupted);
  const DataSourceSpec& biopsies = spec->data[0];
  EXPECT_EQ(biopsies.connector, Connector::kCsv);
  EXPECT_EQ(biopsies.skip_lines, 1);
  EXPECT_FALSE(biopsies.header);
  EXPECT_EQ(biopsies.columns.size(), 31u);
  EXPECT_TRUE(spec->endpoint.fields.empty());
}

struct BadSpec {
  std::string name;
  std::string yaml;
  std::string location;  // "LINE:COL"
  std::vector<std::string> words;
};

void PrintTo(const BadSpec& bad, std::ostream* os) { *os << bad.name; }

class BadSpecTest : public ::testing::TestWithParam<BadSpec> {};

TEST_P(BadSpecTest, FailsAtTheOffendingNode) {
  const BadSpec& bad = GetParam();
  absl::StatusOr<AppSpec> spec = ParseAppSpec(bad.yaml, "slipway.yaml");
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  std::string message(spec.status().message());
  EXPECT_THAT(message, StartsWith("slipway.yaml:" + bad.location + ": "));
  for (const std::string& word : bad.words) {
    EXPECT_THAT(message, HasSubstr(word));
  }
}

// A valid prefix for specs whose fault lies in a pipeline.
const char kHead[] =
    "app: churn\n"                        // 1
    "data: {train: {path: train.csv}}\n"  // 2
    "schema: {target: churned}\n"         // 3
    "pipelines:\n"                        // 4
    "  train:\n"                          // 5
    "    steps:\n"                        // 6
    "      - ingest: {source: train}\n";  // 7

std::string Head() { return kHead; }

INSTANTIATE_TEST_SUITE_P(
    AppSpecTest, BadSpecTest,
    ::testing::Values(
        BadSpec{"MalformedYaml",
                "app: churn\ndata: [a, b\nschema: x\n",
                "3:7",
                {"malformed YAML", "end of sequence flow not found"}},
        BadSpec{"EmptyFile", "", "1:1", {"empty", "app: <name>"}},
        BadSpec{"RootIsAList",
                "- app: churn\n",
                "1:1",
                {"must be a map of app settings", "got a list"}},
        BadSpec{"SecondDocument",
                "app: a\n---\napp: b\n",
                "3:1",
                {"second YAML document"}},
        BadSpec{"UnknownTopLevelKey",
                "app: churn\nmodels: {}\n",
                "2:1",
                {"unknown key 'models' at the top level",
                 "expected one of: app, description, use_case, data, schema, "
                 "pipelines, endpoint, monitor, policy, notify"}},
        BadSpec{"DuplicateKey",
                "app: churn\ndescription: a\ndescription: b\n",
                "3:1",
                {"duplicate key 'description'", "first at line 2"}},
        BadSpec{"MissingApp",
                "description: x\n",
                "1:1",
                {"missing required key 'app' at the top level"}},
        BadSpec{"InvalidAppName",
                "app: my app\n",
                "1:6",
                {"'app' must be a name", "got 'my app'"}},
        BadSpec{"UnknownTrainKey",
                Head() + "      - train:\n"
                         "          rounds: 10\n"
                         "          epochs: 5\n",
                "10:11",
                {"unknown key 'epochs' in train step; expected one of: rounds, "
                 "max_depth, eta, "}},
        BadSpec{
            "TestFractionNotANumber",
            Head() + "      - split: {test_fraction: abc}\n",
            "8:32",
            {"'test_fraction' must be a number between 0 and 1, got 'abc'"}},
        BadSpec{"TestFractionOutOfRange",
                Head() + "      - split: {test_fraction: 1}\n",
                "8:32",
                {"'test_fraction' must be a number between 0 and 1, got '1'"}},
        BadSpec{"RoundsNotAWholeNumber",
                Head() + "      - train: {rounds: 2.5}\n",
                "8:25",
                {"'rounds' must be a whole number", "got '2.5'"}},
        BadSpec{"BoolExpected",
                Head() + "      - split: {stratify: maybe}\n",
                "8:27",
                {"'stratify' must be true or false, got 'maybe'"}},
        BadSpec{"StringGotList",
                "app: churn\ndescription: [a]\n",
                "2:14",
                {"'description' must be a string, got a list"}},
        BadSpec{"ListGotScalar",
                Head() + "      - split: {}\n      - train: {}\n"
                         "      - evaluate: {metrics: auc}\n",
                "10:29",
                {"'metrics' must be a list, got 'auc'"}},
        BadSpec{"MapGotScalar",
                "app: churn\nendpoint: champion\n",
                "2:11",
                {"'endpoint' must be a map, got 'champion'"}},
        BadSpec{"EmptyRequiredValue",
                "app: churn\ndata:\n  train:\n    path:\n",
                "4:5",
                {"'path' must be a non-empty string, got nothing"}},
        BadSpec{"MissingDataPath",
                "app: churn\ndata:\n  train:\n    header: true\n",
                "4:5",
                {"missing required key 'path' in data source 'train'"}},
        BadSpec{"UnknownConnector",
                "app: churn\ndata: {train: {connector: mysql, path: x}}\n",
                "2:27",
                {"'connector' must be one of: csv, jsonl, sqlite, postgres, "
                 "got 'mysql'"}},
        BadSpec{
            "ColumnsNeededWithoutHeader",
            "app: churn\ndata:\n  train:\n    path: a.csv\n    header: false\n",
            "4:5",
            {"missing required key 'columns'", "'header' is false"}},
        BadSpec{
            "ColumnsRefusedWithHeader",
            "app: churn\ndata:\n  train:\n    path: a.csv\n    columns: [a]\n",
            "5:5",
            {"'columns' applies only when 'header' is false"}},
        BadSpec{"BadDelimiter",
                "app: churn\ndata: {train: {path: a.csv, delimiter: ';;'}}\n",
                "2:40",
                {"'delimiter' must be a single character", "got ';;'"}},
        BadSpec{"UnknownFeatureType",
                "app: churn\nschema:\n  target: y\n  features: {age: float64, "
                "plan: text}\n",
                "4:34",
                {"'plan' in 'features' must be a data type (float64, int64, "
                 "bool, string), got 'text'"}},
        BadSpec{
            "UnknownColumnType",
            "app: churn\ndata: {train: {path: a.csv, types: {a: decimal}}}\n",
            "2:40",
            {"'a' in 'types' must be a data type", "got 'decimal'"}},
        BadSpec{"TargetAsFeature",
                "app: churn\nschema:\n  target: y\n  features: {y: float64}\n",
                "4:14",
                {"feature 'y' is the schema's target"}},
        BadSpec{"UnknownTask",
                "app: churn\nschema: {target: y, task: ranking}\n",
                "2:27",
                {"'task' must be one of: binary_classification, "
                 "multiclass_classification, regression, got 'ranking'"}},
        BadSpec{"TargetMissingForTrainPipeline",
                "app: churn\ndata: {train: {path: t.csv}}\nschema:\n  id: cid\n"
                "pipelines:\n  train:\n    steps: [{ingest: {source: train}}, "
                "{train: {}}]\n",
                "4:3",
                {"missing required key 'target' in schema",
                 "train pipeline 'train'"}},
        BadSpec{"SchemaMissingForTrainPipeline",
                "app: churn\ndata: {train: {path: t.csv}}\n"
                "pipelines:\n  train:\n    steps: [{ingest: {source: train}}, "
                "{train: {}}]\n",
                "1:1",
                {"missing required key 'schema' at the top level"}},
        BadSpec{"UnknownStepKind",
                Head() + "      - trian: {}\n",
                "8:9",
                {"unknown step kind 'trian'",
                 "expected one of: ingest, validate, split, train, evaluate, "
                 "register"}},
        BadSpec{"StepParamsNotIndented",
                Head() + "      - split:\n        test_fraction: 0.3\n",
                "9:9",
                {"unknown key 'test_fraction' in split step",
                 "beside its kind a step takes: name, inputs, outputs, after",
                 "indent the step's parameters under 'split:'"}},
        BadSpec{"StepParamsNotAMap",
                Head() + "      - split: [0.2]\n",
                "8:16",
                {"'split' must be a map of parameters", "got a list"}},
        BadSpec{
            "IngestUnknownSource",
            "app: churn\ndata: {train: {path: t.csv}}\nschema: {target: y}\n"
            "pipelines:\n  train:\n    steps:\n"
            "      - ingest: {source: training}\n      - train: {}\n",
            "7:26",
            {"ingest step reads data source 'training'",
             "defined sources: train"}},
        BadSpec{"IngestSourceMissing",
                Head() + "      - ingest: {name: again}\n",
                "8:17",
                {"missing required key 'source' in ingest step"}},
        BadSpec{
            "ValidateWithoutIngest",
            "app: churn\ndata: {train: {path: t.csv}}\nschema: {target: y}\n"
            "pipelines:\n  train:\n    steps:\n      - validate: {}\n"
            "      - ingest: {source: train}\n      - train: {}\n",
            "7:9",
            {"validate step 'validate' reads a table",
             "no step before it in pipeline 'train' produces one"}},
        BadSpec{"TrainWithoutIngest",
                "app: churn\nschema: {target: y}\npipelines:\n  train:\n"
                "    steps:\n      - train: {}\n",
                "6:9",
                {"train step 'train' reads a table"}},
        BadSpec{"EvaluateWithoutTrain",
                Head() + "      - split: {}\n      - evaluate: {}\n"
                         "      - train: {}\n",
                "9:9",
                {"evaluate step 'evaluate' needs a trained model",
                 "no step before it in pipeline 'train' produces one"}},
        BadSpec{"EvaluateWithoutSplit",
                Head() + "      - train: {}\n      - evaluate: {}\n",
                "9:9",
                {"evaluate step 'evaluate' needs a test set", "no split step"}},
        BadSpec{"SplitAfterTrain",
                Head() + "      - train: {}\n      - split: {}\n",
                "9:9",
                {"split step 'split' comes after a train step",
                 "trains on the test rows"}},
        BadSpec{"RegisterWithoutTrain",
                Head() + "      - register: {}\n      - train: {}\n",
                "8:9",
                {"register step 'register' needs a trained model",
                 "a command or notebook step that writes model/"}},
        BadSpec{"CheckPipelineWithRegister",
                "app: churn\ndata: {train: {path: t.csv}}\n"
                "pipelines:\n  check:\n    kind: check\n    steps:\n"
                "      - ingest: {source: train}\n      - register: {}\n",
                "8:9",
                {"check pipeline 'check' cannot have a register step"}},
        BadSpec{"TrainPipelineWithoutTrainStep",
                Head() + "      - validate: {}\n",
                "6:5",
                {"train pipeline 'train' has no step that produces a model",
                 "'- train: {engine: xgboost}'"}},
        BadSpec{"NoSteps",
                "app: churn\npipelines:\n  nightly:\n    kind: check\n    "
                "steps: []\n",
                "5:5",
                {"pipeline 'nightly' has no steps"}},
        BadSpec{"DuplicateStepName",
                Head() +
                    "      - validate: {}\n      - validate: {min_rows: 5}\n"
                    "      - train: {}\n",
                "9:9",
                {"duplicate step name 'validate' in pipeline 'train'",
                 "first at line 8"}},
        BadSpec{"DuplicateRenamedStepName",
                Head() + "      - validate: {name: load}\n"
                         "      - ingest: {source: train, name: load}\n"
                         "      - train: {}\n",
                "9:39",
                {"duplicate step name 'load'"}},
        BadSpec{
            "PipelineKindRequired",
            "app: churn\npipelines:\n  nightly:\n    steps: [{register: {}}]\n",
            "4:5",
            {"missing required key 'kind' in pipeline 'nightly'",
             "train, score or check"}},
        BadSpec{"ObjectiveUnknown",
                Head() + "      - train: {objective: \"binary:hinge\"}\n",
                "8:28",
                {"'objective' must be one of:", "binary:logistic",
                 "got 'binary:hinge'"}},
        BadSpec{"ObjectiveDoesNotFitTask",
                "app: churn\ndata: {train: {path: t.csv}}\n"
                "schema: {target: y, task: regression}\npipelines:\n  train:\n"
                "    steps:\n      - ingest: {source: train}\n"
                "      - train: {objective: \"binary:logistic\"}\n",
                "8:28",
                {"objective 'binary:logistic' is for binary_classification",
                 "schema.task is regression"}},
        BadSpec{"MetricDoesNotFitTask",
                Head() + "      - split: {}\n"
                         "      - train: {objective: \"reg:squarederror\"}\n"
                         "      - evaluate: {metrics: [rmse, auc]}\n",
                "10:36",
                {"metric 'auc' does not apply to regression"}},
        BadSpec{"UnknownMetric",
                Head() + "      - split: {}\n      - train: {}\n"
                         "      - evaluate: {metrics: [auc, f1]}\n",
                "10:35",
                {"each entry of 'metrics' must be one of: auc, logloss, "
                 "accuracy, rmse, mae, r2, got 'f1'"}},
        BadSpec{"RangeBackwards",
                Head() + "      - validate: {ranges: {age: [120, 0]}}\n",
                "8:34",
                {"'age' in 'ranges' must be a list [min, max]",
                 "got ['120', '0']"}},
        BadSpec{"CronTooFewFields",
                "app: churn\npipelines:\n  n:\n    kind: check\n"
                "    trigger: {schedule: \"0 3 * *\"}\n"
                "    steps: [{register: {}}]\n",
                "5:25",
                {"'schedule' must be a cron expression of 5 fields",
                 "got '0 3 * *'", "it has 4 fields"}},
        BadSpec{"CronOutOfRange",
                "app: churn\npipelines:\n  train:\n"
                "    trigger:\n      schedule: \"0 25 * * *\"\n"
                "    steps: []\n",
                "5:17",
                {"hour 25 is out of range 0-23"}},
        BadSpec{"CronBadStep",
                "app: churn\npipelines:\n  train:\n"
                "    trigger: {schedule: \"*/0 * * * *\"}\n    steps: []\n",
                "4:25",
                {"minute field '*/0' needs a step"}},
        BadSpec{"CronRangeWraps",
                "app: churn\npipelines:\n  train:\n"
                "    trigger: {schedule: \"0 22-1 * * *\"}\n    steps: []\n",
                "4:25",
                {"hour range '22-1' runs backwards", "22-23,0-1"}},
        BadSpec{"CronDayNeverOccurs",
                "app: churn\npipelines:\n  train:\n"
                "    trigger: {schedule: \"0 0 30 2 *\"}\n    steps: []\n",
                "4:25",
                {"day-of-month '30' never occurs in month '2'"}},
        BadSpec{
            "ConcurrencyZero",
            "app: churn\npipelines:\n  train:\n"
            "    concurrency: 0\n    steps: []\n",
            "4:18",
            {"'concurrency' must be a whole number from 1 to 100", "got '0'"}},
        BadSpec{"CronBadSyntax",
                "app: churn\npipelines:\n  train:\n"
                "    trigger: {schedule: \"0 3 * jan *\"}\n    steps: []\n",
                "4:25",
                {"month field has 'jan' where a number is expected"}},
        BadSpec{"UnknownTriggerEvent",
                "app: churn\npipelines:\n  train:\n"
                "    trigger: {on: [drift, retrain]}\n    steps: []\n",
                "4:27",
                {"each entry of 'on' must be one of: drift, kpi_decay, "
                 "new_data, got 'retrain'"}},
        BadSpec{"WindowNotADuration",
                "app: churn\nmonitor: {window: 5 minutes}\n",
                "2:19",
                {"'window' must be a duration such as 30s, 5m or 1h",
                 "got '5 minutes'"}},
        BadSpec{"WindowZero",
                "app: churn\nmonitor: {window: 0s}\n",
                "2:19",
                {"at least 1s", "got '0s'"}},
        BadSpec{"PromoteMetricNotComputed",
                "app: churn\ndata: {d: {path: x.csv}}\nschema: {target: y}\n"
                "pipelines:\n  train:\n    steps:\n"
                "      - ingest: {source: d}\n"
                "      - split: {test_fraction: 0.2}\n"
                "      - train: {engine: xgboost}\n"
                "      - evaluate: {metrics: [auc, logloss]}\n"
                "policy:\n  promote: {metric: accuracy}\n",
                "12:21",
                {"policy.promote.metric 'accuracy' is computed by no evaluate "
                 "step of a train pipeline (they compute auc, logloss)"}},
        BadSpec{"PromoteConfidenceOne",
                "app: churn\npolicy:\n  promote: {metric: auc, confidence: 1}\n",
                "3:38",
                {"'confidence' must be a number > 0 and < 1"}},
        BadSpec{"LogInputsAboveOne",
                "app: churn\nmonitor: {log_inputs: 1.5}\n",
                "2:23",
                {"'log_inputs' must be a fraction of requests from 0 to 1",
                 "got '1.5'"}},
        BadSpec{"RetentionNotADuration",
                "app: churn\nmonitor: {retention: forever}\n",
                "2:22",
                {"'retention' must be a duration such as 12h, 30d or 90d"}},
        BadSpec{"DriftAlertBelowWarn",
                "app: churn\nmonitor: {drift: {warn: 0.3, alert: 0.2}}\n",
                "2:37",
                {"'alert' (0.2) must be at least 'warn' (0.3)"}},
        BadSpec{"RuleWithoutThreshold",
                "app: churn\nmonitor:\n  rules:\n    - {name: r, metric: "
                "kpi.auc}\n",
                "4:7",
                {"missing required key 'below' in alert rule 'r'",
                 "'below' or 'above'"}},
        BadSpec{"RuleWithBothThresholds",
                "app: churn\nmonitor:\n  rules:\n"
                "    - {name: r, metric: kpi.auc, below: 0.8, above: 0.9}\n",
                "4:46",
                {"has both 'below' and 'above'"}},
        BadSpec{"UnknownRuleKey",
                "app: churn\nmonitor:\n  rules:\n"
                "    - {name: r, metric: m, below: 1, window: 3}\n",
                "4:38",
                {"unknown key 'window' in alert rule",
                 "expected one of: name, metric, below, above, for, fire"}},
        BadSpec{"DriftMethodUnknown",
                "app: churn\nmonitor: {drift: {method: magic}}\n",
                "2:27",
                {"'method' must be one of: auto, psi, ks, wasserstein, chi2, "
                 "js, got 'magic'"}},
        BadSpec{"DriftPValueOutOfRange",
                "app: churn\nmonitor:\n  drift:\n    features:\n"
                "      age: {method: ks, threshold: 2}\n",
                "5:36",
                {"'threshold' must be a p-value > 0 and < 1, got '2'"}},
        BadSpec{"DriftFeatureNotAMap",
                "app: churn\nmonitor: {drift: {features: {age: ks}}}\n",
                "2:35",
                {"must be a map such as {method: wasserstein, threshold: "
                 "0.2}"}},
        BadSpec{"MinGainWithoutMetric",
                "app: churn\npolicy:\n  promote: {min_gain: 0.1}\n",
                "3:23",
                {"min_gain in policy.promote needs a metric"}},
        BadSpec{"ApplyApprovalUnknown",
                "app: churn\npolicy: {apply: {approval: maybe}}\n",
                "2:28",
                {"'approval' must be one of: required, none, got 'maybe'"}},
        BadSpec{"ExpireAfterNotADuration",
                "app: churn\npolicy: {approvals: {expire_after: soon}}\n",
                "2:36",
                {"'expire_after' must be a duration such as 30m, 72h or 7d"}},
        BadSpec{"SelfApprovalUnknown",
                "app: churn\npolicy: {approvals: {self_approval: yes}}\n",
                "2:37",
                {"'self_approval' must be one of: forbidden, allowed"}},
        BadSpec{
            "ApprovalUnknown",
            "app: churn\npolicy:\n  promote: {metric: auc, approval: yes}\n",
            "3:36",
            {"'approval' must be one of: required, none, got 'yes'"}},
        BadSpec{"CanaryPercentOutOfRange",
                "app: churn\nendpoint:\n  canary: {model: challenger, percent: "
                "150}\n",
                "3:40",
                {"'percent' must be a whole percentage of requests from 1 to "
                 "99, got '150'"}},
        BadSpec{"CanaryNamesTheServedAlias",
                "app: churn\nendpoint:\n  canary: {model: champion}\n",
                "3:19",
                {"endpoint.canary names 'champion', the alias the endpoint "
                 "serves"}},
        BadSpec{"ShadowNamesTheServedAlias",
                "app: churn\nendpoint:\n  model: live\n  shadow: {model: live}\n",
                "4:19",
                {"endpoint.shadow names 'live', the alias the endpoint serves"}},
        BadSpec{"ShadowNamesTheCanary",
                "app: churn\nendpoint:\n  canary: {model: challenger}\n"
                "  shadow: {model: challenger}\n",
                "4:19",
                {"endpoint.shadow names 'challenger', which endpoint.canary "
                 "already sends live traffic to"}},
        BadSpec{"RollbackWithoutAMetric",
                "app: churn\npolicy: {rollback: {kpi_drop: 0.05}}\n",
                "2:20",
                {"policy.rollback needs a KPI to compare"}},
        BadSpec{"IngestLastRowsZero",
                "app: churn\ndata: {d: {path: x.csv}}\npipelines:\n  p:\n"
                "    kind: check\n    steps:\n"
                "      - ingest: {source: d, last_rows: 0}\n",
                "7:40",
                {"'last_rows' must be a whole number of rows >= 1, got '0'"}},
        BadSpec{"KpiDropOutOfRange",
                "app: churn\npolicy: {rollback: {kpi_drop: 5}}\n",
                "2:31",
                {"'kpi_drop' must be a number > 0 and <= 1, got '5'"}},
        BadSpec{
            "WebhookNotAUrl",
            "app: churn\nnotify:\n  - webhook: ftp://x\n",
            "3:14",
            {"'webhook' must be an http:// or https:// URL", "got 'ftp://x'"}},
        BadSpec{"UseCaseIntegration",
                "app: churn\nuse_case: {integration: [rest, stream]}\n",
                "2:32",
                {"each entry of 'integration' must be one of: rest, batch, got "
                 "'stream'"}},
        BadSpec{"QueueSmallerThanBatch",
                "app: churn\nendpoint:\n  batching: {max_batch: 64, max_queue: "
                "8}\n",
                "3:40",
                {"'max_queue' (8) must be at least 'max_batch' (64)"}},
        BadSpec{"NoPythonWorkers",
                "app: churn\nendpoint:\n  runtime: {workers: 0}\n",
                "3:22",
                {"'workers' must be a whole number from 1 to 256, got '0'"}},
        BadSpec{"UnknownRuntimeKey",
                "app: churn\nendpoint:\n  runtime: {processes: 2}\n",
                "3:13",
                {"unknown key 'processes' in endpoint.runtime",
                 "workers, recycle_after, timeout, threads"}},
        BadSpec{"UnknownDataKey",
                "app: churn\ndata: {train: {path: a.csv, sheet: 2}}\n",
                "2:29",
                {"unknown key 'sheet' in data source 'train'; a csv source "
                 "takes: connector, path, header, skip_lines, delimiter, "
                 "columns, types, missing_values, chunk_rows"}},
        BadSpec{"KeyOfAnotherConnector",
                "app: churn\ndata: {train: {path: a.csv, query: x}}\n",
                "2:29",
                {"key 'query' does not apply to connector csv in data source "
                 "'train'",
                 "a csv source takes: connector, path,"}},
        BadSpec{"PathOnPostgres",
                "app: churn\ndata:\n  db:\n    connector: postgres\n"
                "    url: postgresql://h/db\n    table: t\n    path: x\n",
                "7:5",
                {"key 'path' does not apply to connector postgres",
                 "a postgres source takes: connector, url, password, query, "
                 "table, schema, chunk_rows, batch_rows"}},
        BadSpec{"HeaderOnJsonl",
                "app: churn\ndata: {e: {connector: jsonl, path: e.jsonl, "
                "header: false}}\n",
                "2:45",
                {"key 'header' does not apply to connector jsonl",
                 "a jsonl source takes: connector, path, types, chunk_rows"}},
        BadSpec{"PostgresWithoutUrl",
                "app: churn\ndata:\n  db: {connector: postgres, table: t}\n",
                "3:7",
                {"missing required key 'url' in data source 'db'"}},
        BadSpec{"PostgresUrlNotAUrl",
                "app: churn\ndata:\n  db: {connector: postgres, url: "
                "\"mysql://h/db\", table: t}\n",
                "3:34",
                {"'url' must be a PostgreSQL URL such as postgresql://",
                 "got 'mysql://h/db'"}},
        BadSpec{"PasswordBadEnvName",
                "app: churn\ndata:\n  db: {connector: postgres, url: "
                "env:DB_URL, password: \"env:1PW\", table: t}\n",
                "3:56",
                {"'password' must be a literal value or env:NAME",
                 "got 'env:1PW'"}},
        BadSpec{"SqliteWithoutQueryOrTable",
                "app: churn\ndata:\n  db: {connector: sqlite, path: a.db}\n",
                "3:7",
                {"missing required key 'query' in data source 'db'",
                 "needs 'query' (what a read returns) or 'table'"}},
        BadSpec{"TableNotAnIdentifier",
                "app: churn\ndata:\n  db: {connector: sqlite, path: a.db, "
                "table: \"my-table\"}\n",
                "3:46",
                {"'table' must be a name of 1 to 63 letters, digits and '_'",
                 "got 'my-table'"}},
        BadSpec{"ChunkRowsZero",
                "app: churn\ndata: {train: {path: a.csv, chunk_rows: 0}}\n",
                "2:41",
                {"'chunk_rows' must be a whole number from 1 to 10000000"}},
        BadSpec{"BatchRowsTooLarge",
                "app: churn\ndata:\n  db: {connector: sqlite, path: a.db, "
                "table: t, batch_rows: 2000000}\n",
                "3:61",
                {"'batch_rows' must be a whole number from 1 to 1000000"}},
        BadSpec{"StepNotAMap",
                Head() + "      - validate\n",
                "8:9",
                {"each step must be a map whose one step-kind key holds the "
                 "step's parameters",
                 "got 'validate'"}},
        BadSpec{"StepWithTwoKinds",
                Head() + "      - validate: {}\n        train: {}\n",
                "9:9",
                {"a step has one kind, but this one has 'validate' and "
                 "'train'"}},
        BadSpec{"StepWithoutKind",
                Head() + "      - name: x\n        retries: 2\n",
                "8:9",
                {"the step has no kind; add one key of: ingest, validate"}},
        BadSpec{"NameTwice",
                Head() + "      - validate: {name: a}\n        name: b\n",
                "8:20",
                {"the step's name is given twice"}},
        BadSpec{"OutputsOnBuiltinStep",
                Head() + "      - split: {}\n        outputs: [train]\n",
                "9:9",
                {"'outputs' applies only to command and notebook steps",
                 "the outputs of split steps are fixed: train, test"}},
        BadSpec{"OutputsOnRegister",
                Head() + "      - train: {}\n      - register: {}\n"
                         "        outputs: [x]\n",
                "10:9",
                {"the outputs of register steps are fixed: they have none"}},
        BadSpec{
            "OutputNameWithDot",
            Head() + "      - command: {run: x}\n"
                     "        outputs: [a.csv]\n",
            "9:19",
            {"each entry of 'outputs' must be an output name", "got 'a.csv'"}},
        BadSpec{"OutputTwice",
                Head() + "      - command: {run: x}\n"
                         "        outputs: [a, a]\n",
                "9:22",
                {"'a' appears twice in 'outputs'"}},
        BadSpec{"RetriesTooMany",
                Head() + "      - train: {}\n        retries: 101\n",
                "9:18",
                {"'retries' must be a whole number from 0 to 100"}},
        BadSpec{"RetryBackoffWithoutUnit",
                Head() + "      - train: {}\n        retry_backoff: 5\n",
                "9:24",
                {"'retry_backoff' must be a duration such as 500ms, 5s",
                 "got '5'"}},
        BadSpec{"TimeoutInWords",
                Head() + "      - train: {}\n        timeout: 10 minutes\n",
                "9:18",
                {"'timeout' must be a duration of at least 1ms",
                 "got '10 minutes'"}},
        BadSpec{"TimeoutZero",
                Head() + "      - train: {}\n        timeout: 0s\n",
                "9:18",
                {"leave 'timeout' out for no limit", "got '0s'"}},
        BadSpec{"TimeoutFraction",
                Head() + "      - train: {}\n        timeout: 1.5h\n",
                "9:18",
                {"'timeout' must be a duration", "got '1.5h'"}},
        BadSpec{"MemoryOnBuiltinStep",
                Head() + "      - train: {}\n        memory: 1GiB\n",
                "9:9",
                {"'memory' applies only to command and notebook steps",
                 "train steps run inside the server"}},
        BadSpec{"MemoryUnknownUnit",
                Head() + "      - command: {run: x}\n        memory: 2G\n",
                "9:17",
                {"'memory' must be a size of at least 1MiB", "got '2G'"}},
        BadSpec{"MemoryTooSmall",
                Head() + "      - command: {run: x}\n        memory: 512KiB\n",
                "9:17",
                {"'memory' must be a size of at least 1MiB", "got '512KiB'"}},
        BadSpec{"CacheNotABool",
                Head() + "      - train: {}\n        cache: no\n",
                "9:16",
                {"'cache' must be true or false, got 'no'"}},
        BadSpec{"CacheOnIngest",
                Head() + "      - train: {}\n      - ingest: {source: train}\n"
                         "        name: again\n        cache: true\n",
                "11:16",
                {"ingest steps never reuse an earlier run's outputs"}},
        BadSpec{"InputUnknownStep",
                Head() + "      - train: {}\n        inputs: [spilt]\n",
                "9:18",
                {"step 'train' lists 'spilt' in 'inputs', but in pipeline "
                 "'train' there is no step 'spilt'; its steps: ingest, train"}},
        BadSpec{
            "InputUnknownStepOfOutput",
            Head() + "      - train: {}\n        inputs: [spilt.train]\n",
            "9:18",
            {"lists 'spilt.train' in 'inputs'", "there is no step 'spilt'"}},
        BadSpec{"InputUnknownOutput",
                Head() + "      - split: {}\n      - train: {}\n"
                         "        inputs: [split.data]\n",
                "10:18",
                {"step 'train' reads 'split.data', but split step 'split' has "
                 "no output 'data'; its outputs: train, test"}},
        BadSpec{"InputUndeclaredCommandOutput",
                Head() + "      - command: {run: x}\n        outputs: [a]\n"
                         "      - train: {}\n        inputs: [command.b]\n",
                "11:18",
                {"command step 'command' has no output 'b'; its outputs: a, "
                 "model, metrics"}},
        BadSpec{"InputFromRegister",
                Head() + "      - train: {}\n      - register: {}\n"
                         "      - command: {run: x}\n"
                         "        inputs: [register]\n",
                "11:18",
                {"register step 'register' produces no outputs",
                 "list it under 'after'"}},
        BadSpec{"InputOfItself",
                Head() + "      - train: {}\n        inputs: [train.model]\n",
                "9:18",
                {"step 'train' cannot read its own outputs"}},
        BadSpec{"InputOfDottedStep",
                Head() + "      - validate: {}\n        name: v.2\n"
                         "      - train: {}\n        inputs: [v.2]\n",
                "11:18",
                {"step 'v.2' cannot be read through 'inputs'",
                 "wait for it with 'after'"}},
        BadSpec{"AfterUnknownStep",
                Head() + "      - train: {}\n        after: [validate]\n",
                "9:17",
                {"step 'train' lists 'validate' in 'after', but in pipeline "
                 "'train' there is no step 'validate'"}},
        BadSpec{"AfterItself",
                Head() + "      - train: {}\n        after: [train]\n",
                "9:17",
                {"step 'train' cannot run after itself"}},
        BadSpec{"TwoStepCycle",
                Head() + "      - validate: {}\n        inputs: [train]\n"
                         "      - train: {}\n        inputs: [validate]\n",
                "9:18",
                {"the steps of pipeline 'train' form a cycle: validate -> "
                 "train -> validate",
                 "remove 'train' from the inputs or after of step 'validate'"}},
        BadSpec{"CycleThroughListOrder",
                Head() + "      - validate: {}\n        after: [split]\n"
                         "      - train: {}\n      - split: {}\n",
                "9:17",
                {"form a cycle: validate -> train -> split -> validate"}},
        BadSpec{"SinkWithoutTable",
                "app: churn\ndata: {out: {path: o.csv}}\npipelines:\n"
                "  s:\n    kind: score\n    steps:\n      - sink: {to: out}\n",
                "7:9",
                {"sink step 'sink' reads a table, but no step before it in "
                 "pipeline 's' produces one"}},
        BadSpec{"SinkUnknownEntry",
                "app: churn\ndata: {out: {path: o.csv}}\npipelines:\n"
                "  s:\n    kind: score\n    steps:\n      - sink: {to: outs}\n",
                "7:20",
                {"sink step writes to data source 'outs', which 'data' does "
                 "not define; defined sources: out"}},
        BadSpec{"SinkToDatabaseWithoutTable",
                "app: churn\ndata:\n  d: {path: d.csv}\n"
                "  db: {connector: sqlite, path: a.db, query: \"SELECT 1\"}\n"
                "pipelines:\n  s:\n    kind: score\n    steps:\n"
                "      - ingest: {source: d}\n      - sink: {to: db}\n",
                "10:20",
                {"sink step writes to data source 'db', which has no 'table'",
                 "add 'table: <name>' to it"}},
        BadSpec{"ScoreUnknownSource",
                "app: churn\ndata: {out: {path: o.csv}}\npipelines:\n"
                "  s:\n    kind: score\n    steps:\n"
                "      - score: {source: in, sink: out}\n",
                "7:25",
                {"score step reads data source 'in', which 'data' does not "
                 "define"}},
        BadSpec{"ScoreWithoutSink",
                "app: churn\ndata: {d: {path: d.csv}}\npipelines:\n"
                "  s:\n    kind: score\n    steps:\n"
                "      - score: {source: d}\n",
                "7:16",
                {"missing required key 'sink' in score step"}},
        BadSpec{"ScoreIntoItsSource",
                "app: churn\ndata: {d: {path: d.csv}}\npipelines:\n"
                "  s:\n    kind: score\n    steps:\n"
                "      - score: {source: d, sink: d}\n",
                "7:34",
                {"score step reads and writes data source 'd'"}},
        BadSpec{"ScoreModelNotAName",
                "app: churn\ndata: {d: {path: d.csv}, o: {path: o.csv}}\n"
                "pipelines:\n  s:\n    kind: score\n    steps:\n"
                "      - score: {source: d, sink: o, model: \"v 3\"}\n",
                "7:44",
                {"'model' (an alias or a version number) must be a name"}},
        BadSpec{"ScorePipelineWithoutScoreOrSink",
                "app: churn\ndata: {d: {path: d.csv}}\npipelines:\n"
                "  s:\n    kind: score\n    steps:\n"
                "      - ingest: {source: d}\n",
                "6:5",
                {"score pipeline 's' has no score or sink step"}},
        BadSpec{"CheckPipelineWithTrain",
                "app: churn\ndata: {d: {path: d.csv}}\nschema: {target: y}\n"
                "pipelines:\n  c:\n    kind: check\n    steps:\n"
                "      - ingest: {source: d}\n      - train: {}\n",
                "9:9",
                {"check pipeline 'c' cannot have a train step"}},
        BadSpec{
            "TransformWithoutTable",
            "app: churn\nschema: {target: y}\npipelines:\n  train:\n"
            "    steps:\n      - transform: {}\n      - command: {run: x}\n",
            "6:9",
            {"transform step 'transform' reads a table"}},
        BadSpec{"TransformBadEncode",
                Head() + "      - transform: {encode: dummies}\n",
                "8:29",
                {"'encode' must be one of: native, onehot, ordinal, got "
                 "'dummies'"}},
        BadSpec{"TransformBadImpute",
                Head() + "      - transform: {impute: {numeric: mode}}\n",
                "8:39",
                {"'numeric' must be one of: none, mean, median, constant"}},
        BadSpec{"TransformImputeUnknownKey",
                Head() + "      - transform: {impute: {text: mean}}\n",
                "8:30",
                {"unknown key 'text' in transform impute; expected one of: "
                 "numeric, categorical"}},
        BadSpec{"FillValueWithoutConstant",
                Head() + "      - transform: {impute: {numeric: mean}, "
                         "fill_value: 0}\n",
                "8:46",
                {"'fill_value' is what 'impute: {numeric: constant}' writes"}},
        BadSpec{"FillCategoryWithoutConstant",
                Head() + "      - transform: {fill_category: none}\n",
                "8:21",
                {"'fill_category' is what 'impute: {categorical: constant}'"}},
        BadSpec{"MaxCategoriesWithoutOnehot",
                Head() + "      - transform: {max_categories: 5}\n",
                "8:21",
                {"'max_categories' limits the indicator columns of 'encode: "
                 "onehot'"}},
        BadSpec{"TransformColumnIsTarget",
                Head() + "      - transform: {columns: [age, churned]}\n",
                "8:36",
                {"'columns' lists 'churned', the schema's target"}},
        BadSpec{"TransformColumnNotAFeature",
                "app: churn\ndata: {d: {path: d.csv}}\n"
                "schema: {target: y, features: {a: float64}}\n"
                "pipelines:\n  train:\n    steps:\n"
                "      - ingest: {source: d}\n"
                "      - transform: {columns: [b]}\n      - train: {}\n",
                "8:31",
                {"'columns' lists 'b', which is not a feature; "
                 "schema.features declares: a"}},
        BadSpec{"CommandWithoutRun",
                Head() + "      - command: {params: {a: 1}}\n",
                "8:18",
                {"missing required key 'run' in command step"}},
        BadSpec{"CommandRunEmptyList",
                Head() + "      - command: {run: []}\n",
                "8:24",
                {"'run' must be a command line such as \"python3 train.py\"",
                 "got a list"}},
        BadSpec{"CommandRunMap",
                Head() + "      - command: {run: {python3: x}}\n",
                "8:24",
                {"'run' must be a command line", "got a map"}},
        BadSpec{"CommandParamsNotAMap",
                Head() + "      - command: {run: x, params: [1, 2]}\n",
                "8:35",
                {"'params' must be a map such as {rounds: 50", "got a list"}},
        BadSpec{"CommandParamsInfinity",
                Head() + "      - command: {run: x, params: {limit: .inf}}\n",
                "8:43",
                {"'params' cannot hold '.inf'", "quote it"}},
        BadSpec{"CommandParamsDuplicateKey",
                Head() + "      - command:\n          run: x\n"
                         "          params: {a: 1, a: 2}\n",
                "10:26",
                {"duplicate key 'a' in 'params'"}},
        BadSpec{"CommandEnvReserved",
                Head() + "      - command: {run: x, env: {SLIPWAY_STEP: a}}\n",
                "8:33",
                {"'SLIPWAY_STEP' is set by Slipway for every step"}},
        BadSpec{"CommandEnvBadName",
                Head() + "      - command: {run: x, env: {my-var: a}}\n",
                "8:33",
                {"environment variable name 'my-var' must be letters"}},
        BadSpec{"CommandEnvBadReference",
                Head() + "      - command: {run: x, env: {A: \"env:\"}}\n",
                "8:36",
                {"'A' must be a literal value or env:NAME"}},
        BadSpec{"CommandUnknownKey",
                Head() + "      - command: {run: x, shell: bash}\n",
                "8:27",
                {"unknown key 'shell' in command step; expected one of: run, "
                 "params, env, working_dir, name"}},
        BadSpec{"NotebookWithoutPath",
                Head() + "      - notebook: {kernel: python3}\n",
                "8:19",
                {"missing required key 'path' in notebook step"}},
        BadSpec{"NotebookNotIpynb",
                Head() + "      - notebook: {path: train.py}\n",
                "8:26",
                {"'path' must be a Jupyter notebook file (.ipynb), got "
                 "'train.py'"}},
        BadSpec{"RetryInterruptedNotABool",
                "app: churn\npipelines:\n  train:\n"
                "    retry_interrupted: once\n    steps: []\n",
                "4:24",
                {"'retry_interrupted' must be true or false, got 'once'"}},
        BadSpec{"EndpointFieldTwice",
                "app: churn\nendpoint: {fields: [age, age]}\n",
                "2:26",
                {"'age' appears twice in 'fields'"}},
        BadSpec{"EndpointModelNotAName",
                "app: churn\nendpoint: {model: \"champion/v1\"}\n",
                "2:19",
                {"'model' must be a name"}}),
    [](const ::testing::TestParamInfo<BadSpec>& info) {
      return info.param.name;
    });

TEST(FormatLocationTest, FormatsOneBasedPositions) {
  EXPECT_EQ(FormatLocation("slipway.yaml", SourceLocation{7, 5}),
            "slipway.yaml:7:5");
  EXPECT_EQ(FormatLocation("slipway.yaml", SourceLocation{}), "slipway.yaml");
}

TEST(DiffSpecsTest, EqualTextsGiveNoDiff) {
  EXPECT_EQ(DiffSpecs("a\nb\n", "a\nb\n"), "");
  EXPECT_EQ(DiffSpecs("", ""), "");
}

TEST(DiffSpecsTest, ChangedLineWithThreeLinesOfContext) {
  std::string before = "1\n2\n3\n4\n5\n6\n7\n8\n9\n";
  std::string after = "1\n2\n3\n4\nfive\n6\n7\n8\n9\n";
  EXPECT_EQ(DiffSpecs(before, after),
            "@@ -2,7 +2,7 @@\n"
            " 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n");
}

TEST(DiffSpecsTest, AddedAndRemovedLines) {
  EXPECT_EQ(DiffSpecs("a\nb\nc\n", "a\nc\nd\n"),
            "@@ -1,3 +1,3 @@\n a\n-b\n c\n+d\n");
}

TEST(DiffSpecsTest, FirstRevisionIsAllAdded) {
  EXPECT_EQ(DiffSpecs("", "app: churn\ndata: {}\n"),
            "@@ -0,0 +1,2 @@\n+app: churn\n+data: {}\n");
  EXPECT_EQ(DiffSpecs("app: churn\n", ""), "@@ -1 +0,0 @@\n-app: churn\n");
}

TEST(DiffSpecsTest, DistantChangesMakeSeparateHunks) {
  std::string before, after;
  for (int i = 1; i <= 20; ++i) {
    before += std::to_string(i) + "\n";
    after += (i == 2 || i == 18 ? "x" : std::to_string(i)) + "\n";
  }
  EXPECT_EQ(DiffSpecs(before, after),
            "@@ -1,5 +1,5 @@\n 1\n-2\n+x\n 3\n 4\n 5\n"
            "@@ -15,6 +15,6 @@\n 15\n 16\n 17\n-18\n+x\n 19\n 20\n");
}

TEST(DiffSpecsTest, NearbyChangesShareAHunk) {
  std::string before, after;
  for (int i = 1; i <= 12; ++i) {
    before += std::to_string(i) + "\n";
    after += (i == 2 || i == 9 ? "x" : std::to_string(i)) + "\n";
  }
  EXPECT_EQ(DiffSpecs(before, after),
            "@@ -1,12 +1,12 @@\n 1\n-2\n+x\n 3\n 4\n 5\n 6\n 7\n 8\n-9\n+x\n"
            " 10\n 11\n 12\n");
}

TEST(DiffSpecsTest, MissingFinalNewlineIsShown) {
  EXPECT_EQ(DiffSpecs("a\nb", "a\nb\n"),
            "@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n");
}

}  // namespace
}  // namespace slipway
