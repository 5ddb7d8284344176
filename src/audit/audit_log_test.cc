#include "audit/audit_log.h"

#include <sqlite3.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/filesystem.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/sqlite_store.h"
#include "testing/fake_clock.h"
#include "testing/forwarding_filesystem.h"
#include "testing/temp_dir.h"

namespace slipway {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The local filesystem, except that WriteFileAtomic fails while
// `fail_atomic_writes` is set (a full disk, a read-only data directory).
class FlakyFilesystem : public ForwardingFilesystem {
 public:
  absl::Status WriteFileAtomic(const std::string& path,
                               std::string_view contents) override {
    if (fail_atomic_writes) {
      return absl::ResourceExhaustedError("no space left on device");
    }
    return base()->WriteFileAtomic(path, contents);
  }

  std::atomic<bool> fail_atomic_writes{false};
};

class RecordingObserver : public AuditObserver {
 public:
  void OnAudit(const AuditRecord& record) override {
    seqs.push_back(record.seq);
  }
  std::vector<int64_t> seqs;  // only written under the log's lock
};

AuditEntry Entry(const std::string& actor, const std::string& action,
                 const std::string& app, const std::string& object) {
  AuditEntry e;
  e.actor = actor;
  e.action = action;
  e.app = app;
  e.object = object;
  return e;
}

std::string HeadLine(int64_t count, const std::string& hash) {
  return "slipway-audit-head v1 " + std::to_string(count) + " " + hash + "\n";
}

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = OpenSqliteStore(dir_.path(), &clock_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    head_path_ = JoinPath(dir_.path(), kAuditHeadFile);
    Reopen();
  }

  void Reopen() {
    log_.reset();
    auto log = AuditLog::Open(store_.get(), &fs_, head_path_);
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = *std::move(log);
  }

  AuditRecord Record(const AuditEntry& entry) {
    clock_.Advance(1'000'000);
    auto record = log_->Record(entry);
    EXPECT_TRUE(record.ok()) << record.status();
    return record.ok() ? *record : AuditRecord{};
  }

  // Five records: two apps, three actors.
  void RecordFive() {
    Record(Entry("api:alice", "app.apply", "churn", "app churn revision 1"));
    Record(Entry("run run-1", "model.register", "churn", "model churn v1"));
    Record(Entry("api:alice", "alias.move", "churn", "alias churn@prod"));
    Record(Entry("api:bob", "app.apply", "fraud", "app fraud revision 1"));
    Record(Entry("server", "token.create", "", "token tok-1"));
  }

  std::string HeadFile() {
    auto text = LocalFilesystem()->ReadFile(head_path_);
    EXPECT_TRUE(text.ok()) << text.status();
    return text.ok() ? *text : "";
  }

  std::vector<AuditRecord> All() {
    auto records = log_->List(AuditFilter{});
    EXPECT_TRUE(records.ok()) << records.status();
    return records.ok() ? *records : std::vector<AuditRecord>{};
  }

  AuditVerification Verify() {
    auto v = log_->Verify();
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? *v : AuditVerification{};
  }

  // Runs `sql` on slipway.db through a second connection, as someone with
  // access to the data directory could.
  void Sql(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(JoinPath(dir_.path(), "slipway.db").c_str(), &db),
              SQLITE_OK);
    char* error = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
    std::string message = error ? error : "";
    sqlite3_free(error);
    sqlite3_close(db);
    ASSERT_EQ(rc, SQLITE_OK) << message;
  }

  // Rewrites every record's actor, prev_hash and hash so the chain is
  // consistent again after `edit` changed a record's contents.
  void RehashChain() {
    std::string prev = kAuditGenesisHash;
    std::string sql = "BEGIN;";
    for (AuditRecord r : All()) {
      r.prev_hash = prev;
      r.hash = AuditRecordHash(r);
      sql += "UPDATE audit_log SET actor = '" + r.actor + "', prev_hash = '" +
             r.prev_hash + "', hash = '" + r.hash +
             "' WHERE seq = " + std::to_string(r.seq) + ";";
      prev = r.hash;
    }
    sql += "COMMIT;";
    Sql(sql);
  }

  TempDir dir_;
  FakeClock clock_;
  FlakyFilesystem fs_;
  std::unique_ptr<Store> store_;
  std::string head_path_;
  std::unique_ptr<AuditLog> log_;
};

TEST_F(AuditLogTest, OpenOnAnEmptyTableWritesTheGenesisHead) {
  EXPECT_EQ(HeadFile(), HeadLine(0, kAuditGenesisHash));
  AuditVerification v = Verify();
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.records, 0);
  EXPECT_EQ(v.head_hash, kAuditGenesisHash);
}

TEST_F(AuditLogTest, RecordsChainAndMoveTheHead) {
  AuditEntry entry =
      Entry("api:alice", "alias.move", "churn", "alias churn@prod");
  entry.before_json = R"({"version": 2})";
  entry.after_json = R"({"version": 3})";
  AuditRecord first = Record(entry);
  EXPECT_EQ(first.seq, 1);
  EXPECT_EQ(first.at, clock_.NowMicros());
  EXPECT_EQ(first.prev_hash, kAuditGenesisHash);
  EXPECT_EQ(first.hash, AuditRecordHash(first));
  EXPECT_EQ(HeadFile(), HeadLine(1, first.hash));

  AuditRecord second =
      Record(Entry("api:alice", "token.revoke", "", "token tok-9"));
  EXPECT_EQ(second.seq, 2);
  EXPECT_EQ(second.prev_hash, first.hash);
  EXPECT_EQ(HeadFile(), HeadLine(2, second.hash));

  std::vector<AuditRecord> all = All();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].before_json, R"({"version": 2})");
  EXPECT_EQ(all[0].after_json, R"({"version": 3})");
  EXPECT_EQ(all[1].before_json, "null");
}

TEST_F(AuditLogTest, ListFilters) {
  RecordFive();
  // The seqs List returns for a filter that `set` fills in.
  auto seqs = [&](auto set) {
    AuditFilter filter;
    set(filter);
    std::vector<int64_t> out;
    auto records = log_->List(filter);
    EXPECT_TRUE(records.ok()) << records.status();
    if (records.ok()) {
      for (const AuditRecord& r : *records) out.push_back(r.seq);
    }
    return out;
  };
  EXPECT_THAT(seqs([](AuditFilter&) {}), ElementsAre(1, 2, 3, 4, 5));
  EXPECT_THAT(seqs([](AuditFilter& f) { f.app = "churn"; }),
              ElementsAre(1, 2, 3));
  EXPECT_THAT(seqs([](AuditFilter& f) { f.actor = "api:alice"; }),
              ElementsAre(1, 3));
  EXPECT_THAT(seqs([](AuditFilter& f) { f.action = "app.apply"; }),
              ElementsAre(1, 4));
  EXPECT_THAT(seqs([](AuditFilter& f) { f.object_prefix = "app "; }),
              ElementsAre(1, 4));
  EXPECT_THAT(seqs([](AuditFilter& f) { f.after_seq = 3; }), ElementsAre(4, 5));
  EXPECT_THAT(seqs([](AuditFilter& f) { f.limit = 2; }), ElementsAre(1, 2));
  EXPECT_THAT(seqs([](AuditFilter& f) {
                f.app = "churn";
                f.after_seq = 1;
                f.limit = 1;
              }),
              ElementsAre(2));
  EXPECT_THAT(seqs([](AuditFilter& f) { f.app = "nope"; }), ElementsAre());
}

TEST_F(AuditLogTest, RejectsEntriesThatCannotBeRecordedWithoutRecording) {
  AuditEntry bad_json = Entry("api:alice", "app.apply", "churn", "app churn");
  bad_json.after_json = "{not json";
  auto record = log_->Record(bad_json);
  EXPECT_EQ(record.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(record.status().message(), HasSubstr("after_json"));

  auto no_actor = log_->Record(Entry("", "app.apply", "churn", "app churn"));
  EXPECT_EQ(no_actor.status().code(), absl::StatusCode::kInvalidArgument);

  EXPECT_TRUE(All().empty());
  EXPECT_EQ(HeadFile(), HeadLine(0, kAuditGenesisHash));
}

TEST_F(AuditLogTest, VerifyPassesOnAnIntactLog) {
  RecordFive();
  AuditVerification v = Verify();
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.records, 5);
  EXPECT_EQ(v.first_bad_seq, 0);
  EXPECT_EQ(v.problem, "");
  EXPECT_EQ(v.head_hash, All().back().hash);
  // Reopening an intact log changes nothing.
  Reopen();
  EXPECT_EQ(All().size(), 5u);
  EXPECT_TRUE(Verify().ok);
}

TEST_F(AuditLogTest, AnEditedRecordIsNamed) {
  RecordFive();
  Sql("UPDATE audit_log SET actor = 'api:mallory' WHERE seq = 3");
  AuditVerification v = Verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_bad_seq, 3);
  EXPECT_EQ(v.records, 5);
  EXPECT_THAT(v.problem,
              HasSubstr("audit record 3 (alias.move by api:mallory at " +
                        FormatTimestamp(All()[2].at) + ")"));
  EXPECT_THAT(v.problem,
              HasSubstr("does not match its hash: it was changed after it "
                        "was written"));
}

TEST_F(AuditLogTest, ARecordRehashedAloneBreaksTheLinkToTheNext) {
  RecordFive();
  AuditRecord third = All()[2];
  third.actor = "api:mallory";
  third.hash = AuditRecordHash(third);
  Sql("UPDATE audit_log SET actor = 'api:mallory', hash = '" + third.hash +
      "' WHERE seq = 3");
  AuditVerification v = Verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_bad_seq, 4);
  EXPECT_THAT(v.problem,
              HasSubstr("audit record 4 does not chain onto record 3"));
  EXPECT_THAT(v.problem, HasSubstr(third.hash));
}

TEST_F(AuditLogTest, ARehashedChainIsCaughtByTheHeadFile) {
  RecordFive();
  const std::string original_head = All().back().hash;
  Sql("UPDATE audit_log SET actor = 'api:mallory' WHERE seq = 2");
  RehashChain();
  AuditVerification v = Verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_bad_seq, 5);
  EXPECT_THAT(v.problem, HasSubstr("the head file records entry 5 with hash " +
                                   original_head));
  EXPECT_THAT(v.problem, HasSubstr("hashes to " + All().back().hash +
                                   ": the chain was rewritten"));
  // A restart does not bless the rewritten chain.
  Reopen();
  EXPECT_EQ(HeadFile(), HeadLine(5, original_head));
  EXPECT_FALSE(Verify().ok);
}

TEST_F(AuditLogTest, DeletedNewestRecordsAreDetectedAndStayDetected) {
  RecordFive();
  const std::string head = All().back().hash;
  Sql("DELETE FROM audit_log WHERE seq >= 4");
  AuditVerification v = Verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.records, 3);
  EXPECT_EQ(v.first_bad_seq, 4);
  EXPECT_THAT(v.problem, HasSubstr("the head file " + head_path_ +
                                   " records 5 entries ending in " + head +
                                   ", but the table holds 3: entries after 3 "
                                   "were deleted"));

  // Neither a restart nor new records overwrite the evidence.
  Reopen();
  Record(Entry("api:bob", "alias.move", "churn", "alias churn@prod"));
  Record(Entry("api:bob", "alias.move", "churn", "alias churn@prod"));
  Record(Entry("api:bob", "alias.move", "churn", "alias churn@prod"));
  EXPECT_EQ(HeadFile(), HeadLine(5, head));
  v = Verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_bad_seq, 5);
  EXPECT_THAT(v.problem, HasSubstr("the chain was rewritten"));
}

TEST_F(AuditLogTest, AGapInTheMiddleIsNamed) {
  RecordFive();
  Sql("DELETE FROM audit_log WHERE seq = 2");
  AuditVerification v = Verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_bad_seq, 2);
  EXPECT_THAT(v.problem, HasSubstr("audit record 2 is missing: the table "
                                   "goes from record 1 to record 3"));
}

TEST_F(AuditLogTest, AMissingHeadFileIsReportedThenRebuiltOnTheRecord) {
  RecordFive();
  const std::string old_head = All().back().hash;
  ASSERT_TRUE(LocalFilesystem()->RemoveFile(head_path_).ok());
  AuditVerification v = Verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_bad_seq, 0);
  EXPECT_THAT(v.problem, HasSubstr(head_path_ + " is missing"));

  Reopen();
  std::vector<AuditRecord> all = All();
  ASSERT_EQ(all.size(), 6u);
  const AuditRecord& rebuilt = all.back();
  EXPECT_EQ(rebuilt.action, "audit.head_rebuilt");
  EXPECT_EQ(rebuilt.actor, "server");
  EXPECT_EQ(rebuilt.object, "audit head");
  EXPECT_EQ(rebuilt.app, "");
  EXPECT_EQ(rebuilt.before_json, "null");
  EXPECT_THAT(rebuilt.after_json, HasSubstr("\"entries\":5"));
  EXPECT_THAT(rebuilt.after_json, HasSubstr(old_head));
  EXPECT_EQ(HeadFile(), HeadLine(6, rebuilt.hash));
  v = Verify();
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.records, 6);
}

TEST_F(AuditLogTest, AHeadBehindTheTableIsBroughtForwardAtOpen) {
  Record(Entry("api:alice", "app.apply", "churn", "app churn revision 1"));
  Record(Entry("api:alice", "app.apply", "churn", "app churn revision 2"));
  Record(Entry("api:alice", "app.apply", "churn", "app churn revision 3"));
  const std::string older_head = HeadFile();
  Record(Entry("api:alice", "app.apply", "churn", "app churn revision 4"));
  AuditRecord newest =
      Record(Entry("api:alice", "app.apply", "churn", "app churn revision 5"));
  ASSERT_TRUE(LocalFilesystem()->WriteFileAtomic(head_path_, older_head).ok());

  AuditVerification v = Verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_bad_seq, 4);
  EXPECT_THAT(v.problem, HasSubstr("the table holds 5 entries but the head "
                                   "file " +
                                   head_path_ + " records only 3"));

  Reopen();
  EXPECT_EQ(HeadFile(), HeadLine(5, newest.hash));
  EXPECT_EQ(All().size(), 5u);
  v = Verify();
  EXPECT_TRUE(v.ok) << v.problem;
}

TEST_F(AuditLogTest, AHeadThatTheTableDoesNotChainOntoIsLeftForVerify) {
  RecordFive();
  const std::string forged = HeadLine(3, std::string(64, 'a'));
  ASSERT_TRUE(LocalFilesystem()->WriteFileAtomic(head_path_, forged).ok());
  Reopen();
  EXPECT_EQ(HeadFile(), forged);
  AuditVerification v = Verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_bad_seq, 3);
  EXPECT_THAT(v.problem, HasSubstr("the head file records entry 3 with hash " +
                                   std::string(64, 'a')));
}

TEST_F(AuditLogTest, ADamagedHeadFileDoesNotStopOpenAndIsReported) {
  RecordFive();
  ASSERT_TRUE(LocalFilesystem()->WriteFileAtomic(head_path_, "garbage\n").ok());
  Reopen();
  EXPECT_EQ(HeadFile(), "garbage\n");
  Record(Entry("api:bob", "token.create", "", "token tok-2"));
  EXPECT_EQ(HeadFile(), "garbage\n");
  AuditVerification v = Verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_bad_seq, 0);
  EXPECT_THAT(v.problem, HasSubstr(head_path_ + " is damaged"));
}

TEST_F(AuditLogTest, AFailedHeadWriteKeepsTheRecordAndHealsOnTheNextOne) {
  Record(Entry("api:alice", "app.apply", "churn", "app churn revision 1"));
  fs_.fail_atomic_writes = true;
  AuditRecord kept =
      Record(Entry("api:alice", "app.apply", "churn", "app churn revision 2"));
  EXPECT_EQ(kept.seq, 2);
  EXPECT_EQ(All().size(), 2u);
  AuditVerification v = Verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_bad_seq, 2);

  fs_.fail_atomic_writes = false;
  AuditRecord next =
      Record(Entry("api:alice", "app.apply", "churn", "app churn revision 3"));
  EXPECT_EQ(HeadFile(), HeadLine(3, next.hash));
  EXPECT_TRUE(Verify().ok);
}

TEST_F(AuditLogTest, ObserversSeeEachRecordOnceInOrder) {
  RecordingObserver first;
  RecordingObserver second;
  log_->AddObserver(&first);
  log_->AddObserver(&second);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 10;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto r = log_->Record(Entry("api:t" + std::to_string(t), "run.start",
                                    "churn", "run run-" + std::to_string(i)));
        EXPECT_TRUE(r.ok()) << r.status();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  std::vector<int64_t> expected;
  for (int64_t seq = 1; seq <= kThreads * kPerThread; ++seq) {
    expected.push_back(seq);
  }
  EXPECT_EQ(first.seqs, expected);
  EXPECT_EQ(second.seqs, expected);
  EXPECT_TRUE(Verify().ok);
}

TEST_F(AuditLogTest, JsonEmbedsBeforeAndAfterAndGivesBothTimes) {
  AuditEntry entry =
      Entry("api:alice", "alias.move", "churn", "alias churn@prod");
  entry.before_json = R"({"version": 2})";
  entry.after_json = R"({"version": 3})";
  AuditRecord record = Record(entry);
  nlohmann::json j = ToJson(record);
  EXPECT_EQ(j["seq"], 1);
  EXPECT_EQ(j["at"], FormatTimestamp(record.at));
  EXPECT_EQ(j["at_micros"], record.at);
  EXPECT_EQ(j["actor"], "api:alice");
  EXPECT_EQ(j["action"], "alias.move");
  EXPECT_EQ(j["app"], "churn");
  EXPECT_EQ(j["object"], "alias churn@prod");
  EXPECT_EQ(j["before"]["version"], 2);
  EXPECT_EQ(j["after"]["version"], 3);
  EXPECT_EQ(j["prev_hash"], kAuditGenesisHash);
  EXPECT_EQ(j["hash"], record.hash);

  AuditRecord created = record;
  created.before_json = "null";
  created.after_json = "not json";
  nlohmann::json k = ToJson(created);
  EXPECT_TRUE(k["before"].is_null());
  EXPECT_EQ(k["after"], "not json");
}

}  // namespace
}  // namespace slipway
