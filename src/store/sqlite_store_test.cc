#include "store/sqlite_store.h"

#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/filesystem.h"
#include "core/hash.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/fake_clock.h"
#include "testing/temp_dir.h"

namespace slipway {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Raw access to the database file, bypassing the Store, to set up states the
// Store itself would never produce.
class RawDatabase {
 public:
  explicit RawDatabase(const std::string& data_dir) {
    EXPECT_EQ(sqlite3_open(JoinPath(data_dir, "slipway.db").c_str(), &db_),
              SQLITE_OK);
    sqlite3_busy_timeout(db_, 5000);
  }
  ~RawDatabase() { sqlite3_close(db_); }

  void Exec(const std::string& sql) {
    char* error = nullptr;
    ASSERT_EQ(sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error),
              SQLITE_OK)
        << sql << ": " << (error ? error : "");
  }

  std::string QueryText(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr),
              SQLITE_OK);
    std::string value;
    if (sqlite3_step(stmt) == SQLITE_ROW) {
      value = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
    return value;
  }

 private:
  sqlite3* db_ = nullptr;
};

AppRevisionRecord Revision(const std::string& app, const std::string& yaml) {
  AppRevisionRecord r;
  r.app = app;
  r.spec_yaml = yaml;
  r.spec_sha256 = Sha256Hex(yaml);
  r.source_dir = "/srv/apps/" + app;
  return r;
}

ModelVersionRecord Model(const std::string& app, const std::string& bytes) {
  ModelVersionRecord m;
  m.app = app;
  m.artifact_sha256 = Sha256Hex(bytes);
  m.format = "xgboost-json";
  m.signature_json = R"({"inputs":[{"name":"age","type":"float"}]})";
  m.params_json = R"({"max_depth":6})";
  m.metrics_json = R"({"auc":0.91})";
  m.data_fingerprint = Sha256Hex("training data");
  m.row_count = 1234;
  m.run_id = "run-0001";
  m.revision = 1;
  return m;
}

RunRecord NewRun(const std::string& id, const std::string& app, int revision) {
  RunRecord r;
  r.id = id;
  r.app = app;
  r.pipeline = "train";
  r.revision = revision;
  return r;
}

std::vector<StepRecord> Steps(const std::string& run_id) {
  std::vector<StepRecord> steps;
  int ordinal = 0;
  for (const char* name : {"ingest", "train", "register"}) {
    StepRecord s;
    s.run_id = run_id;
    s.name = name;
    s.ordinal = ordinal++;
    steps.push_back(s);
  }
  return steps;
}

// Takes a current database back to format version 2's schema (the caller
// sets user_version).
void UndoMigration3(RawDatabase& raw) {
  raw.Exec("DROP TABLE step_cache");
  raw.Exec("DROP TABLE run_events");
  raw.Exec("ALTER TABLE model_versions DROP COLUMN transform_json");
  raw.Exec("ALTER TABLE runs DROP COLUMN retry_of");
  for (const char* column :
       {"kind", "attempts", "cpu_user_micros", "cpu_system_micros",
        "peak_rss_kb", "cache_key", "cached_from_run", "progress_json"}) {
    raw.Exec(std::string("ALTER TABLE steps DROP COLUMN ") + column);
  }
}

// Takes a current database back to format version 3's schema (the caller
// sets user_version).
void UndoMigration4(RawDatabase& raw) {
  raw.Exec("DROP TABLE alias_history");
  for (const char* column : {"code_sha256", "parent_version", "runtime_json",
                             "created_by", "data_sources_json"}) {
    raw.Exec(std::string("ALTER TABLE model_versions DROP COLUMN ") + column);
  }
}

// Takes a current database back to format version 4's schema (the caller
// sets user_version).
void UndoMigration5(RawDatabase& raw) { raw.Exec("DROP TABLE tokens"); }

// Takes a current database back to format version 6's schema (the caller
// sets user_version).
void UndoMigration7(RawDatabase& raw) {
  raw.Exec("ALTER TABLE model_versions DROP COLUMN baseline_sha256");
}

// Takes a current database back to format version 5's schema (the caller
// sets user_version).
void UndoMigration6(RawDatabase& raw) {
  for (const char* table : {"audit_log", "approvals", "webhook_deliveries"}) {
    raw.Exec(std::string("DROP TABLE ") + table);
  }
}

// Takes a current database back to format version 7's schema (the caller
// sets user_version).
void UndoMigration8(RawDatabase& raw) {
  // Feedback first: it references predictions.
  for (const char* table : {"feedback", "predictions", "monitor_windows",
                            "alerts", "alert_engines"}) {
    raw.Exec(std::string("DROP TABLE ") + table);
  }
}

// Takes a current database back to format version 8's schema: the prediction
// log one row per prediction, and feedback referencing it (both empty).
void UndoMigration9(RawDatabase& raw) {
  raw.Exec("DROP TABLE prediction_chunks");
  raw.Exec("DROP TABLE feedback");
  raw.Exec(
      "CREATE TABLE predictions (request_id TEXT NOT NULL PRIMARY KEY, "
      "app TEXT NOT NULL, version INTEGER NOT NULL, at INTEGER NOT NULL, "
      "prediction_json TEXT NOT NULL, inputs_json TEXT NOT NULL)");
  raw.Exec("CREATE INDEX predictions_by_app_time ON predictions (app, at)");
  raw.Exec(
      "CREATE TABLE feedback (request_id TEXT NOT NULL PRIMARY KEY "
      "REFERENCES predictions(request_id), app TEXT NOT NULL, "
      "label TEXT NOT NULL, kpis_json TEXT NOT NULL, "
      "received_at INTEGER NOT NULL)");
  raw.Exec("CREATE INDEX feedback_by_app_time ON feedback (app, received_at)");
}

// Takes a current database back to format version `version`'s schema, undoing
// the newer migrations newest first, and sets user_version to it.
void DowngradeTo(RawDatabase& raw, int version) {
  using Undo = void (*)(RawDatabase&);
  // Indexed by migration number; migration 2 only added schedule_state.
  const Undo undo[] = {
      nullptr,
      nullptr,
      [](RawDatabase& r) { r.Exec("DROP TABLE schedule_state"); },
      UndoMigration3,
      UndoMigration4,
      UndoMigration5,
      UndoMigration6,
      UndoMigration7,
      UndoMigration8,
      UndoMigration9};
  for (int migration = 9; migration > version; --migration) {
    undo[migration](raw);
  }
  raw.Exec("PRAGMA user_version = " + std::to_string(version));
}

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open(SqliteStoreOptions options = {}) {
    store_.reset();
    auto store = OpenSqliteStore(data_dir(), &clock_, options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  std::string data_dir() const { return JoinPath(temp_.path(), "data"); }

  std::map<std::string, int64_t> Counts() {
    auto counts = store_->CountRows();
    EXPECT_TRUE(counts.ok()) << counts.status();
    return std::map<std::string, int64_t>(counts->begin(), counts->end());
  }

  // An app "churn" with two revisions.
  void AddChurn() {
    ASSERT_TRUE(store_->AddAppRevision(Revision("churn", "app: churn\n")).ok());
    ASSERT_TRUE(
        store_->AddAppRevision(Revision("churn", "app: churn\n# v2\n")).ok());
  }

  TempDir temp_;
  FakeClock clock_;
  std::unique_ptr<Store> store_;
};

TEST_F(SqliteStoreTest, OpenCreatesDataDirectoryAndSchemaAtCurrentVersion) {
  EXPECT_TRUE(LocalFilesystem()->Exists(JoinPath(data_dir(), "slipway.db")));
  EXPECT_EQ(Counts(),
            (std::map<std::string, int64_t>{{"alias_history", 0},
                                            {"aliases", 0},
                                            {"approvals", 0},
                                            {"audit_log", 0},
                                            {"app_revisions", 0},
                                            {"alert_engines", 0},
                                            {"alerts", 0},
                                            {"apps", 0},
                                            {"feedback", 0},
                                            {"model_versions", 0},
                                            {"monitor_windows", 0},
                                            {"prediction_chunks", 0},
                                            {"run_events", 0},
                                            {"runs", 0},
                                            {"schedule_state", 0},
                                            {"step_cache", 0},
                                            {"steps", 0},
                                            {"tokens", 0},
                                            {"webhook_deliveries", 0}}));
  RawDatabase raw(data_dir());
  EXPECT_EQ(raw.QueryText("PRAGMA user_version"),
            std::to_string(SqliteStoreFormatVersion()));
  EXPECT_EQ(raw.QueryText("PRAGMA journal_mode"), "wal");
  EXPECT_GE(SqliteStoreFormatVersion(), 1);
}

TEST_F(SqliteStoreTest, ReopenKeepsDataAndFormatVersion) {
  AddChurn();
  ASSERT_TRUE(store_->AddModelVersion(Model("churn", "model 1")).ok());
  ASSERT_TRUE(store_->SetAlias("churn", "champion", 1, "cli").ok());
  ASSERT_TRUE(
      store_->CreateRun(NewRun("run-1", "churn", 2), Steps("run-1")).ok());
  std::map<std::string, int64_t> before = Counts();

  Open();  // Closes the first store, then opens the directory again.

  EXPECT_EQ(Counts(), before);
  auto app = store_->GetApp("churn");
  ASSERT_TRUE(app.ok()) << app.status();
  EXPECT_EQ(app->current_revision, 2);
  auto alias = store_->GetAlias("churn", "champion");
  ASSERT_TRUE(alias.ok()) << alias.status();
  ASSERT_TRUE(alias->has_value());
  EXPECT_EQ((*alias)->version, 1);
  RawDatabase raw(data_dir());
  EXPECT_EQ(raw.QueryText("PRAGMA user_version"),
            std::to_string(SqliteStoreFormatVersion()));
}

TEST_F(SqliteStoreTest, RefusesDataDirectoryWithNewerFormatVersion) {
  store_.reset();
  const int newer = SqliteStoreFormatVersion() + 1;
  {
    RawDatabase raw(data_dir());
    raw.Exec("PRAGMA user_version = " + std::to_string(newer));
  }
  auto store = OpenSqliteStore(data_dir(), &clock_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(std::string(store.status().message()),
            "data directory '" + data_dir() + "' has format version " +
                std::to_string(newer) +
                ", but this slipway supports format version " +
                std::to_string(SqliteStoreFormatVersion()) +
                " at most: upgrade slipway");
  RawDatabase raw(data_dir());
  EXPECT_EQ(raw.QueryText("PRAGMA user_version"), std::to_string(newer));
}

TEST_F(SqliteStoreTest, UpgradesAFormatVersion1DirectoryKeepingItsData) {
  AddChurn();
  store_.reset();
  {
    // A directory written by the first release: migration 1 only.
    RawDatabase raw(data_dir());
    DowngradeTo(raw, 1);
  }
  Open();
  RawDatabase raw(data_dir());
  EXPECT_EQ(raw.QueryText("PRAGMA user_version"),
            std::to_string(SqliteStoreFormatVersion()));
  EXPECT_EQ(SqliteStoreFormatVersion(), 9);
  auto app = store_->GetApp("churn");
  ASSERT_TRUE(app.ok()) << app.status();
  EXPECT_EQ(app->current_revision, 2);
  ASSERT_TRUE(store_->SetLastScheduledFire("churn", "train", 42).ok());
  EXPECT_EQ(Counts()["schedule_state"], 1);
}

TEST_F(SqliteStoreTest, UpgradesAFormatVersion2DirectoryKeepingItsData) {
  AddChurn();
  ASSERT_TRUE(store_->AddModelVersion(Model("churn", "model 1")).ok());
  ASSERT_TRUE(
      store_->CreateRun(NewRun("run-1", "churn", 1), Steps("run-1")).ok());
  StepRecord step = Steps("run-1")[0];
  step.state = "succeeded";
  step.message = "569 rows";
  step.outputs_json = R"({"rows":569})";
  ASSERT_TRUE(store_->UpdateStep(step).ok());
  store_.reset();
  {
    // A directory written by the cron release: migrations 1 and 2.
    RawDatabase raw(data_dir());
    DowngradeTo(raw, 2);
  }
  Open();
  RawDatabase raw(data_dir());
  EXPECT_EQ(raw.QueryText("PRAGMA user_version"), "9");
  EXPECT_EQ(raw.QueryText("PRAGMA integrity_check"), "ok");

  auto version = store_->GetModelVersion("churn", 1);
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ(version->transform_json, "");
  EXPECT_EQ(version->format, "xgboost-json");
  StepRecord stored = (*store_->ListSteps("run-1"))[0];
  EXPECT_EQ(stored.state, "succeeded");
  EXPECT_EQ(stored.message, "569 rows");
  EXPECT_EQ(stored.outputs_json, R"({"rows":569})");
  EXPECT_EQ(stored.kind, "");
  EXPECT_EQ(stored.attempts, 0);
  EXPECT_EQ(stored.cache_key, "");
  EXPECT_EQ(stored.cached_from_run, "");
  EXPECT_EQ(stored.progress_json, "{}");
  EXPECT_EQ(store_->GetRun("run-1")->retry_of, "");
  ASSERT_TRUE(store_
                  ->PutStepCache({"churn", "train", "ingest",
                                  std::string(64, 'a'), "run-1", 0})
                  .ok());
  EXPECT_EQ(Counts()["step_cache"], 1);
}

TEST_F(SqliteStoreTest, UpgradesAFormatVersion3DirectoryKeepingItsData) {
  AddChurn();
  ASSERT_TRUE(store_->AddModelVersion(Model("churn", "model 1")).ok());
  ASSERT_TRUE(store_->SetAlias("churn", "champion", 1, "cli").ok());
  store_.reset();
  {
    // A directory written by the pipelines-as-DAGs release: migrations 1-3.
    RawDatabase raw(data_dir());
    DowngradeTo(raw, 3);
  }
  Open();
  RawDatabase raw(data_dir());
  EXPECT_EQ(raw.QueryText("PRAGMA user_version"), "9");
  EXPECT_EQ(raw.QueryText("PRAGMA integrity_check"), "ok");
  auto version = store_->GetModelVersion("churn", 1);
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ(version->artifact_sha256, Sha256Hex("model 1"));
  EXPECT_EQ(version->code_sha256, "");
  EXPECT_EQ(version->parent_version, 0);
  EXPECT_EQ(version->runtime_json, "{}");
  EXPECT_EQ(version->created_by, "");
  EXPECT_EQ(version->data_sources_json, "[]");
  EXPECT_EQ((*store_->GetAlias("churn", "champion"))->version, 1);
  // Moves made before the upgrade were not recorded; new ones are.
  EXPECT_TRUE(store_->ListAliasHistory("churn")->empty());
  ASSERT_TRUE(store_->SetAlias("churn", "challenger", 1, "api").ok());
  EXPECT_EQ(store_->ListAliasHistory("churn")->size(), 1u);
}

TEST_F(SqliteStoreTest, LastScheduledFireIsPerPipelineAndSurvivesReopen) {
  AddChurn();
  auto none = store_->GetLastScheduledFire("churn", "train");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->has_value());

  ASSERT_TRUE(store_->SetLastScheduledFire("churn", "train", 1000).ok());
  ASSERT_TRUE(store_->SetLastScheduledFire("churn", "train", 2000).ok());
  ASSERT_TRUE(store_->SetLastScheduledFire("churn", "score", 500).ok());
  Open();
  auto train = store_->GetLastScheduledFire("churn", "train");
  ASSERT_TRUE(train.ok()) << train.status();
  EXPECT_EQ(*train, std::optional<int64_t>(2000));
  auto score = store_->GetLastScheduledFire("churn", "score");
  ASSERT_TRUE(score.ok()) << score.status();
  EXPECT_EQ(*score, std::optional<int64_t>(500));
  EXPECT_EQ(Counts()["schedule_state"], 2);
}

TEST_F(SqliteStoreTest, LastScheduledFireOfAnUnknownAppIsNotFound) {
  auto get = store_->GetLastScheduledFire("nope", "train");
  EXPECT_EQ(get.status().code(), absl::StatusCode::kNotFound);
  absl::Status set = store_->SetLastScheduledFire("nope", "train", 1);
  EXPECT_EQ(set.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(set.message()), HasSubstr("app 'nope' not found"));
  EXPECT_EQ(Counts()["schedule_state"], 0);
}

TEST_F(SqliteStoreTest, RefusesAFileThatIsNotADatabase) {
  store_.reset();
  const std::string path = JoinPath(data_dir(), "slipway.db");
  ASSERT_TRUE(LocalFilesystem()->RemoveFile(path).ok());
  LocalFilesystem()->RemoveFile(path + "-wal").IgnoreError();
  LocalFilesystem()->RemoveFile(path + "-shm").IgnoreError();
  ASSERT_TRUE(
      LocalFilesystem()->WriteFileAtomic(path, std::string(8192, 'x')).ok());
  auto store = OpenSqliteStore(data_dir(), &clock_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(store.status().message()), HasSubstr(path));
}

TEST_F(SqliteStoreTest,
       AddAppRevisionNumbersRevisionsPerAppAndMakesThemCurrent) {
  const int64_t t0 = clock_.NowMicros();
  auto first = store_->AddAppRevision(Revision("churn", "app: churn\n"));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->revision, 1);
  EXPECT_EQ(first->created_at, t0);

  clock_.Advance(1000);
  auto second = store_->AddAppRevision(Revision("churn", "app: churn\n# 2\n"));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->revision, 2);
  EXPECT_EQ(second->created_at, t0 + 1000);

  auto other = store_->AddAppRevision(Revision("fraud", "app: fraud\n"));
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(other->revision, 1);

  auto app = store_->GetApp("churn");
  ASSERT_TRUE(app.ok()) << app.status();
  EXPECT_EQ(app->name, "churn");
  EXPECT_EQ(app->created_at, t0);
  EXPECT_EQ(app->current_revision, 2);

  auto apps = store_->ListApps();
  ASSERT_TRUE(apps.ok()) << apps.status();
  ASSERT_EQ(apps->size(), 2u);
  EXPECT_EQ((*apps)[0].name, "churn");
  EXPECT_EQ((*apps)[1].name, "fraud");

  auto revision = store_->GetAppRevision("churn", 2);
  ASSERT_TRUE(revision.ok()) << revision.status();
  EXPECT_EQ(revision->spec_yaml, "app: churn\n# 2\n");
  EXPECT_EQ(revision->spec_sha256, Sha256Hex("app: churn\n# 2\n"));
  EXPECT_EQ(revision->source_dir, "/srv/apps/churn");
  EXPECT_EQ(revision->created_at, t0 + 1000);

  auto revisions = store_->ListAppRevisions("churn");
  ASSERT_TRUE(revisions.ok()) << revisions.status();
  ASSERT_EQ(revisions->size(), 2u);
  EXPECT_EQ((*revisions)[0].revision, 1);
  EXPECT_EQ((*revisions)[1].revision, 2);
}

TEST_F(SqliteStoreTest, AddAppRevisionRejectsBadInputWithoutChangingAnything) {
  AddChurn();
  std::map<std::string, int64_t> before = Counts();

  auto bad_name = store_->AddAppRevision(Revision("../etc", "app: x\n"));
  EXPECT_EQ(bad_name.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad_name.status().message()), HasSubstr("'../etc'"));

  AppRevisionRecord wrong_hash = Revision("churn", "app: churn\n# 3\n");
  wrong_hash.spec_sha256 = Sha256Hex("something else");
  EXPECT_EQ(store_->AddAppRevision(wrong_hash).status().code(),
            absl::StatusCode::kInvalidArgument);

  EXPECT_EQ(Counts(), before);
  EXPECT_EQ(store_->GetApp("churn")->current_revision, 2);
}

TEST_F(SqliteStoreTest, MissingAppsAndRevisionsAreNotFound) {
  AddChurn();
  for (const absl::Status& status :
       {store_->GetApp("fraud").status(),
        store_->ListAppRevisions("fraud").status(),
        store_->GetAppRevision("fraud", 1).status(),
        store_->ListRuns("fraud", 10).status(),
        store_->ListModelVersions("fraud").status(),
        store_->ListAliases("fraud").status(),
        store_->GetAlias("fraud", "champion").status()}) {
    EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr("app 'fraud'"));
  }
  auto revision = store_->GetAppRevision("churn", 3);
  EXPECT_EQ(revision.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(revision.status().message()),
              HasSubstr("revision 3 of app 'churn'"));
}

TEST_F(SqliteStoreTest, CreateRunStartsQueuedWithPendingSteps) {
  AddChurn();
  RunRecord run = NewRun("run-1", "churn", 2);
  run.state = "succeeded";  // Ignored: a new run is always queued.
  run.reason = "ignored";
  std::vector<StepRecord> steps = Steps("run-1");
  steps[1].state = "running";
  ASSERT_TRUE(store_->CreateRun(run, steps).ok());

  auto stored = store_->GetRun("run-1");
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->app, "churn");
  EXPECT_EQ(stored->pipeline, "train");
  EXPECT_EQ(stored->revision, 2);
  EXPECT_EQ(stored->state, "queued");
  EXPECT_EQ(stored->reason, "");
  EXPECT_EQ(stored->created_at, clock_.NowMicros());
  EXPECT_EQ(stored->started_at, 0);
  EXPECT_EQ(stored->finished_at, 0);

  auto listed = store_->ListSteps("run-1");
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 3u);
  std::vector<std::string> names;
  for (const StepRecord& s : *listed) {
    names.push_back(s.name);
    EXPECT_EQ(s.run_id, "run-1");
    EXPECT_EQ(s.state, "pending");
    EXPECT_EQ(s.outputs_json, "{}");
  }
  EXPECT_THAT(names, ElementsAre("ingest", "train", "register"));
}

TEST_F(SqliteStoreTest, CreateRunRejectsBadRunsWithoutChangingAnything) {
  AddChurn();
  ASSERT_TRUE(
      store_->CreateRun(NewRun("run-1", "churn", 1), Steps("run-1")).ok());
  std::map<std::string, int64_t> before = Counts();

  absl::Status duplicate =
      store_->CreateRun(NewRun("run-1", "churn", 2), Steps("run-1"));
  EXPECT_EQ(duplicate.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(duplicate.message()), HasSubstr("run 'run-1'"));

  absl::Status no_app =
      store_->CreateRun(NewRun("run-2", "fraud", 1), Steps("run-2"));
  EXPECT_EQ(no_app.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(no_app.message()), HasSubstr("app 'fraud'"));

  absl::Status no_revision =
      store_->CreateRun(NewRun("run-2", "churn", 4), Steps("run-2"));
  EXPECT_EQ(no_revision.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(no_revision.message()),
              HasSubstr("revision 4 of app 'churn'"));

  std::vector<StepRecord> twice = Steps("run-2");
  twice[2].name = "ingest";
  EXPECT_EQ(store_->CreateRun(NewRun("run-2", "churn", 1), twice).code(),
            absl::StatusCode::kInvalidArgument);

  std::vector<StepRecord> same_ordinal = Steps("run-2");
  same_ordinal[2].ordinal = 0;
  EXPECT_EQ(store_->CreateRun(NewRun("run-2", "churn", 1), same_ordinal).code(),
            absl::StatusCode::kInvalidArgument);

  EXPECT_EQ(store_->CreateRun(NewRun("../run", "churn", 1), {}).code(),
            absl::StatusCode::kInvalidArgument);

  EXPECT_EQ(Counts(), before);
}

TEST_F(SqliteStoreTest, AFailureHalfwayThroughAMethodRollsBackItsWrites) {
  AddChurn();
  {
    // Make the second statement of CreateRun (its first step) fail after
    // the run row was written.
    RawDatabase raw(data_dir());
    raw.Exec(
        "CREATE TRIGGER refuse_steps BEFORE INSERT ON steps "
        "BEGIN SELECT RAISE(ABORT, 'steps refused'); END");
  }
  std::map<std::string, int64_t> before = Counts();
  absl::Status status =
      store_->CreateRun(NewRun("run-1", "churn", 1), Steps("run-1"));
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("steps refused"));
  EXPECT_EQ(Counts(), before);
  EXPECT_EQ(store_->GetRun("run-1").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(SqliteStoreTest, UpdateRunRefusesToChangeAFinishedRun) {
  AddChurn();
  ASSERT_TRUE(
      store_->CreateRun(NewRun("run-1", "churn", 1), Steps("run-1")).ok());
  RunRecord run = *store_->GetRun("run-1");
  run.state = "running";
  run.started_at = 111;
  ASSERT_TRUE(store_->UpdateRun(run).ok());
  EXPECT_EQ(store_->GetRun("run-1")->state, "running");
  EXPECT_EQ(store_->GetRun("run-1")->started_at, 111);

  run.state = "succeeded";
  run.finished_at = 222;
  ASSERT_TRUE(store_->UpdateRun(run).ok());

  RunRecord stale = run;
  stale.state = "running";
  stale.finished_at = 0;
  absl::Status revived = store_->UpdateRun(stale);
  EXPECT_EQ(revived.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(revived.message()), HasSubstr("run 'run-1'"));
  RunRecord stored = *store_->GetRun("run-1");
  EXPECT_EQ(stored.state, "succeeded");
  EXPECT_EQ(stored.finished_at, 222);

  RunRecord unknown = NewRun("run-9", "churn", 1);
  unknown.state = "running";
  absl::Status missing = store_->UpdateRun(unknown);
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.message()), HasSubstr("run 'run-9'"));

  ASSERT_TRUE(store_->CreateRun(NewRun("run-2", "churn", 1), {}).ok());
  RunRecord bad_state = NewRun("run-2", "churn", 1);
  bad_state.state = "exploded";
  EXPECT_EQ(store_->UpdateRun(bad_state).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->GetRun("run-2")->state, "queued");
}

TEST_F(SqliteStoreTest, UpdateStepReplacesItsMutableFields) {
  AddChurn();
  ASSERT_TRUE(
      store_->CreateRun(NewRun("run-1", "churn", 1), Steps("run-1")).ok());
  StepRecord step = Steps("run-1")[1];
  step.state = "succeeded";
  step.message = "200 rounds";
  step.outputs_json = R"({"model":"abc"})";
  step.started_at = 10;
  step.finished_at = 20;
  ASSERT_TRUE(store_->UpdateStep(step).ok());

  StepRecord stored = (*store_->ListSteps("run-1"))[1];
  EXPECT_EQ(stored.name, "train");
  EXPECT_EQ(stored.ordinal, 1);
  EXPECT_EQ(stored.state, "succeeded");
  EXPECT_EQ(stored.message, "200 rounds");
  EXPECT_EQ(stored.outputs_json, R"({"model":"abc"})");
  EXPECT_EQ(stored.started_at, 10);
  EXPECT_EQ(stored.finished_at, 20);

  StepRecord no_step = step;
  no_step.name = "deploy";
  absl::Status missing_step = store_->UpdateStep(no_step);
  EXPECT_EQ(missing_step.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing_step.message()),
              HasSubstr("step 'deploy' of run 'run-1'"));

  StepRecord no_run = step;
  no_run.run_id = "run-9";
  absl::Status missing_run = store_->UpdateStep(no_run);
  EXPECT_EQ(missing_run.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing_run.message()), HasSubstr("run 'run-9'"));

  StepRecord bad_state = step;
  bad_state.state = "done";
  EXPECT_EQ(store_->UpdateStep(bad_state).code(),
            absl::StatusCode::kInvalidArgument);

  EXPECT_EQ(store_->ListSteps("run-9").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->GetRun("run-9").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(SqliteStoreTest, ARunKeepsTheRunItRetries) {
  AddChurn();
  RunRecord retry = NewRun("run-2", "churn", 1);
  retry.retry_of = "run-1";
  ASSERT_TRUE(store_->CreateRun(retry, {}).ok());
  EXPECT_EQ(store_->GetRun("run-2")->retry_of, "run-1");
  EXPECT_EQ((*store_->ListRuns("churn", 5))[0].retry_of, "run-1");
}

TEST_F(SqliteStoreTest, StepsKeepKindAttemptsResourcesCacheAndProgress) {
  AddChurn();
  std::vector<StepRecord> steps = Steps("run-1");
  steps[1].kind = "command";
  ASSERT_TRUE(store_->CreateRun(NewRun("run-1", "churn", 1), steps).ok());
  EXPECT_EQ((*store_->ListSteps("run-1"))[1].kind, "command");

  StepRecord step = steps[1];
  step.state = "running";
  step.attempts = 2;
  step.cpu_user_micros = 1500;
  step.cpu_system_micros = 300;
  step.peak_rss_kb = 40960;
  step.cache_key = std::string(64, 'c');
  step.cached_from_run = "run-0";
  ASSERT_TRUE(store_->UpdateStep(step).ok());
  ASSERT_TRUE(
      store_->UpdateStepProgress("run-1", "train", R"({"round":4})").ok());
  StepRecord stored = (*store_->ListSteps("run-1"))[1];
  EXPECT_EQ(stored.kind, "command");
  EXPECT_EQ(stored.attempts, 2);
  EXPECT_EQ(stored.cpu_user_micros, 1500);
  EXPECT_EQ(stored.cpu_system_micros, 300);
  EXPECT_EQ(stored.peak_rss_kb, 40960);
  EXPECT_EQ(stored.cache_key, std::string(64, 'c'));
  EXPECT_EQ(stored.cached_from_run, "run-0");
  EXPECT_EQ(stored.progress_json, R"({"round":4})");
  // Progress leaves every other field alone.
  EXPECT_EQ(stored.state, "running");

  EXPECT_EQ(store_->UpdateStepProgress("run-1", "deploy", "{}").code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->UpdateStepProgress("run-9", "train", "{}").code(),
            absl::StatusCode::kNotFound);
}

TEST_F(SqliteStoreTest, StepCacheFindsTheLatestRunForAKey) {
  AddChurn();
  ASSERT_TRUE(store_->CreateRun(NewRun("run-1", "churn", 1), {}).ok());
  ASSERT_TRUE(store_->CreateRun(NewRun("run-2", "churn", 1), {}).ok());
  const std::string key(64, 'k');
  auto none = store_->FindStepCache("churn", "train", "split", key);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->has_value());

  ASSERT_TRUE(
      store_->PutStepCache({"churn", "train", "split", key, "run-1", 0}).ok());
  clock_.Advance(5);
  ASSERT_TRUE(
      store_->PutStepCache({"churn", "train", "split", key, "run-2", 0}).ok());
  auto found = store_->FindStepCache("churn", "train", "split", key);
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->run_id, "run-2");
  EXPECT_EQ((*found)->created_at, clock_.NowMicros());
  EXPECT_FALSE(
      store_->FindStepCache("churn", "train", "train", key)->has_value());
  EXPECT_FALSE(
      store_->FindStepCache("churn", "other", "split", key)->has_value());
  EXPECT_EQ(Counts()["step_cache"], 1);

  EXPECT_EQ(
      store_->PutStepCache({"churn", "train", "split", key, "run-9", 0}).code(),
      absl::StatusCode::kNotFound);
  EXPECT_EQ(
      store_->PutStepCache({"spam", "train", "split", key, "run-1", 0}).code(),
      absl::StatusCode::kNotFound);
}

TEST_F(SqliteStoreTest, RunEventsAreNumberedPerRunInOrder) {
  AddChurn();
  ASSERT_TRUE(store_->CreateRun(NewRun("run-1", "churn", 1), {}).ok());
  ASSERT_TRUE(store_->CreateRun(NewRun("run-2", "churn", 1), {}).ok());
  RunEventRecord metric{"run-1", "prep", 0, 10, "metric", "auc", "0.91", ""};
  RunEventRecord alert{"run-1", "prep",  0,      11,
                       "alert", "drift", "null", "age drifted"};
  auto added = store_->AddRunEvents({metric, alert});
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_EQ((*added)[0].seq, 1);
  EXPECT_EQ((*added)[1].seq, 2);
  RunEventRecord other{"run-2", "train", 0, 12, "stat", "rows", "5", ""};
  ASSERT_TRUE(store_->AddRunEvents({other}).ok());
  ASSERT_TRUE(store_->AddRunEvents({metric}).ok());

  auto events = store_->ListRunEvents("run-1");
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 3u);
  EXPECT_EQ((*events)[0].name, "auc");
  EXPECT_EQ((*events)[0].value_json, "0.91");
  EXPECT_EQ((*events)[1].type, "alert");
  EXPECT_EQ((*events)[1].message, "age drifted");
  EXPECT_EQ((*events)[2].seq, 3);
  EXPECT_EQ((*store_->ListRunEvents("run-2"))[0].seq, 1);

  // All or nothing: an event of an unknown run rejects the batch.
  RunEventRecord stray{"run-9", "x", 0, 1, "metric", "m", "1", ""};
  EXPECT_EQ(store_->AddRunEvents({metric, stray}).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->ListRunEvents("run-1")->size(), 3u);
  EXPECT_EQ(store_->ListRunEvents("run-9").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(SqliteStoreTest, ListRunsIsNewestFirstPerAppOrOverall) {
  AddChurn();
  ASSERT_TRUE(store_->AddAppRevision(Revision("fraud", "app: fraud\n")).ok());
  ASSERT_TRUE(store_->CreateRun(NewRun("run-a", "churn", 1), {}).ok());
  clock_.Advance(10);
  ASSERT_TRUE(store_->CreateRun(NewRun("run-b", "fraud", 1), {}).ok());
  clock_.Advance(10);
  ASSERT_TRUE(store_->CreateRun(NewRun("run-c", "churn", 2), {}).ok());
  // Same microsecond as run-c: creation order breaks the tie.
  ASSERT_TRUE(store_->CreateRun(NewRun("run-0", "churn", 2), {}).ok());

  auto ids = [](const absl::StatusOr<std::vector<RunRecord>>& runs) {
    EXPECT_TRUE(runs.ok()) << runs.status();
    std::vector<std::string> out;
    for (const RunRecord& r : *runs) out.push_back(r.id);
    return out;
  };
  EXPECT_THAT(ids(store_->ListRuns("", 10)),
              ElementsAre("run-0", "run-c", "run-b", "run-a"));
  EXPECT_THAT(ids(store_->ListRuns("churn", 10)),
              ElementsAre("run-0", "run-c", "run-a"));
  EXPECT_THAT(ids(store_->ListRuns("churn", 2)), ElementsAre("run-0", "run-c"));
  EXPECT_THAT(ids(store_->ListRuns("fraud", 10)), ElementsAre("run-b"));
  EXPECT_EQ(store_->ListRuns("churn", 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(SqliteStoreTest, FailUnfinishedRunsFailsQueuedAndRunningRunsAndSteps) {
  AddChurn();
  ASSERT_TRUE(
      store_->CreateRun(NewRun("run-done", "churn", 1), Steps("run-done"))
          .ok());
  RunRecord done = *store_->GetRun("run-done");
  done.state = "succeeded";
  done.finished_at = 50;
  ASSERT_TRUE(store_->UpdateRun(done).ok());

  ASSERT_TRUE(
      store_->CreateRun(NewRun("run-queued", "churn", 1), Steps("run-queued"))
          .ok());
  clock_.Advance(5);
  ASSERT_TRUE(
      store_->CreateRun(NewRun("run-running", "churn", 2), Steps("run-running"))
          .ok());
  RunRecord running = *store_->GetRun("run-running");
  running.state = "running";
  running.started_at = 60;
  ASSERT_TRUE(store_->UpdateRun(running).ok());
  std::vector<StepRecord> steps = Steps("run-running");
  steps[0].state = "succeeded";
  steps[0].finished_at = 70;
  ASSERT_TRUE(store_->UpdateStep(steps[0]).ok());
  steps[1].state = "running";
  steps[1].started_at = 70;
  ASSERT_TRUE(store_->UpdateStep(steps[1]).ok());

  auto failed = store_->FailUnfinishedRuns("interrupted", 999);
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_THAT(*failed, ElementsAre("run-queued", "run-running"));

  for (const std::string id : {"run-queued", "run-running"}) {
    RunRecord run = *store_->GetRun(id);
    EXPECT_EQ(run.state, "failed");
    EXPECT_EQ(run.reason, "interrupted");
    EXPECT_EQ(run.finished_at, 999);
  }
  EXPECT_EQ(store_->GetRun("run-running")->started_at, 60);

  std::vector<StepRecord> after = *store_->ListSteps("run-running");
  EXPECT_EQ(after[0].state, "succeeded");
  EXPECT_EQ(after[0].finished_at, 70);
  for (int i : {1, 2}) {
    EXPECT_EQ(after[i].state, "failed");
    EXPECT_EQ(after[i].message, "interrupted");
    EXPECT_EQ(after[i].finished_at, 999);
  }
  std::vector<StepRecord> queued_steps = *store_->ListSteps("run-queued");
  for (const StepRecord& s : queued_steps) {
    EXPECT_EQ(s.state, "failed");
  }
  RunRecord untouched = *store_->GetRun("run-done");
  EXPECT_EQ(untouched.state, "succeeded");
  EXPECT_EQ(untouched.finished_at, 50);
  std::vector<StepRecord> done_steps = *store_->ListSteps("run-done");
  for (const StepRecord& s : done_steps) {
    EXPECT_EQ(s.state, "pending");
  }

  // The crashed run's old writer cannot bring it back.
  EXPECT_EQ(store_->UpdateRun(running).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->GetRun("run-running")->state, "failed");

  auto again = store_->FailUnfinishedRuns("interrupted", 1000);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->empty());
}

TEST_F(SqliteStoreTest, AddModelVersionNumbersVersionsPerApp) {
  AddChurn();
  ASSERT_TRUE(store_->AddAppRevision(Revision("fraud", "app: fraud\n")).ok());
  const int64_t t0 = clock_.NowMicros();
  auto v1 = store_->AddModelVersion(Model("churn", "model 1"));
  ASSERT_TRUE(v1.ok()) << v1.status();
  EXPECT_EQ(v1->version, 1);
  EXPECT_EQ(v1->created_at, t0);
  clock_.Advance(7);
  auto v2 = store_->AddModelVersion(Model("churn", "model 2"));
  ASSERT_TRUE(v2.ok()) << v2.status();
  EXPECT_EQ(v2->version, 2);
  auto fraud = store_->AddModelVersion(Model("fraud", "model f"));
  ASSERT_TRUE(fraud.ok()) << fraud.status();
  EXPECT_EQ(fraud->version, 1);

  auto got = store_->GetModelVersion("churn", 2);
  ASSERT_TRUE(got.ok()) << got.status();
  ModelVersionRecord expected = Model("churn", "model 2");
  EXPECT_EQ(got->app, "churn");
  EXPECT_EQ(got->version, 2);
  EXPECT_EQ(got->artifact_sha256, expected.artifact_sha256);
  EXPECT_EQ(got->format, expected.format);
  EXPECT_EQ(got->signature_json, expected.signature_json);
  EXPECT_EQ(got->params_json, expected.params_json);
  EXPECT_EQ(got->metrics_json, expected.metrics_json);
  EXPECT_EQ(got->data_fingerprint, expected.data_fingerprint);
  EXPECT_EQ(got->row_count, 1234);
  EXPECT_EQ(got->run_id, "run-0001");
  EXPECT_EQ(got->revision, 1);
  EXPECT_EQ(got->created_at, t0 + 7);
  EXPECT_EQ(got->transform_json, "");

  ModelVersionRecord transformed = Model("churn", "model 3");
  transformed.transform_json = R"({"version":1})";
  ASSERT_TRUE(store_->AddModelVersion(transformed).ok());
  EXPECT_EQ(store_->GetModelVersion("churn", 3)->transform_json,
            R"({"version":1})");
  EXPECT_EQ((*store_->ListModelVersions("churn"))[2].transform_json,
            R"({"version":1})");
  EXPECT_EQ(got->code_sha256, "");
  EXPECT_EQ(got->parent_version, 0);
  EXPECT_EQ(got->runtime_json, "{}");
  EXPECT_EQ(got->created_by, "");
  EXPECT_EQ(got->data_sources_json, "[]");

  auto versions = store_->ListModelVersions("churn");
  ASSERT_TRUE(versions.ok()) << versions.status();
  ASSERT_EQ(versions->size(), 3u);
  EXPECT_EQ((*versions)[0].version, 1);
  EXPECT_EQ((*versions)[1].version, 2);

  auto missing = store_->GetModelVersion("churn", 4);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()),
              HasSubstr("model churn v4"));

  std::map<std::string, int64_t> before = Counts();
  ModelVersionRecord bad_hash = Model("churn", "x");
  bad_hash.artifact_sha256 = "../../etc/passwd";
  EXPECT_EQ(store_->AddModelVersion(bad_hash).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto no_app = store_->AddModelVersion(Model("spam", "x"));
  EXPECT_EQ(no_app.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(no_app.status().message()), HasSubstr("app 'spam'"));
  EXPECT_EQ(Counts(), before);
}

TEST_F(SqliteStoreTest, AliasesPointAtExistingVersions) {
  AddChurn();
  ASSERT_TRUE(store_->AddModelVersion(Model("churn", "model 1")).ok());
  ASSERT_TRUE(store_->AddModelVersion(Model("churn", "model 2")).ok());

  auto none = store_->GetAlias("churn", "champion");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->has_value());

  ASSERT_TRUE(store_->SetAlias("churn", "champion", 1, "cli").ok());
  clock_.Advance(100);
  ASSERT_TRUE(store_->SetAlias("churn", "challenger", 2, "cli").ok());
  clock_.Advance(100);
  ASSERT_TRUE(store_->SetAlias("churn", "champion", 2, "cli").ok());

  auto champion = store_->GetAlias("churn", "champion");
  ASSERT_TRUE(champion.ok()) << champion.status();
  ASSERT_TRUE(champion->has_value());
  EXPECT_EQ((*champion)->app, "churn");
  EXPECT_EQ((*champion)->alias, "champion");
  EXPECT_EQ((*champion)->version, 2);
  EXPECT_EQ((*champion)->updated_at, clock_.NowMicros());

  auto aliases = store_->ListAliases("churn");
  ASSERT_TRUE(aliases.ok()) << aliases.status();
  ASSERT_EQ(aliases->size(), 2u);
  EXPECT_EQ((*aliases)[0].alias, "challenger");
  EXPECT_EQ((*aliases)[1].alias, "champion");

  std::map<std::string, int64_t> before = Counts();
  absl::Status missing = store_->SetAlias("churn", "champion", 9, "cli");
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.message()), HasSubstr("model churn v9"));
  EXPECT_EQ(store_->SetAlias("churn", "bad alias", 1, "cli").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->SetAlias("fraud", "champion", 1, "cli").code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Counts(), before);
  EXPECT_EQ((*store_->GetAlias("churn", "champion"))->version, 2);
}

TEST_F(SqliteStoreTest, ModelVersionKeepsItsLineage) {
  AddChurn();
  ModelVersionRecord record = Model("churn", "model 1");
  record.code_sha256 = Sha256Hex("train.py");
  record.parent_version = 0;
  record.runtime_json = R"({"slipway":"0.1.0","xgboost":"1.7.4"})";
  record.created_by = "run run-0001";
  record.data_sources_json =
      R"([{"name":"train","fingerprint":"ab","rows":1234}])";
  ASSERT_TRUE(store_->AddModelVersion(record).ok());
  record.parent_version = 1;
  record.created_by = "import";
  record.baseline_sha256 = Sha256Hex("baseline profile");
  ASSERT_TRUE(store_->AddModelVersion(record).ok());

  for (const ModelVersionRecord& got :
       {*store_->GetModelVersion("churn", 2),
        (*store_->ListModelVersions("churn"))[1]}) {
    EXPECT_EQ(got.code_sha256, record.code_sha256);
    EXPECT_EQ(got.parent_version, 1);
    EXPECT_EQ(got.runtime_json, record.runtime_json);
    EXPECT_EQ(got.created_by, "import");
    EXPECT_EQ(got.data_sources_json, record.data_sources_json);
    EXPECT_EQ(got.baseline_sha256, Sha256Hex("baseline profile"));
  }
  EXPECT_EQ(store_->GetModelVersion("churn", 1)->created_by, "run run-0001");
  EXPECT_EQ(store_->GetModelVersion("churn", 1)->baseline_sha256, "");
}

TEST_F(SqliteStoreTest, SetAliasesMovesSeveralAtOnceWithOneHistoryRowEach) {
  AddChurn();
  for (const char* bytes : {"m1", "m2", "m3"}) {
    ASSERT_TRUE(store_->AddModelVersion(Model("churn", bytes)).ok());
  }
  ASSERT_TRUE(store_->SetAlias("churn", "champion", 1, "cli").ok());
  clock_.Advance(50);
  ASSERT_TRUE(
      store_->SetAliases("churn", {{"champion", 3}, {"previous", 1}}, "api")
          .ok());
  EXPECT_EQ((*store_->GetAlias("churn", "champion"))->version, 3);
  EXPECT_EQ((*store_->GetAlias("churn", "previous"))->version, 1);

  auto history = store_->ListAliasHistory("churn");
  ASSERT_TRUE(history.ok()) << history.status();
  ASSERT_EQ(history->size(), 3u);
  const AliasHistoryRecord& first = (*history)[0];
  EXPECT_EQ(first.seq, 1);
  EXPECT_EQ(first.alias, "champion");
  EXPECT_EQ(first.from_version, 0);
  EXPECT_EQ(first.to_version, 1);
  EXPECT_EQ(first.actor, "cli");
  EXPECT_EQ((*history)[1].seq, 2);
  EXPECT_EQ((*history)[1].alias, "champion");
  EXPECT_EQ((*history)[1].from_version, 1);
  EXPECT_EQ((*history)[1].to_version, 3);
  EXPECT_EQ((*history)[1].actor, "api");
  EXPECT_EQ((*history)[1].at, clock_.NowMicros());
  EXPECT_EQ((*history)[2].alias, "previous");
  EXPECT_EQ((*history)[2].from_version, 0);
  EXPECT_EQ((*history)[2].to_version, 1);
  EXPECT_EQ((*history)[2].at, (*history)[1].at);
}

TEST_F(SqliteStoreTest, SetAliasesChangesNothingWhenOneMoveFails) {
  AddChurn();
  ASSERT_TRUE(store_->AddModelVersion(Model("churn", "m1")).ok());
  ASSERT_TRUE(store_->SetAlias("churn", "champion", 1, "cli").ok());
  std::map<std::string, int64_t> before = Counts();

  absl::Status missing =
      store_->SetAliases("churn", {{"previous", 1}, {"champion", 9}}, "cli");
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.message()), HasSubstr("model churn v9"));
  absl::Status twice =
      store_->SetAliases("churn", {{"champion", 1}, {"champion", 1}}, "cli");
  EXPECT_EQ(twice.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(twice.message()), HasSubstr("moved twice"));
  EXPECT_EQ(store_->SetAliases("churn", {}, "cli").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->ListAliasHistory("fraud").status().code(),
            absl::StatusCode::kNotFound);

  EXPECT_EQ(Counts(), before);
  EXPECT_FALSE(store_->GetAlias("churn", "previous")->has_value());
}

TEST_F(SqliteStoreTest, ConcurrentWritersGetDistinctVersionNumbers) {
  AddChurn();
  // A second store on the same directory, as a second process would have:
  // its writes contend for SQLite's write lock, not just our mutex.
  auto second = OpenSqliteStore(data_dir(), &clock_);
  ASSERT_TRUE(second.ok()) << second.status();
  constexpr int kThreads = 6;
  constexpr int kPerThread = 15;
  std::vector<std::vector<int>> assigned(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    Store* store = t % 2 == 0 ? store_.get() : second->get();
    threads.emplace_back([store, t, &assigned] {
      for (int i = 0; i < kPerThread; ++i) {
        auto v = store->AddModelVersion(
            Model("churn", std::to_string(t) + "/" + std::to_string(i)));
        ASSERT_TRUE(v.ok()) << v.status();
        assigned[t].push_back(v->version);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  std::set<int> all;
  for (const std::vector<int>& versions : assigned) {
    EXPECT_EQ(versions.size(), static_cast<size_t>(kPerThread));
    // Each writer sees its own versions increase.
    EXPECT_TRUE(std::is_sorted(versions.begin(), versions.end()));
    all.insert(versions.begin(), versions.end());
  }
  ASSERT_EQ(all.size(), static_cast<size_t>(kThreads * kPerThread));
  EXPECT_EQ(*all.begin(), 1);
  EXPECT_EQ(*all.rbegin(), kThreads * kPerThread);
  EXPECT_EQ(store_->ListModelVersions("churn")->size(),
            static_cast<size_t>(kThreads * kPerThread));
}

TEST_F(SqliteStoreTest, BusyDatabaseIsUnavailableAndReadsStillWork) {
  AddChurn();
  SqliteStoreOptions options;
  options.busy_timeout_ms = 20;
  Open(options);
  std::map<std::string, int64_t> before = Counts();
  {
    RawDatabase other_writer(data_dir());
    other_writer.Exec("BEGIN IMMEDIATE");
    auto added = store_->AddAppRevision(Revision("churn", "app: churn\n#3\n"));
    EXPECT_EQ(added.status().code(), absl::StatusCode::kUnavailable)
        << added.status();
    EXPECT_THAT(std::string(added.status().message()), HasSubstr("retry"));
    // WAL: readers are not blocked by a writer.
    EXPECT_EQ(store_->GetApp("churn")->current_revision, 2);
    other_writer.Exec("ROLLBACK");
  }
  EXPECT_EQ(Counts(), before);
  auto added = store_->AddAppRevision(Revision("churn", "app: churn\n#3\n"));
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_EQ(added->revision, 3);
}

TEST_F(SqliteStoreTest, UpgradesAFormatVersion4DirectoryWithNoTokens) {
  AddChurn();
  store_.reset();
  {
    // A directory written by the registry release: migrations 1-4.
    RawDatabase raw(data_dir());
    DowngradeTo(raw, 4);
  }
  Open();
  RawDatabase raw(data_dir());
  EXPECT_EQ(raw.QueryText("PRAGMA user_version"), "9");
  EXPECT_EQ(store_->GetApp("churn")->current_revision, 2);
  auto tokens = store_->ListTokens();
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_TRUE(tokens->empty());
}

TokenRecord Token(const std::string& id, const std::string& secret) {
  TokenRecord t;
  t.id = id;
  t.name = "ci";
  t.role = "operator";
  t.secret_sha256 = Sha256Hex(secret);
  t.created_at = 100;
  t.expires_at = 5000;
  t.created_by = "server";
  return t;
}

TEST_F(SqliteStoreTest, TokensAreStoredListedAndRevokedOnce) {
  ASSERT_TRUE(store_->AddToken(Token("tok-1", "a")).ok());
  ASSERT_TRUE(store_->AddToken(Token("tok-2", "b")).ok());
  EXPECT_EQ(store_->AddToken(Token("tok-1", "c")).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->AddToken(Token("tok-3", "a")).code(),
            absl::StatusCode::kAlreadyExists);
  TokenRecord bad = Token("tok-4", "d");
  bad.secret_sha256 = "d";
  EXPECT_EQ(store_->AddToken(bad).code(), absl::StatusCode::kInvalidArgument);

  auto revoked = store_->RevokeToken("tok-2", 777);
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  EXPECT_EQ(revoked->revoked_at, 777);
  EXPECT_EQ(revoked->name, "ci");
  EXPECT_EQ(store_->RevokeToken("tok-2", 778).status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto unknown = store_->RevokeToken("tok-9", 1);
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(unknown.status().message()),
              HasSubstr("slipway tokens list"));

  Open();
  auto tokens = store_->ListTokens();
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  ASSERT_EQ(tokens->size(), 2u);
  EXPECT_EQ((*tokens)[0].id, "tok-1");
  EXPECT_EQ((*tokens)[0].secret_sha256, Sha256Hex("a"));
  EXPECT_EQ((*tokens)[0].expires_at, 5000);
  EXPECT_EQ((*tokens)[0].revoked_at, 0);
  EXPECT_EQ((*tokens)[1].revoked_at, 777);
  EXPECT_EQ(Counts()["tokens"], 2);
}

TEST_F(SqliteStoreTest, AuditRecordsAreNumberedAndChained) {
  AuditEntry entry;
  entry.actor = "api:alice";
  entry.action = "alias.move";
  entry.app = "churn";
  entry.object = "alias churn/champion";
  entry.before_json = R"({"version":1})";
  entry.after_json = R"({"version":2})";
  auto first = store_->AppendAudit(entry);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->seq, 1);
  EXPECT_EQ(first->at, clock_.NowMicros());
  EXPECT_EQ(first->prev_hash, kAuditGenesisHash);
  EXPECT_EQ(first->hash, AuditRecordHash(*first));
  clock_.Advance(5);
  entry.actor = "run run-7";
  entry.action = "model.register";
  entry.object = "model churn v3";
  auto second = store_->AppendAudit(entry);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->seq, 2);
  EXPECT_EQ(second->prev_hash, first->hash);
  EXPECT_NE(second->hash, first->hash);

  AuditRecord changed = *second;
  changed.actor = "api:mallory";
  EXPECT_NE(AuditRecordHash(changed), second->hash);

  entry.object = "";
  EXPECT_EQ(store_->AppendAudit(entry).status().code(),
            absl::StatusCode::kInvalidArgument);

  Open();
  auto all = store_->ListAudit({});
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[1].hash, second->hash);
  EXPECT_EQ((*all)[1].before_json, R"({"version":1})");
  AuditFilter by_actor;
  by_actor.actor = "run run-7";
  EXPECT_EQ(store_->ListAudit(by_actor)->size(), 1u);
  AuditFilter by_object;
  by_object.object_prefix = "model churn";
  ASSERT_EQ(store_->ListAudit(by_object)->size(), 1u);
  EXPECT_EQ(store_->ListAudit(by_object)->front().seq, 2);
  AuditFilter after;
  after.after_seq = 1;
  after.limit = 5;
  EXPECT_EQ(store_->ListAudit(after)->front().seq, 2);
  AuditFilter none;
  none.action = "token.create";
  EXPECT_TRUE(store_->ListAudit(none)->empty());
}

ApprovalRecord Promotion(const std::string& app, int64_t expires_at) {
  ApprovalRecord a;
  a.app = app;
  a.kind = "promote";
  a.change_json = R"({"moves":[{"alias":"champion","version":2}]})";
  a.requested_by = "api:olga";
  a.requested_by_token = "tok-olga";
  a.request_comment = "better AUC";
  a.requested_at = 100;
  a.expires_at = expires_at;
  return a;
}

TEST_F(SqliteStoreTest, ApprovalsAreDecidedOnce) {
  AddChurn();
  auto first = store_->AddApproval(Promotion("churn", 1000));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->id, 1);
  EXPECT_EQ(first->state, "pending");
  auto second = store_->AddApproval(Promotion("churn", 2000));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->id, 2);
  EXPECT_EQ(store_->AddApproval(Promotion("nope", 1)).status().code(),
            absl::StatusCode::kNotFound);
  ApprovalRecord odd = Promotion("churn", 1);
  odd.kind = "delete";
  EXPECT_EQ(store_->AddApproval(odd).status().code(),
            absl::StatusCode::kInvalidArgument);

  ApprovalRecord decision;
  decision.id = 1;
  decision.state = "rejected";
  decision.decided_by = "api:ada";
  decision.decided_by_token = "tok-ada";
  decision.decision_comment = "needs a fairness check";
  decision.decided_at = 500;
  auto decided = store_->DecideApproval(decision);
  ASSERT_TRUE(decided.ok()) << decided.status();
  EXPECT_EQ(decided->state, "rejected");
  EXPECT_EQ(decided->request_comment, "better AUC");
  decision.state = "approved";
  auto again = store_->DecideApproval(decision);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(again.status().message()),
              HasSubstr("already rejected by api:ada"));
  decision.id = 9;
  EXPECT_EQ(store_->DecideApproval(decision).status().code(),
            absl::StatusCode::kNotFound);
  decision.id = 2;
  decision.state = "maybe";
  EXPECT_EQ(store_->DecideApproval(decision).status().code(),
            absl::StatusCode::kInvalidArgument);

  Open();
  auto pending = store_->ListApprovals("churn", "pending");
  ASSERT_TRUE(pending.ok()) << pending.status();
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ(pending->front().id, 2);
  auto all = store_->ListApprovals("", "");
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ(all->front().id, 2);
  EXPECT_EQ(store_->GetApproval(1)->decision_comment, "needs a fairness check");
  EXPECT_EQ(store_->GetApproval(3).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(SqliteStoreTest, DeliveriesComeDueAndAreUpdated) {
  DeliveryRecord d;
  d.app = "churn";
  d.audit_seq = 4;
  d.event = "alias.moved";
  d.url = "http://127.0.0.1:9/hook";
  d.payload_json = R"({"event":"alias.moved"})";
  d.signature = "sha256=00";
  d.state = "pending";
  d.next_attempt_at = 100;
  DeliveryRecord later = d;
  later.next_attempt_at = 300;
  auto stored = store_->AddDeliveries({d, later});
  ASSERT_TRUE(stored.ok()) << stored.status();
  ASSERT_EQ(stored->size(), 2u);
  EXPECT_EQ((*stored)[0].id, 1);
  EXPECT_EQ((*stored)[1].id, 2);

  EXPECT_TRUE(store_->DueDeliveries(99, 10)->empty());
  auto due = store_->DueDeliveries(200, 10);
  ASSERT_EQ(due->size(), 1u);
  DeliveryRecord attempt = due->front();
  attempt.attempts = 1;
  attempt.last_status = 503;
  attempt.last_error = "HTTP 503";
  attempt.next_attempt_at = 400;
  ASSERT_TRUE(store_->UpdateDelivery(attempt).ok());
  EXPECT_EQ(store_->DueDeliveries(350, 10)->size(), 1u);
  EXPECT_EQ(store_->DueDeliveries(350, 10)->front().id, 2);
  attempt.state = "delivered";
  attempt.delivered_at = 410;
  ASSERT_TRUE(store_->UpdateDelivery(attempt).ok());
  EXPECT_EQ(store_->DueDeliveries(1000, 10)->size(), 1u);
  attempt.id = 42;
  EXPECT_EQ(store_->UpdateDelivery(attempt).code(),
            absl::StatusCode::kNotFound);

  auto listed = store_->ListDeliveries("churn", 0);
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ(listed->back().state, "delivered");
  EXPECT_EQ(listed->back().attempts, 1);
  EXPECT_EQ(listed->back().payload_json, R"({"event":"alias.moved"})");
  EXPECT_EQ(store_->ListDeliveries("other", 0)->size(), 0u);
  EXPECT_EQ(store_->ListDeliveries("", 1)->size(), 1u);
}

PredictionRecord Prediction(const std::string& request_id,
                            const std::string& app, int64_t at) {
  PredictionRecord p;
  p.request_id = request_id;
  p.app = app;
  p.version = 1;
  p.at = at;
  p.prediction_json = "[0.8]";
  return p;
}

FeedbackRecord Feedback(const std::string& request_id, const std::string& app,
                        const std::string& label, int64_t received_at) {
  FeedbackRecord f;
  f.request_id = request_id;
  f.app = app;
  f.label = label;
  f.received_at = received_at;
  return f;
}

TEST_F(SqliteStoreTest, UpgradesAFormatVersion7DirectoryWithoutMonitoring) {
  AddChurn();
  ModelVersionRecord model = Model("churn", "model 1");
  model.baseline_sha256 = Sha256Hex("baseline");
  ASSERT_TRUE(store_->AddModelVersion(model).ok());
  store_.reset();
  {
    // A directory written by the monitoring foundations release: 1-7.
    RawDatabase raw(data_dir());
    DowngradeTo(raw, 7);
  }
  Open();
  RawDatabase raw(data_dir());
  EXPECT_EQ(raw.QueryText("PRAGMA user_version"), "9");
  EXPECT_EQ(raw.QueryText("PRAGMA integrity_check"), "ok");
  EXPECT_EQ(store_->GetModelVersion("churn", 1)->baseline_sha256,
            Sha256Hex("baseline"));
  EXPECT_EQ(store_->AddPredictions({Prediction("r1", "churn", 100)}).value(),
            1);
  EXPECT_TRUE(store_->ListAlerts("churn")->empty());
  EXPECT_EQ(Counts()["prediction_chunks"], 1);
}

// A request id as serving issues them: the millisecond in 12 hex digits,
// then 8 more (core/ids.h).
std::string ServingId(int64_t millis, uint32_t random) {
  char id[32];
  std::snprintf(id, sizeof(id), "req-%012llx%08x",
                static_cast<unsigned long long>(millis), random);
  return id;
}

TEST_F(SqliteStoreTest, UpgradesAFormatVersion8DirectoryKeepingItsPredictionLog) {
  AddChurn();
  store_.reset();
  const std::string labeled = ServingId(1'700'000'000'000, 1);
  const std::string unlabeled = ServingId(1'700'000'000'500, 2);
  {
    // The prediction log one row per prediction, as format 8 kept it.
    RawDatabase raw(data_dir());
    DowngradeTo(raw, 8);
    raw.Exec("INSERT INTO predictions VALUES ('" + labeled +
             "', 'churn', 1, 1700000000000000, '[0.8]', '{\"age\":41}')");
    raw.Exec("INSERT INTO predictions VALUES ('" + unlabeled +
             "', 'churn', 1, 1700000000500000, '[0.3]', '')");
    raw.Exec("INSERT INTO feedback VALUES ('" + labeled +
             "', 'churn', '1', '{\"revenue\":2}', 1700000001000000)");
  }
  Open();
  RawDatabase raw(data_dir());
  EXPECT_EQ(raw.QueryText("PRAGMA user_version"), "9");
  EXPECT_EQ(raw.QueryText("PRAGMA integrity_check"), "ok");
  EXPECT_EQ(raw.QueryText("SELECT sum(rows) FROM prediction_chunks"), "2");
  auto listed = store_->ListLabeled("churn", 0, 2'000'000'000'000'000);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].request_id, labeled);
  EXPECT_EQ((*listed)[0].prediction_json, "[0.8]");
  EXPECT_EQ((*listed)[0].predicted_at, 1'700'000'000'000'000);
  EXPECT_EQ((*listed)[0].kpis_json, R"({"revenue":2})");
  // The migrated predictions are found by their ids.
  auto outcomes = store_->AddFeedback(
      {Feedback(unlabeled, "churn", "0", 1'700'000'002'000'000),
       Feedback(labeled, "churn", "0", 1'700'000'002'000'000)});
  ASSERT_TRUE(outcomes.ok()) << outcomes.status();
  EXPECT_THAT(*outcomes, ElementsAre(FeedbackOutcome::kAccepted,
                                     FeedbackOutcome::kDuplicate));
}

TEST_F(SqliteStoreTest, PredictionsAreStoredInChunksPerAppAndMinute) {
  EXPECT_EQ(store_->AddPredictions({}).value(), 0);
  const int64_t t0 = 1'700'000'000'000;  // ms
  PredictionRecord first = Prediction(ServingId(t0, 1), "churn", t0 * 1000);
  first.inputs_json = R"({"age":41})";
  std::vector<PredictionRecord> batch = {
      first, Prediction(ServingId(t0 + 5, 2), "fraud", t0 * 1000 + 5000),
      Prediction(ServingId(t0 + 10, 3), "churn", t0 * 1000 + 10000),
      // More than a minute after the chunk's first id: a chunk of its own.
      Prediction(ServingId(t0 + 60'001, 4), "churn", t0 * 1000 + 60'001'000)};
  auto stored = store_->AddPredictions(batch);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(*stored, 4);
  EXPECT_EQ(Counts()["prediction_chunks"], 3);
  RawDatabase raw(data_dir());
  EXPECT_EQ(raw.QueryText("SELECT group_concat(app || ':' || rows || ':' || "
                          "(last_ms - first_ms), ' ') FROM (SELECT * FROM "
                          "prediction_chunks ORDER BY id)"),
            "churn:2:10 fraud:1:0 churn:1:0");
  EXPECT_EQ(raw.QueryText("SELECT records FROM prediction_chunks WHERE id = 1"),
            first.request_id + "\t1\t1700000000000000\t[0.8]\t{\"age\":41}\n" +
                batch[2].request_id + "\t1\t1700000000010000\t[0.8]\t\n");

  // A field that would break a chunk's line is refused, nothing stored.
  PredictionRecord tab = Prediction("req\t1", "churn", t0 * 1000);
  auto refused = store_->AddPredictions({Prediction("ok", "churn", 1), tab});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("tab or a line break"));
  EXPECT_EQ(Counts()["prediction_chunks"], 3);
}

TEST_F(SqliteStoreTest, FeedbackFindsServingIdsByTheirTime) {
  AddChurn();
  // 2,000 predictions over ten minutes, in batches as the log writes them.
  const int64_t t0 = 1'700'000'000'000;
  std::vector<std::string> ids;
  for (int batch = 0; batch < 4; ++batch) {
    std::vector<PredictionRecord> predictions;
    for (int i = 0; i < 500; ++i) {
      const int64_t ms = t0 + (batch * 500 + i) * 300;
      ids.push_back(ServingId(ms, static_cast<uint32_t>(i)));
      // Rows of a request of several rows: "<request id>/<row>".
      if (i % 3 == 0) {
        ids.back().push_back('/');
        ids.back() += std::to_string(i % 4);
      }
      PredictionRecord p = Prediction(ids.back(), "churn", ms * 1000);
      p.prediction_json = std::to_string(batch * 500 + i);
      p.prediction_json.insert(0, 1, '[');
      p.prediction_json.push_back(']');
      predictions.push_back(p);
    }
    ASSERT_EQ(store_->AddPredictions(predictions).value(), 500);
  }
  std::vector<FeedbackRecord> feedback;
  for (size_t i = 0; i < ids.size(); i += 7) {
    feedback.push_back(Feedback(ids[i], "churn", "1", 5));
  }
  // Same millisecond, another random part: never logged.
  feedback.push_back(Feedback(ServingId(t0 + 300, 999), "churn", "1", 5));
  auto outcomes = store_->AddFeedback(feedback);
  ASSERT_TRUE(outcomes.ok()) << outcomes.status();
  for (size_t k = 0; k + 1 < feedback.size(); ++k) {
    EXPECT_EQ((*outcomes)[k], FeedbackOutcome::kAccepted) << k;
  }
  EXPECT_EQ(outcomes->back(), FeedbackOutcome::kUnknownRequest);
  auto labeled = store_->ListLabeled("churn", 0, 10);
  ASSERT_TRUE(labeled.ok()) << labeled.status();
  ASSERT_EQ(labeled->size(), feedback.size() - 1);
  for (const LabeledRecord& r : *labeled) {
    const size_t i = static_cast<size_t>(
        std::find(ids.begin(), ids.end(), r.request_id) - ids.begin());
    ASSERT_LT(i, ids.size());
    EXPECT_EQ(r.prediction_json, "[" + std::to_string(i) + "]");
    EXPECT_EQ(r.predicted_at, (t0 + static_cast<int64_t>(i) * 300) * 1000);
  }
}

TEST_F(SqliteStoreTest, FeedbackOutcomesAreAcceptedDuplicateUnknownWrongApp) {
  AddChurn();
  ASSERT_TRUE(store_
                  ->AddPredictions({Prediction("r1", "churn", 100),
                                    Prediction("r2", "churn", 110),
                                    Prediction("f1", "fraud", 120)})
                  .ok());
  FeedbackRecord r1 = Feedback("r1", "churn", "1", 500);
  r1.kpis_json = R"({"revenue":12.5})";
  auto outcomes = store_->AddFeedback({r1, Feedback("r1", "churn", "0", 501),
                                       Feedback("nope", "churn", "1", 502),
                                       Feedback("f1", "churn", "1", 503),
                                       Feedback("r2", "churn", "0", 504)});
  ASSERT_TRUE(outcomes.ok()) << outcomes.status();
  EXPECT_THAT(
      *outcomes,
      ElementsAre(FeedbackOutcome::kAccepted, FeedbackOutcome::kDuplicate,
                  FeedbackOutcome::kUnknownRequest, FeedbackOutcome::kWrongApp,
                  FeedbackOutcome::kAccepted));
  // Late duplicates keep the first label.
  outcomes = store_->AddFeedback({Feedback("r1", "churn", "0", 900)});
  ASSERT_TRUE(outcomes.ok()) << outcomes.status();
  EXPECT_THAT(*outcomes, ElementsAre(FeedbackOutcome::kDuplicate));
  EXPECT_TRUE(store_->AddFeedback({})->empty());
  EXPECT_EQ(Counts()["feedback"], 2);

  auto labeled = store_->ListLabeled("churn", 0, 1000);
  ASSERT_TRUE(labeled.ok()) << labeled.status();
  ASSERT_EQ(labeled->size(), 2u);
  const LabeledRecord& first = (*labeled)[0];
  EXPECT_EQ(first.request_id, "r1");
  EXPECT_EQ(first.version, 1);
  EXPECT_EQ(first.predicted_at, 100);
  EXPECT_EQ(first.prediction_json, "[0.8]");
  EXPECT_EQ(first.label, "1");
  EXPECT_EQ(first.kpis_json, R"({"revenue":12.5})");
  EXPECT_EQ(first.received_at, 500);
  EXPECT_EQ((*labeled)[1].request_id, "r2");
  EXPECT_EQ((*labeled)[1].kpis_json, "{}");
  EXPECT_STREQ(FeedbackOutcomeName(FeedbackOutcome::kWrongApp), "wrong_app");
}

// "p7": built by appending, as GCC 12 warns (-Wrestrict) on some
// `const char* + std::string` chains.
std::string RequestId(char prefix, int i) {
  std::string id(1, prefix);
  id += std::to_string(i);
  return id;
}

TEST_F(SqliteStoreTest, AThousandFeedbackItemsWithMixedOutcomesInOneBatch) {
  AddChurn();
  std::vector<PredictionRecord> predictions;
  for (int i = 0; i < 600; ++i) {
    predictions.push_back(Prediction(RequestId('p', i), "churn", i));
  }
  for (int i = 0; i < 100; ++i) {
    predictions.push_back(Prediction(RequestId('q', i), "fraud", i));
  }
  ASSERT_EQ(store_->AddPredictions(predictions).value(), 700);
  // Labels sent earlier for p0..p49.
  std::vector<FeedbackRecord> earlier;
  for (int i = 0; i < 50; ++i) {
    earlier.push_back(Feedback(RequestId('p', i), "churn", "1", 10));
  }
  ASSERT_EQ(store_->AddFeedback(earlier)->size(), 50u);

  std::vector<FeedbackRecord> batch;
  for (int i = 0; i < 1000; ++i) {
    std::string id;
    if (i < 500) {
      id = RequestId('p', i);  // p0..p49 already labeled
    } else if (i < 600) {
      id = RequestId('p', i - 500);  // again in the batch
    } else if (i < 700) {
      id = RequestId('q', i - 600);  // fraud's predictions
    } else if (i < 800) {
      id = RequestId('x', i);  // never logged
    } else {
      id = RequestId('p', 500 + (i - 800) % 100);  // twice each
    }
    batch.push_back(Feedback(id, "churn", std::to_string(i % 2), 1000 + i));
  }
  std::mt19937 rng(7);
  std::shuffle(batch.begin(), batch.end(), rng);

  // The expected outcome of each item, in batch order.
  std::set<std::string> labeled;
  for (int i = 0; i < 50; ++i) labeled.insert(RequestId('p', i));
  std::vector<FeedbackOutcome> expected;
  std::map<FeedbackOutcome, int> tally;
  for (const FeedbackRecord& f : batch) {
    FeedbackOutcome outcome;
    if (f.request_id[0] == 'x') {
      outcome = FeedbackOutcome::kUnknownRequest;
    } else if (f.request_id[0] == 'q') {
      outcome = FeedbackOutcome::kWrongApp;
    } else if (!labeled.insert(f.request_id).second) {
      outcome = FeedbackOutcome::kDuplicate;
    } else {
      outcome = FeedbackOutcome::kAccepted;
    }
    expected.push_back(outcome);
    ++tally[outcome];
  }
  EXPECT_EQ(tally[FeedbackOutcome::kAccepted], 550);
  EXPECT_EQ(tally[FeedbackOutcome::kDuplicate], 250);
  EXPECT_EQ(tally[FeedbackOutcome::kWrongApp], 100);
  EXPECT_EQ(tally[FeedbackOutcome::kUnknownRequest], 100);

  auto outcomes = store_->AddFeedback(batch);
  ASSERT_TRUE(outcomes.ok()) << outcomes.status();
  EXPECT_EQ(*outcomes, expected);
  EXPECT_EQ(Counts()["feedback"], 600);
  // The label stored for each prediction is the first one sent.
  std::map<std::string, std::string> first_label;
  for (const FeedbackRecord& f : batch)
    first_label.emplace(f.request_id, f.label);
  auto stored = store_->ListLabeled("churn", 1000, 2000);
  ASSERT_TRUE(stored.ok()) << stored.status();
  ASSERT_EQ(stored->size(), 550u);
  for (const LabeledRecord& r : *stored) {
    EXPECT_EQ(r.label, first_label[r.request_id]) << r.request_id;
  }
}

TEST_F(SqliteStoreTest, AcknowledgedFeedbackSurvivesSigkill) {
  AddChurn();
  ASSERT_TRUE(store_->AddPredictions({Prediction("r1", "churn", 100)}).ok());
  // SQLite connections must not cross fork(): close ours first.
  store_.reset();
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(pipe_fds[0]);
    auto store = OpenSqliteStore(data_dir(), &clock_);
    char acknowledged = 'n';
    if (store.ok()) {
      auto outcomes =
          (*store)->AddFeedback({Feedback("r1", "churn", "1", 500)});
      if (outcomes.ok() && outcomes->size() == 1 &&
          (*outcomes)[0] == FeedbackOutcome::kAccepted) {
        acknowledged = 'y';
      }
    }
    if (write(pipe_fds[1], &acknowledged, 1) != 1) _exit(1);
    // Killed here, connection open, nothing closed.
    while (true) pause();
  }
  close(pipe_fds[1]);
  char acknowledged = 0;
  ASSERT_EQ(read(pipe_fds[0], &acknowledged, 1), 1);
  close(pipe_fds[0]);
  ASSERT_EQ(kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  ASSERT_EQ(acknowledged, 'y');

  Open();
  auto labeled = store_->ListLabeled("churn", 0, 1000);
  ASSERT_TRUE(labeled.ok()) << labeled.status();
  ASSERT_EQ(labeled->size(), 1u);
  EXPECT_EQ(labeled->front().request_id, "r1");
  EXPECT_EQ(labeled->front().label, "1");
}

TEST_F(SqliteStoreTest, ListLabeledIsTheFeedbackReceivedInARange) {
  AddChurn();
  ASSERT_TRUE(store_->AddAppRevision(Revision("fraud", "app: fraud\n")).ok());
  PredictionRecord v2 = Prediction("b", "churn", 20);
  v2.version = 2;
  ASSERT_TRUE(store_
                  ->AddPredictions({Prediction("a", "churn", 10), v2,
                                    Prediction("c", "churn", 30),
                                    Prediction("d", "fraud", 40)})
                  .ok());
  ASSERT_TRUE(store_
                  ->AddFeedback({Feedback("c", "churn", "0", 300),
                                 Feedback("a", "churn", "1", 100),
                                 Feedback("b", "churn", "1", 200),
                                 Feedback("d", "fraud", "1", 200)})
                  .ok());
  auto labeled = store_->ListLabeled("churn", 100, 300);
  ASSERT_TRUE(labeled.ok()) << labeled.status();
  ASSERT_EQ(labeled->size(), 2u);
  EXPECT_EQ((*labeled)[0].request_id, "a");
  EXPECT_EQ((*labeled)[1].request_id, "b");
  EXPECT_EQ((*labeled)[1].version, 2);
  EXPECT_EQ((*labeled)[1].predicted_at, 20);
  EXPECT_EQ(store_->ListLabeled("churn", 300, 301)->size(), 1u);
  EXPECT_TRUE(store_->ListLabeled("churn", 301, 1000)->empty());
  EXPECT_EQ(store_->ListLabeled("fraud", 0, 1000)->size(), 1u);
  auto unknown = store_->ListLabeled("nope", 0, 1000);
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(unknown.status().message()), HasSubstr("'nope'"));
}

TEST_F(SqliteStoreTest, DeletePredictionsBeforeTakesTheirFeedbackToo) {
  AddChurn();
  // Three writer batches: a chunk each.
  ASSERT_TRUE(store_
                  ->AddPredictions({Prediction("a", "churn", 100),
                                    Prediction("b", "churn", 200),
                                    Prediction("d", "fraud", 100)})
                  .ok());
  ASSERT_TRUE(store_
                  ->AddPredictions({Prediction("c", "churn", 250),
                                    Prediction("e", "churn", 350)})
                  .ok());
  ASSERT_TRUE(store_
                  ->AddFeedback({Feedback("a", "churn", "1", 400),
                                 Feedback("c", "churn", "0", 400),
                                 Feedback("d", "fraud", "1", 400)})
                  .ok());
  auto deleted = store_->DeletePredictionsBefore("churn", 300);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  // a and b; c's chunk straddles 300 and stays whole, with c's feedback.
  EXPECT_EQ(*deleted, 2);
  EXPECT_EQ(Counts()["prediction_chunks"], 2);
  EXPECT_EQ(Counts()["feedback"], 2);
  auto labeled = store_->ListLabeled("churn", 0, 1000);
  ASSERT_EQ(labeled->size(), 1u);
  EXPECT_EQ(labeled->front().request_id, "c");
  EXPECT_EQ(store_->DeletePredictionsBefore("churn", 300).value(), 0);
  // Feedback for a deleted prediction is now for an unknown request.
  EXPECT_THAT(*store_->AddFeedback({Feedback("a", "churn", "1", 500)}),
              ElementsAre(FeedbackOutcome::kUnknownRequest));
  EXPECT_EQ(store_->DeletePredictionsBefore("churn", 351).value(), 2);
  EXPECT_EQ(Counts()["feedback"], 1);  // fraud's
}

MonitorWindowRecord Window(int version, int64_t start_at, int64_t rows) {
  MonitorWindowRecord w;
  w.app = "churn";
  w.version = version;
  w.start_at = start_at;
  w.end_at = start_at + 300;
  w.rows = rows;
  w.profile_json = R"({"features":{}})";
  w.drift_json = R"({"age":{"psi":0.02}})";
  w.kpis_json = R"({"rows":3})";
  return w;
}

TEST_F(SqliteStoreTest, MonitorWindowsAreReplacedAndListedByOverlap) {
  AddChurn();
  ASSERT_TRUE(store_->PutMonitorWindow(Window(1, 0, 10)).ok());
  ASSERT_TRUE(store_->PutMonitorWindow(Window(2, 300, 20)).ok());
  ASSERT_TRUE(store_->PutMonitorWindow(Window(1, 300, 30)).ok());
  ASSERT_TRUE(store_->PutMonitorWindow(Window(1, 300, 31)).ok());
  EXPECT_EQ(Counts()["monitor_windows"], 3);

  auto windows = store_->ListMonitorWindows("churn", 350, 400);
  ASSERT_TRUE(windows.ok()) << windows.status();
  ASSERT_EQ(windows->size(), 2u);
  EXPECT_EQ((*windows)[0].version, 1);
  EXPECT_EQ((*windows)[0].rows, 31);
  EXPECT_EQ((*windows)[0].start_at, 300);
  EXPECT_EQ((*windows)[0].end_at, 600);
  EXPECT_EQ((*windows)[0].profile_json, R"({"features":{}})");
  EXPECT_EQ((*windows)[0].drift_json, R"({"age":{"psi":0.02}})");
  EXPECT_EQ((*windows)[0].kpis_json, R"({"rows":3})");
  EXPECT_EQ((*windows)[1].version, 2);
  // [from, to) overlaps a window when it starts before `to` and ends after
  // `from`.
  windows = store_->ListMonitorWindows("churn", 0, 300);
  ASSERT_EQ(windows->size(), 1u);
  EXPECT_EQ(windows->front().start_at, 0);
  EXPECT_EQ(store_->ListMonitorWindows("churn", 0, 1000)->size(), 3u);
  EXPECT_TRUE(store_->ListMonitorWindows("churn", 600, 900)->empty());

  MonitorWindowRecord backwards = Window(1, 900, 1);
  backwards.end_at = 900;
  EXPECT_EQ(store_->PutMonitorWindow(backwards).code(),
            absl::StatusCode::kInvalidArgument);
  MonitorWindowRecord stranger = Window(1, 900, 1);
  stranger.app = "nope";
  EXPECT_EQ(store_->PutMonitorWindow(stranger).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->ListMonitorWindows("nope", 0, 1).status().code(),
            absl::StatusCode::kNotFound);
}

AlertRecord Alert(const std::string& app, const std::string& rule,
                  const std::string& state, double value) {
  AlertRecord a;
  a.app = app;
  a.rule = rule;
  a.state = state;
  a.since = 600;
  a.updated_at = 900;
  a.value = value;
  a.alert_json = R"({"rule":")" + rule + R"("})";
  return a;
}

TEST_F(SqliteStoreTest, AlertsAreOnePerRuleAndEngineStatesOnePerApp) {
  AddChurn();
  ASSERT_TRUE(store_->AddAppRevision(Revision("fraud", "app: fraud\n")).ok());
  ASSERT_TRUE(
      store_->PutAlert(Alert("churn", "drift:age", "pending", 0.3)).ok());
  ASSERT_TRUE(
      store_->PutAlert(Alert("churn", "drift:age", "firing", 0.4)).ok());
  ASSERT_TRUE(store_
                  ->PutAlert(Alert("churn", "accuracy", "resolved",
                                   std::numeric_limits<double>::quiet_NaN()))
                  .ok());
  ASSERT_TRUE(store_->PutAlert(Alert("fraud", "accuracy", "firing", 0.5)).ok());
  EXPECT_EQ(store_->PutAlert(Alert("churn", "x", "asleep", 1)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->PutAlert(Alert("nope", "x", "firing", 1)).code(),
            absl::StatusCode::kNotFound);

  Open();
  auto churn = store_->ListAlerts("churn");
  ASSERT_TRUE(churn.ok()) << churn.status();
  ASSERT_EQ(churn->size(), 2u);
  EXPECT_EQ((*churn)[0].rule, "accuracy");
  EXPECT_TRUE(std::isnan((*churn)[0].value));
  EXPECT_EQ((*churn)[1].rule, "drift:age");
  EXPECT_EQ((*churn)[1].state, "firing");
  EXPECT_EQ((*churn)[1].value, 0.4);
  EXPECT_EQ((*churn)[1].since, 600);
  EXPECT_EQ((*churn)[1].updated_at, 900);
  EXPECT_EQ((*churn)[1].alert_json, R"({"rule":"drift:age"})");
  auto all = store_->ListAlerts("");
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ(all->back().app, "fraud");
  EXPECT_EQ(store_->ListAlerts("nope").status().code(),
            absl::StatusCode::kNotFound);

  auto none = store_->GetAlertEngineState("churn");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->has_value());
  ASSERT_TRUE(
      store_->PutAlertEngineState({"churn", R"({"version":1})", 100}).ok());
  ASSERT_TRUE(
      store_->PutAlertEngineState({"churn", R"({"version":1,"rules":[]})", 200})
          .ok());
  EXPECT_EQ(store_->PutAlertEngineState({"nope", "{}", 1}).code(),
            absl::StatusCode::kNotFound);
  Open();
  auto state = store_->GetAlertEngineState("churn");
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_TRUE(state->has_value());
  EXPECT_EQ((*state)->state_json, R"({"version":1,"rules":[]})");
  EXPECT_EQ((*state)->updated_at, 200);
  EXPECT_FALSE(store_->GetAlertEngineState("fraud")->has_value());
  EXPECT_EQ(Counts()["alert_engines"], 1);
}

}  // namespace
}  // namespace slipway
