#include "registry/model_card.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slipway {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(ModelCardTest, ShowsUseCaseDataMetricsLineageSignatureAndAliases) {
  ModelCardInput input;
  ModelVersionRecord& v = input.version;
  v.app = "churn";
  v.version = 3;
  v.format = "xgboost-json";
  v.artifact_sha256 = std::string(64, 'a');
  v.signature_json =
      R"({"task":"binary_classification","target":"churned",)"
      R"("label_type":"int64","class_labels":["0","1"],"features":[)"
      R"({"name":"age","type":"float64"},)"
      R"({"name":"plan","type":"string","categories":["basic","gold"]}]})";
  v.params_json = R"({"max_depth":6})";
  v.metrics_json = R"({"auc":0.93})";
  v.run_id = "run-7";
  v.revision = 2;
  v.code_sha256 = std::string(64, 'c');
  v.parent_version = 2;
  v.runtime_json = R"({"slipway":"0.1.0","xgboost":"1.7.4"})";
  v.created_by = "run run-7";
  v.data_sources_json =
      R"([{"name":"train","step":"ingest","fingerprint":"f00d","rows":500}])";
  input.aliases = {{"churn", "champion", 3, 0}, {"churn", "previous", 2, 0}};
  input.use_case = {{"problem", "who leaves | next month"},
                    {"owner", "growth-team"}};
  ApprovalRecord approved;
  approved.id = 4;
  approved.kind = "promote";
  approved.change_json = R"({"moves":[{"alias":"champion","version":3},)"
                         R"({"alias":"previous","version":2}]})";
  approved.state = "approved";
  approved.requested_by = "cli:olga";
  approved.request_comment = "beats v2";
  approved.requested_at = 1'700'000'000'000'000;
  approved.decided_by = "cli:ada";
  approved.decision_comment = "fairness report attached";
  approved.decided_at = 1'700'000'060'000'000;
  ApprovalRecord other = approved;
  other.id = 2;
  other.change_json = R"({"moves":[{"alias":"champion","version":2}]})";
  input.approvals = {approved, other};

  const std::string card = RenderModelCard(input);
  EXPECT_THAT(card, HasSubstr("# Model card: churn v3\n"));
  EXPECT_THAT(card, HasSubstr("| problem | who leaves \\| next month |"));
  EXPECT_THAT(card, HasSubstr("| owner | growth-team |"));
  EXPECT_THAT(card, HasSubstr("| train | ingest | f00d | 500 |"));
  EXPECT_THAT(card, HasSubstr("| auc | 0.93 |"));
  EXPECT_THAT(card, HasSubstr("| max_depth | 6 |"));
  EXPECT_THAT(card, HasSubstr("| parent version | v2 |"));
  EXPECT_THAT(card, HasSubstr("| code SHA-256 | " + std::string(64, 'c')));
  EXPECT_THAT(card, HasSubstr("| runtime: xgboost | 1.7.4 |"));
  EXPECT_THAT(card, HasSubstr("| created by | run run-7 |"));
  EXPECT_THAT(card, HasSubstr("- task: binary_classification"));
  EXPECT_THAT(card, HasSubstr("| plan | string | [\"basic\",\"gold\"] |"));
  EXPECT_THAT(card, HasSubstr("## Aliases\n\nchampion\n"));
  EXPECT_THAT(card,
              HasSubstr("| 4 | champion | approved | cli:olga at "
                        "2023-11-14T22:13:20.000Z | beats v2 | cli:ada at "
                        "2023-11-14T22:14:20.000Z | fairness report attached "
                        "|"));
  EXPECT_THAT(card, Not(HasSubstr("| 2 | champion")));
  EXPECT_THAT(card, Not(HasSubstr("previous")));
}

TEST(ModelCardTest, SaysWhatIsMissing) {
  ModelCardInput input;
  input.version.app = "churn";
  input.version.version = 1;
  input.version.created_by = "import";
  input.version.metrics_json = "{}";
  const std::string card = RenderModelCard(input);
  EXPECT_THAT(card, HasSubstr("The app spec has no `use_case` block."));
  EXPECT_THAT(card, HasSubstr("No training data is recorded (created by "
                              "import)."));
  EXPECT_THAT(card, HasSubstr("No metrics are recorded."));
  EXPECT_THAT(card, HasSubstr("| parent version | none |"));
  EXPECT_THAT(card, HasSubstr("## Aliases\n\nnone\n"));
  EXPECT_THAT(card, HasSubstr("No approval requests name this version."));
}

}  // namespace
}  // namespace slipway
