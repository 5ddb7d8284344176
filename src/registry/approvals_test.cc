#include "registry/approvals.h"

#include <memory>
#include <string>
#include <vector>

#include "audit/audit_log.h"
#include "core/filesystem.h"
#include "core/hash.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/sqlite_store.h"
#include "testing/fake_clock.h"
#include "testing/temp_dir.h"

namespace slipway {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int64_t kHour = 3600;

ApprovalCaller Caller(const std::string& name, const std::string& token) {
  return ApprovalCaller{"api:" + name, token, name};
}

class ApprovalsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = OpenSqliteStore(JoinPath(temp_.path(), "data"), &clock_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    AppRevisionRecord revision;
    revision.app = "churn";
    revision.spec_yaml = "app: churn\n";
    revision.spec_sha256 = Sha256Hex(revision.spec_yaml);
    ASSERT_TRUE(store_->AddAppRevision(revision).ok());
    auto audit = AuditLog::Open(store_.get(), LocalFilesystem(),
                                JoinPath(temp_.path(), "data/audit.head"));
    ASSERT_TRUE(audit.ok()) << audit.status();
    audit_ = std::move(*audit);
    approvals_ =
        std::make_unique<Approvals>(store_.get(), audit_.get(), &clock_);
  }

  ApprovalRecord RequestPromotion(const ApprovalCaller& who) {
    auto request = approvals_->Request(
        "churn", "promote", R"({"moves":[{"alias":"champion","version":2}]})",
        who, "v2 beats v1 on AUC", 24 * kHour);
    EXPECT_TRUE(request.ok()) << request.status();
    return request.value_or(ApprovalRecord{});
  }

  // The audit actions, oldest first.
  std::vector<std::string> AuditedActions() {
    std::vector<std::string> actions;
    auto records = audit_->List({});
    EXPECT_TRUE(records.ok()) << records.status();
    for (const AuditRecord& r : *records) actions.push_back(r.action);
    return actions;
  }

  TempDir temp_;
  FakeClock clock_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<Approvals> approvals_;
  int changes_made_ = 0;
  Approvals::Change carry_out_ = [this](const ApprovalRecord&) {
    ++changes_made_;
    return absl::OkStatus();
  };
};

TEST_F(ApprovalsTest, RejectThenRequestAgainThenApproveCarriesOutOnce) {
  const ApprovalCaller olga = Caller("olga", "tok-olga");
  const ApprovalCaller ada = Caller("ada", "tok-ada");
  ApprovalRecord first = RequestPromotion(olga);
  EXPECT_EQ(first.state, "pending");
  EXPECT_EQ(first.expires_at, clock_.NowMicros() + 24 * kHour * 1'000'000);

  EXPECT_EQ(approvals_->Reject(first.id, ada, "").status().code(),
            absl::StatusCode::kInvalidArgument);
  auto rejected = approvals_->Reject(first.id, ada, "check fairness first");
  ASSERT_TRUE(rejected.ok()) << rejected.status();
  EXPECT_EQ(rejected->state, "rejected");
  EXPECT_EQ(rejected->decided_by, "api:ada");

  // A decided request cannot be decided again, and nothing is carried out.
  auto late = approvals_->Approve(first.id, ada, "ok now", true, carry_out_);
  EXPECT_EQ(late.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(late.status().message()),
              HasSubstr("already rejected by api:ada"));
  EXPECT_EQ(changes_made_, 0);

  ApprovalRecord second = RequestPromotion(olga);
  EXPECT_EQ(second.id, first.id + 1);
  auto approved =
      approvals_->Approve(second.id, ada, "fairness checked", true, carry_out_);
  ASSERT_TRUE(approved.ok()) << approved.status();
  EXPECT_EQ(approved->state, "approved");
  EXPECT_EQ(approved->decision_comment, "fairness checked");
  EXPECT_EQ(changes_made_, 1);
  EXPECT_EQ(approvals_->Approve(second.id, ada, "again", true, carry_out_)
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(changes_made_, 1);

  EXPECT_THAT(AuditedActions(),
              ElementsAre("approval.request", "approval.reject",
                          "approval.request", "approval.approve"));
  auto verification = audit_->Verify();
  ASSERT_TRUE(verification.ok()) << verification.status();
  EXPECT_TRUE(verification->ok) << verification->problem;
}

TEST_F(ApprovalsTest, SelfApprovalIsRefusedUnlessThePolicyAllowsIt) {
  const ApprovalCaller olga = Caller("olga", "tok-olga");
  ApprovalRecord request = RequestPromotion(olga);
  auto own = approvals_->Approve(request.id, olga, "", true, carry_out_);
  EXPECT_EQ(own.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(own.status().message()),
              HasSubstr("forbids self-approval"));
  // A second token with the same name is the same person.
  auto second_token = approvals_->Approve(
      request.id, Caller("olga", "tok-olga-2"), "", true, carry_out_);
  EXPECT_EQ(second_token.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(changes_made_, 0);
  EXPECT_EQ(approvals_->Get(request.id)->state, "pending");

  auto allowed = approvals_->Approve(request.id, olga, "", false, carry_out_);
  ASSERT_TRUE(allowed.ok()) << allowed.status();
  EXPECT_EQ(changes_made_, 1);
}

TEST_F(ApprovalsTest, AFailedChangeLeavesTheRequestPending) {
  ApprovalRecord request = RequestPromotion(Caller("olga", "tok-olga"));
  auto failed = approvals_->Approve(
      request.id, Caller("ada", "tok-ada"), "", true,
      [](const ApprovalRecord&) {
        return absl::FailedPreconditionError("v2 does not load");
      });
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(failed.status().message()),
              HasSubstr("stays pending"));
  EXPECT_THAT(std::string(failed.status().message()),
              HasSubstr("v2 does not load"));
  EXPECT_EQ(approvals_->Get(request.id)->state, "pending");
  EXPECT_THAT(AuditedActions(), ElementsAre("approval.request"));
}

TEST_F(ApprovalsTest, PendingRequestsExpireOnTheClock) {
  ApprovalRecord soon = RequestPromotion(Caller("olga", "tok-olga"));
  clock_.Advance(kHour * 1'000'000);
  ApprovalRecord later = RequestPromotion(Caller("olga", "tok-olga"));
  auto never = approvals_->Request("churn", "promote", "{}",
                                   Caller("olga", "tok-olga"), "", 0);
  ASSERT_TRUE(never.ok());

  // One microsecond before the first expiry nothing expires.
  clock_.Set(soon.expires_at - 1);
  EXPECT_TRUE(approvals_->ExpireDue()->empty());
  EXPECT_EQ(approvals_->List("churn", "pending")->size(), 3u);

  clock_.Set(soon.expires_at);
  auto expired = approvals_->ExpireDue();
  ASSERT_TRUE(expired.ok()) << expired.status();
  ASSERT_EQ(expired->size(), 1u);
  EXPECT_EQ(expired->front().id, soon.id);
  EXPECT_EQ(expired->front().decided_by, "expiry");

  // Deciding an expired request says so, and changes nothing.
  auto approve = approvals_->Approve(soon.id, Caller("ada", "tok-ada"), "",
                                     true, carry_out_);
  EXPECT_EQ(approve.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(approve.status().message()), HasSubstr("expired at"));
  EXPECT_EQ(changes_made_, 0);

  // Listing expires what has run out before answering.
  clock_.Set(later.expires_at + 5);
  auto pending = approvals_->List("churn", "pending");
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ(pending->front().id, never->id);
  EXPECT_EQ(approvals_->Get(later.id)->state, "expired");
  EXPECT_THAT(
      AuditedActions(),
      ElementsAre("approval.request", "approval.request", "approval.request",
                  "approval.expire", "approval.expire"));
}

TEST_F(ApprovalsTest, UnknownRequestsAndAppsAreNamed) {
  auto missing =
      approvals_->Approve(42, Caller("ada", "tok-ada"), "", true, carry_out_);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()),
              HasSubstr("approval 42"));
  auto unknown_app =
      approvals_->Request("nope", "promote", "{}", Caller("olga", "t"), "", 0);
  EXPECT_EQ(unknown_app.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(AuditedActions().empty());
}

}  // namespace
}  // namespace slipway
