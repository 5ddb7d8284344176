#include "pipeline/feature_gap.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "core/filesystem.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/temp_dir.h"

namespace slipway {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

Signature Champion() {
  return Signature(Task::kBinaryClassification,
                   {FeatureSpec{"age", DataType::kFloat64, {}},
                    FeatureSpec{"income", DataType::kFloat64, {}},
                    FeatureSpec{"plan", DataType::kString, {"basic", "pro"}}},
                   "churned", DataType::kInt64, {"0", "1"});
}

DataSourceSpec Csv(std::string name, std::string path) {
  DataSourceSpec spec;
  spec.name = std::move(name);
  spec.connector = Connector::kCsv;
  spec.path = std::move(path);
  return spec;
}

StepSpec Score(std::string source, std::string model = "champion") {
  ScoreStepSpec score;
  score.source = std::move(source);
  score.sink = "out";
  score.model = std::move(model);
  StepSpec step;
  step.name = "score";
  step.params = score;
  step.location = {12, 9};
  return step;
}

// An app with one score pipeline per step given.
AppSpec App(std::vector<DataSourceSpec> data, std::vector<StepSpec> steps) {
  AppSpec app;
  app.file_name = "slipway.yaml";
  app.app = "churn";
  app.data = std::move(data);
  app.data.push_back(Csv("out", "out.csv"));
  for (size_t i = 0; i < steps.size(); ++i) {
    PipelineSpec pipeline;
    pipeline.name = "nightly" + std::to_string(i);
    pipeline.kind = PipelineKind::kScore;
    pipeline.steps.push_back(std::move(steps[i]));
    app.pipelines.push_back(std::move(pipeline));
  }
  return app;
}

class FeatureGapTest : public ::testing::Test {
 protected:
  void Write(const std::string& name, const std::string& text) {
    ASSERT_TRUE(
        LocalFilesystem()->WriteFileAtomic(dir_.path() + "/" + name, text).ok());
  }
  absl::StatusOr<std::vector<std::string>> Check(const AppSpec& app) {
    return CheckFeatureGap(app, Champion(), dir_.path(), LocalFilesystem());
  }

  TempDir dir_;
};

TEST_F(FeatureGapTest, SourceWithEveryFeaturePasses) {
  Write("customers.csv", "id,plan,income,age,extra\n1,pro,10.5,33,x\n");
  auto warnings = Check(App({Csv("customers", "customers.csv")},
                            {Score("customers")}));
  ASSERT_TRUE(warnings.ok()) << warnings.status();
  EXPECT_THAT(*warnings, IsEmpty());
}

TEST_F(FeatureGapTest, MissingFeaturesFailNamingPipelineSourceAndFeatures) {
  Write("customers.csv", "id,income\n1,10.5\n");
  auto warnings = Check(App({Csv("customers", "customers.csv")},
                            {Score("customers")}));
  ASSERT_EQ(warnings.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(warnings.status().message(),
              HasSubstr("slipway.yaml:12:9: pipeline 'nightly0' step 'score': "
                        "data entry 'customers' (csv "));
  EXPECT_THAT(warnings.status().message(),
              HasSubstr("lacks the champion's features 'age', 'plan'"));
}

TEST_F(FeatureGapTest, ReadsOnlyTheFirstChunk) {
  // The third line does not parse; a check that read past the first chunk
  // would fail on it instead of passing.
  Write("customers.csv", "age,income,plan\n1,2,pro\n1,2,pro,extra,fields\n");
  DataSourceSpec source = Csv("customers", "customers.csv");
  source.chunk_rows = 1;
  auto warnings = Check(App({source}, {Score("customers")}));
  ASSERT_TRUE(warnings.ok()) << warnings.status();
  EXPECT_THAT(*warnings, IsEmpty());
}

TEST_F(FeatureGapTest, UnreadableSourcesAreSkippedWithAWarning) {
  DataSourceSpec db;
  db.name = "sales";
  db.connector = Connector::kPostgres;
  // Port 1 on the loopback refuses connections at once.
  db.url = "postgresql://app@127.0.0.1:1/shop";
  db.query = "SELECT * FROM customers";
  auto warnings = Check(App({Csv("later", "not-yet.csv"), db},
                            {Score("later"), Score("sales")}));
  ASSERT_TRUE(warnings.ok()) << warnings.status();
  ASSERT_THAT(*warnings, SizeIs(2));
  EXPECT_THAT((*warnings)[0], HasSubstr("pipeline 'nightly0' step 'score': "
                                        "feature gap not checked, data entry "
                                        "'later' could not be read"));
  EXPECT_THAT((*warnings)[1], HasSubstr("data entry 'sales' could not be "
                                        "read"));
}

TEST_F(FeatureGapTest, StepsPinnedToAnotherModelAreNotChecked) {
  Write("customers.csv", "id,income\n1,10.5\n");
  auto warnings = Check(App({Csv("customers", "customers.csv")},
                            {Score("customers", "3")}));
  ASSERT_TRUE(warnings.ok()) << warnings.status();
  EXPECT_THAT(*warnings, IsEmpty());
}

TEST_F(FeatureGapTest, EndpointFieldsMustCoverTheFeatures) {
  AppSpec app = App({}, {});
  app.endpoint.fields = {"age", "plan", "zip"};
  auto warnings = Check(app);
  ASSERT_EQ(warnings.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(warnings.status().message(),
              HasSubstr("endpoint.fields lacks the champion's feature "
                        "'income'"));
  app.endpoint.fields.push_back("income");
  warnings = Check(app);
  ASSERT_TRUE(warnings.ok()) << warnings.status();
  EXPECT_THAT(*warnings, ElementsAre());
}

}  // namespace
}  // namespace slipway
