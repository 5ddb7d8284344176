#include "registry/approvals.h"

#include <utility>

#include "core/status.h"

namespace slipway {
namespace {

using json = nlohmann::json;

std::string Name(const ApprovalRecord& approval) {
  return "approval " + std::to_string(approval.id);
}

absl::Status Audit(AuditLog* audit, const std::string& action,
                   const std::string& actor, const ApprovalRecord* before,
                   const ApprovalRecord& after) {
  AuditEntry entry;
  entry.actor = actor;
  entry.action = action;
  entry.app = after.app;
  entry.object = Name(after);
  entry.before_json = before == nullptr ? "null" : ApprovalJson(*before).dump();
  entry.after_json = ApprovalJson(after).dump();
  return audit->Record(entry).status();
}

absl::Status NotPending(const ApprovalRecord& approval) {
  std::string how = approval.state == "expired"
                        ? "expired at " + FormatTimestamp(approval.decided_at)
                        : approval.state + " by " + approval.decided_by +
                              " at " + FormatTimestamp(approval.decided_at);
  return absl::FailedPreconditionError(
      Name(approval) + " of app '" + approval.app + "' was already " + how +
      "; only a pending approval can be decided (request the change again "
      "if it is still wanted)");
}

// The token name in an actor ("api:alice" -> "alice"); "" for a run.
std::string TokenNameOf(const std::string& actor) {
  for (const char* prefix : {"api:", "cli:"}) {
    const std::string p = prefix;
    if (actor.compare(0, p.size(), p) == 0) return actor.substr(p.size());
  }
  return "";
}

// Whether `caller` asked for `request` themselves: the same token, or a
// token of the same name (one person's second token).
bool SameCaller(const ApprovalRecord& request, const ApprovalCaller& caller) {
  if (!request.requested_by_token.empty() &&
      request.requested_by_token == caller.token_id) {
    return true;
  }
  const std::string requester = TokenNameOf(request.requested_by);
  return !requester.empty() && requester == caller.token_name;
}

}  // namespace

json ApprovalJson(const ApprovalRecord& a) {
  json change = json::parse(a.change_json, nullptr, /*allow_exceptions=*/false);
  if (change.is_discarded()) change = a.change_json;
  json out = {
      {"id", a.id},
      {"app", a.app},
      {"kind", a.kind},
      {"change", std::move(change)},
      {"state", a.state},
      {"requested_by", a.requested_by},
      {"requested_by_token", a.requested_by_token},
      {"request_comment", a.request_comment},
      {"requested_at", FormatTimestamp(a.requested_at)},
      {"requested_at_micros", a.requested_at},
      {"expires_at",
       a.expires_at == 0 ? json(nullptr) : json(FormatTimestamp(a.expires_at))},
      {"expires_at_micros", a.expires_at}};
  if (a.decided_at != 0) {
    out["decided_by"] = a.decided_by;
    out["decided_by_token"] = a.decided_by_token;
    out["decision_comment"] = a.decision_comment;
    out["decided_at"] = FormatTimestamp(a.decided_at);
    out["decided_at_micros"] = a.decided_at;
  }
  return out;
}

Approvals::Approvals(Store* store, AuditLog* audit, Clock* clock)
    : store_(store), audit_(audit), clock_(clock) {}

absl::StatusOr<ApprovalRecord> Approvals::Request(
    const std::string& app, const std::string& kind,
    const std::string& change_json, const ApprovalCaller& requester,
    const std::string& comment, int64_t expire_after_seconds) {
  ApprovalRecord request;
  request.app = app;
  request.kind = kind;
  request.change_json = change_json;
  request.requested_by = requester.actor;
  request.requested_by_token = requester.token_id;
  request.request_comment = comment;
  request.requested_at = clock_->NowMicros();
  request.expires_at =
      expire_after_seconds > 0
          ? request.requested_at + expire_after_seconds * 1'000'000
          : 0;
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(ApprovalRecord stored, store_->AddApproval(request));
  RETURN_IF_ERROR(
      Audit(audit_, "approval.request", requester.actor, nullptr, stored),
      "auditing " + Name(stored));
  return stored;
}

absl::StatusOr<ApprovalRecord> Approvals::Approve(
    int64_t id, const ApprovalCaller& approver, const std::string& comment,
    bool forbid_self_approval, const Change& carry_out) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(ApprovalRecord pending, PendingRequest(id));
  if (forbid_self_approval && SameCaller(pending, approver)) {
    return absl::PermissionDeniedError(
        Name(pending) + " was requested by " + pending.requested_by +
        ", who may not approve it: app '" + pending.app +
        "' forbids self-approval (policy.approvals.self_approval); another "
        "approver must decide it");
  }
  RETURN_IF_ERROR(carry_out(pending),
                  Name(pending) +
                      " stays pending: carrying out its change "
                      "failed");
  return Decide(pending, "approved", approver, comment);
}

absl::StatusOr<ApprovalRecord> Approvals::Reject(int64_t id,
                                                 const ApprovalCaller& rejecter,
                                                 const std::string& comment) {
  if (comment.empty()) {
    return absl::InvalidArgumentError(
        "rejecting approval " + std::to_string(id) +
        " needs a comment saying why (--comment \"...\")");
  }
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(ApprovalRecord pending, PendingRequest(id));
  return Decide(pending, "rejected", rejecter, comment);
}

absl::StatusOr<std::vector<ApprovalRecord>> Approvals::ExpireDue() {
  absl::MutexLock lock(&mu_);
  return ExpireDueLocked();
}

absl::StatusOr<ApprovalRecord> Approvals::Get(int64_t id) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(ExpireDueLocked().status());
  return store_->GetApproval(id);
}

absl::StatusOr<std::vector<ApprovalRecord>> Approvals::List(
    const std::string& app, const std::string& state) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(ExpireDueLocked().status());
  return store_->ListApprovals(app, state);
}

absl::StatusOr<ApprovalRecord> Approvals::Decide(const ApprovalRecord& pending,
                                                 const std::string& state,
                                                 const ApprovalCaller& decider,
                                                 const std::string& comment) {
  ApprovalRecord decision = pending;
  decision.state = state;
  decision.decided_by = decider.actor;
  decision.decided_by_token = decider.token_id;
  decision.decision_comment = comment;
  decision.decided_at = clock_->NowMicros();
  ASSIGN_OR_RETURN(ApprovalRecord decided, store_->DecideApproval(decision));
  const std::string action = state == "approved"   ? "approval.approve"
                             : state == "rejected" ? "approval.reject"
                                                   : "approval.expire";
  RETURN_IF_ERROR(Audit(audit_, action, decider.actor, &pending, decided),
                  "auditing " + Name(decided));
  return decided;
}

absl::StatusOr<std::vector<ApprovalRecord>> Approvals::ExpireDueLocked() {
  const int64_t now = clock_->NowMicros();
  ASSIGN_OR_RETURN(std::vector<ApprovalRecord> pending,
                   store_->ListApprovals("", "pending"));
  std::vector<ApprovalRecord> expired;
  // Oldest first, so the audit log lists expiries in request order.
  for (auto it = pending.rbegin(); it != pending.rend(); ++it) {
    if (it->expires_at == 0 || it->expires_at > now) continue;
    ApprovalCaller expiry;
    expiry.actor = "expiry";
    ASSIGN_OR_RETURN(
        ApprovalRecord decided,
        Decide(*it, "expired", expiry,
               "no decision within the app's policy.approvals.expire_after"));
    expired.push_back(std::move(decided));
  }
  return expired;
}

absl::StatusOr<ApprovalRecord> Approvals::PendingRequest(int64_t id) {
  RETURN_IF_ERROR(ExpireDueLocked().status());
  ASSIGN_OR_RETURN(ApprovalRecord approval, store_->GetApproval(id));
  if (approval.state != "pending") return NotPending(approval);
  return approval;
}

}  // namespace slipway
