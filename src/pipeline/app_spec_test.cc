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
endpoint: {model: champion, batching: {max_batch: 32, max_delay_us: 800, max_queue: 2048}}
monitor:
  window: 5m
  drift: {method: psi, warn: 0.1, alert: 0.25}
  rules:
    - {name: churn-auc-low, metric: kpi.auc, below: 0.80, for: 3, fire: kpi_decay}
    - {name: latency-high, metric: latency.p99_ms, above: 50}
policy:
  promote: {metric: auc, min_gain: 0.005, approval: required}
  rollback: {kpi_drop: 0.05}
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

  EXPECT_EQ(spec.monitor.window_seconds, 300);
  EXPECT_EQ(spec.monitor.drift.method, "psi");
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
  ASSERT_TRUE(spec.policy.rollback.has_value());
  EXPECT_DOUBLE_EQ(spec.policy.rollback->kpi_drop, 0.05);

  ASSERT_EQ(spec.notify.size(), 1u);
  EXPECT_EQ(spec.notify[0].webhook, "http://127.0.0.1:9000/hook");
  EXPECT_EQ(spec.notify[0].secret, "env:HOOK_SECRET");
  EXPECT_EQ(spec.notify[0].location.line, 51);
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
  EXPECT_EQ(spec->monitor.window_seconds, 300);
  EXPECT_EQ(spec->monitor.drift.method, "psi");
  EXPECT_DOUBLE_EQ(spec->monitor.drift.warn, 0.1);
  EXPECT_DOUBLE_EQ(spec->monitor.drift.alert, 0.25);
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
                "app: churn\ndata: {train: {connector: postgres, path: x}}\n",
                "2:27",
                {"'connector' must be one of: csv, got 'postgres'"}},
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
                "8:9",
                {"each step must be a map with one key",
                 "'split', 'test_fraction'"}},
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
             "no ingest step comes before it in pipeline 'train'"}},
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
                 "no train step comes before it"}},
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
                "app: churn\ndata: {train: {path: t.csv}}\n"
                "pipelines:\n  check:\n    kind: check\n    steps:\n"
                "      - ingest: {source: train}\n      - register: {}\n",
                "8:9",
                {"register step 'register' needs a trained model"}},
        BadSpec{"TrainPipelineWithoutTrainStep",
                Head() + "      - validate: {}\n",
                "6:5",
                {"train pipeline 'train' has no train step"}},
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
        BadSpec{"PromoteMetricMissing",
                "app: churn\npolicy:\n  promote: {approval: none}\n",
                "3:12",
                {"missing required key 'metric' in policy.promote"}},
        BadSpec{
            "ApprovalUnknown",
            "app: churn\npolicy:\n  promote: {metric: auc, approval: yes}\n",
            "3:36",
            {"'approval' must be one of: required, none, got 'yes'"}},
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
