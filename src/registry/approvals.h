// Approvals: changes that wait for someone with the approver role. An app's
// policy says which changes need one (policy.promote.approval: moving an
// alias; policy.apply.approval: a new spec revision once the app serves a
// champion); the control plane then files a request here instead of making
// the change, and an approver approves it (which carries the change out) or
// rejects it, each with a comment. A request nobody decides expires after
// policy.approvals.expire_after. Every request and decision is audited
// ("approval.request", "approval.approve", "approval.reject",
// "approval.expire").
//
// Approving carries the change out first and records the approval only
// when it worked: a change that fails (a version that cannot load, a spec
// that no longer applies) leaves the request pending, with the reason
// returned to the approver. Decisions are serialized, so a request is
// carried out at most once.
//
// Ownership: `store`, `audit` and `clock` are borrowed and outlive this.
// Thread safety: safe for concurrent use.
#ifndef SLIPWAY_REGISTRY_APPROVALS_H_
#define SLIPWAY_REGISTRY_APPROVALS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "audit/audit_log.h"
#include "core/clock.h"
#include "nlohmann/json.hpp"
#include "store/store.h"

namespace slipway {

// Who asks or decides.
struct ApprovalCaller {
  std::string actor;       // "api:<token name>", "cli:<token name>", "run <id>"
  std::string token_id;    // "" for a run
  std::string token_name;  // "" for a run
};

// The record as the API shows it: times as ISO text too, change_json as
// JSON.
nlohmann::json ApprovalJson(const ApprovalRecord& approval);

class Approvals {
 public:
  Approvals(Store* store, AuditLog* audit, Clock* clock);

  Approvals(const Approvals&) = delete;
  Approvals& operator=(const Approvals&) = delete;

  // Files a pending request of `kind` ("promote", "apply") to make
  // `change_json` to `app`, expiring `expire_after_seconds` from now
  // (0: never).
  absl::StatusOr<ApprovalRecord> Request(const std::string& app,
                                         const std::string& kind,
                                         const std::string& change_json,
                                         const ApprovalCaller& requester,
                                         const std::string& comment,
                                         int64_t expire_after_seconds);

  // What approving a request does (moving aliases, applying a spec).
  using Change = std::function<absl::Status(const ApprovalRecord&)>;

  // Carries out request `id` with `carry_out`, then records it approved by
  // `approver` with `comment`.
  //   NotFound: no such request.
  //   FailedPrecondition: it is no longer pending (decided or expired; the
  //     message says by whom and when).
  //   PermissionDenied: `forbid_self_approval` and the approver's token (or
  //     token name) is the requester's.
  //   Otherwise `carry_out`'s error, annotated; the request stays pending.
  absl::StatusOr<ApprovalRecord> Approve(int64_t id,
                                         const ApprovalCaller& approver,
                                         const std::string& comment,
                                         bool forbid_self_approval,
                                         const Change& carry_out);
  // Records request `id` rejected. Errors as Approve's first two; a
  // rejection needs a comment (InvalidArgument) so the requester learns why.
  absl::StatusOr<ApprovalRecord> Reject(int64_t id,
                                        const ApprovalCaller& rejecter,
                                        const std::string& comment);

  // Marks every pending request whose time is up "expired" (decided by
  // "expiry") and returns them. Get, List, Approve and Reject do this
  // first, so nobody sees or decides a request that has run out.
  absl::StatusOr<std::vector<ApprovalRecord>> ExpireDue();

  absl::StatusOr<ApprovalRecord> Get(int64_t id);
  // Newest first; empty `app` or `state` match all.
  absl::StatusOr<std::vector<ApprovalRecord>> List(const std::string& app,
                                                   const std::string& state);

 private:
  absl::StatusOr<ApprovalRecord> Decide(const ApprovalRecord& pending,
                                        const std::string& state,
                                        const ApprovalCaller& decider,
                                        const std::string& comment)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::vector<ApprovalRecord>> ExpireDueLocked()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The pending request `id`, or why it cannot be decided.
  absl::StatusOr<ApprovalRecord> PendingRequest(int64_t id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Store* const store_;
  AuditLog* const audit_;
  Clock* const clock_;
  // Serializes decisions (and expiry), so each request is decided once and
  // its change carried out at most once.
  absl::Mutex mu_;
};

}  // namespace slipway

#endif  // SLIPWAY_REGISTRY_APPROVALS_H_
