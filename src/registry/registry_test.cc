#include "registry/registry.h"

#include <memory>

#include "artifacts/local_artifact_store.h"
#include "core/filesystem.h"
#include "gtest/gtest.h"
#include "store/sqlite_store.h"
#include "testing/fake_clock.h"
#include "testing/temp_dir.h"

namespace slipway {
namespace {

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = *OpenSqliteStore(dir_.path(), &clock_);
    artifacts_ = *OpenLocalArtifactStore(LocalFilesystem(),
                                         JoinPath(dir_.path(), "artifacts"));
    registry_ = std::make_unique<Registry>(store_.get(), artifacts_.get());
  }

  NewModelVersion Version(const std::string& bytes) {
    NewModelVersion v;
    v.app = "churn";
    v.format = "xgboost-json";
    v.model_bytes = bytes;
    v.signature_json = "{}";
    v.params_json = "{}";
    v.metrics_json = R"({"auc":0.9})";
    v.data_fingerprint = std::string(64, 'a');
    v.row_count = 10;
    v.run_id = "run-1";
    v.revision = 1;
    return v;
  }

  TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<ArtifactStore> artifacts_;
  std::unique_ptr<Registry> registry_;
};

TEST_F(RegistryTest, ApplyStoresARevisionOnlyWhenTheTextChanges) {
  auto first = registry_->Apply("churn", "app: churn\n", "/src");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->changed);
  EXPECT_EQ(first->revision.revision, 1);
  EXPECT_EQ(first->previous_yaml, "");

  auto same = registry_->Apply("churn", "app: churn\n", "/src");
  ASSERT_TRUE(same.ok());
  EXPECT_FALSE(same->changed);
  EXPECT_EQ(same->revision.revision, 1);

  auto second = registry_->Apply("churn", "app: churn\n# v2\n", "/src");
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->changed);
  EXPECT_EQ(second->revision.revision, 2);
  EXPECT_EQ(second->previous_yaml, "app: churn\n");
}

TEST_F(RegistryTest, RollbackReappliesAnOldRevisionAsANewOne) {
  ASSERT_TRUE(registry_->Apply("churn", "a\n", "/src").ok());
  ASSERT_TRUE(registry_->Apply("churn", "b\n", "/src").ok());
  auto rolled = registry_->Rollback("churn", 1);
  ASSERT_TRUE(rolled.ok()) << rolled.status();
  EXPECT_EQ(rolled->revision.revision, 3);
  EXPECT_EQ(registry_->CurrentRevision("churn")->spec_yaml, "a\n");
  EXPECT_EQ(registry_->Rollback("churn", 9).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(RegistryTest, RejectsBadAppNames) {
  auto r = registry_->Apply("../etc", "x", "/src");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("'../etc'"), std::string::npos);
}

TEST_F(RegistryTest, RegisterStoresBytesAndNumbersVersions) {
  ASSERT_TRUE(registry_->Apply("churn", "app: churn\n", "/src").ok());
  auto v1 = registry_->Register(Version("model one"));
  ASSERT_TRUE(v1.ok()) << v1.status();
  auto v2 = registry_->Register(Version("model two"));
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(v1->version, 1);
  EXPECT_EQ(v2->version, 2);
  EXPECT_EQ(*registry_->ReadModelBytes(*v2), "model two");
  EXPECT_EQ(registry_->ListVersions("churn")->size(), 2u);
  EXPECT_EQ(registry_->Register(Version("")).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(RegistryTest, AliasesPointAtExistingVersions) {
  ASSERT_TRUE(registry_->Apply("churn", "app: churn\n", "/src").ok());
  ASSERT_TRUE(registry_->Register(Version("m")).ok());
  EXPECT_FALSE(registry_->ResolveAlias("churn", "champion")->has_value());
  ASSERT_TRUE(registry_->MoveAlias("churn", "champion", 1).ok());
  EXPECT_EQ(registry_->ResolveAlias("churn", "champion")->value(), 1);
  absl::Status missing = registry_->MoveAlias("churn", "champion", 7);
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(registry_->MoveAlias("churn", "bad/alias", 1).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(RegistryTest, RegisterKeepsLineageAndTheChampionAsParent) {
  ASSERT_TRUE(registry_->Apply("churn", "app: churn\n", "/src").ok());
  NewModelVersion first = Version("m1");
  first.created_by = "run run-1";
  first.code_sha256 = std::string(64, 'c');
  first.runtime_json = R"({"xgboost":"1.7.4"})";
  first.data_sources_json = R"([{"name":"train","rows":10}])";
  auto v1 = registry_->Register(first);
  ASSERT_TRUE(v1.ok()) << v1.status();
  EXPECT_EQ(v1->parent_version, 0);
  EXPECT_EQ(v1->created_by, "run run-1");
  EXPECT_EQ(v1->code_sha256, std::string(64, 'c'));
  EXPECT_EQ(v1->runtime_json, R"({"xgboost":"1.7.4"})");
  EXPECT_EQ(v1->data_sources_json, R"([{"name":"train","rows":10}])");

  ASSERT_TRUE(registry_->MoveAlias("churn", "champion", 1, "cli").ok());
  auto v2 = registry_->Register(Version("m2"));
  ASSERT_TRUE(v2.ok()) << v2.status();
  EXPECT_EQ(v2->parent_version, 1);
  EXPECT_EQ(registry_->GetVersion("churn", 2)->parent_version, 1);
}

TEST_F(RegistryTest, MoveAliasesIsOneStepWithAHistoryRowPerAlias) {
  ASSERT_TRUE(registry_->Apply("churn", "app: churn\n", "/src").ok());
  ASSERT_TRUE(registry_->Register(Version("m1")).ok());
  ASSERT_TRUE(registry_->Register(Version("m2")).ok());
  ASSERT_TRUE(registry_->MoveAlias("churn", "champion", 1, "cli").ok());
  ASSERT_TRUE(registry_
                  ->MoveAliases("churn", {{"champion", 2}, {"previous", 1}},
                                "api")
                  .ok());
  EXPECT_EQ(registry_->MoveAliases("churn", {{"ok", 1}, {"bad/alias", 1}},
                                   "api")
                .code(),
            absl::StatusCode::kInvalidArgument);
  auto history = registry_->AliasHistory("churn");
  ASSERT_TRUE(history.ok()) << history.status();
  ASSERT_EQ(history->size(), 3u);
  EXPECT_EQ((*history)[1].alias, "champion");
  EXPECT_EQ((*history)[1].from_version, 1);
  EXPECT_EQ((*history)[1].to_version, 2);
  EXPECT_EQ((*history)[2].alias, "previous");
  EXPECT_EQ((*history)[2].actor, "api");
  EXPECT_FALSE(registry_->ResolveAlias("churn", "ok")->has_value());
}

TEST_F(RegistryTest, StepCodeSha256ReadsWhatTheStepRecorded) {
  ASSERT_TRUE(registry_->Apply("churn", "app: churn\n", "/src").ok());
  RunRecord run;
  run.id = "run-1";
  run.app = "churn";
  run.pipeline = "train";
  run.revision = 1;
  run.state = "queued";
  StepRecord train;
  train.run_id = "run-1";
  train.name = "train";
  train.ordinal = 0;
  train.kind = "command";
  train.state = "pending";
  train.outputs_json = "{}";
  StepRecord evaluate = train;
  evaluate.name = "evaluate";
  evaluate.ordinal = 1;
  evaluate.kind = "evaluate";
  ASSERT_TRUE(store_->CreateRun(run, {train, evaluate}).ok());
  train.state = "succeeded";
  train.outputs_json = R"({"code_sha256":"abc","wall_seconds":1})";
  ASSERT_TRUE(store_->UpdateStep(train).ok());

  EXPECT_EQ(*registry_->StepCodeSha256("run-1", "train"), "abc");
  EXPECT_EQ(*registry_->StepCodeSha256("run-1", "evaluate"), "");
  EXPECT_EQ(registry_->StepCodeSha256("run-1", "nope").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace slipway
