// Webhooks: registry events (a model version registered, an alias moved, an
// approval requested or decided) POSTed as signed JSON to the URLs an app's
// spec lists under `notify:`, retried with exponential backoff, every
// delivery recorded in the Store.
//
// WebhookNotifier observes the audit log. For each registry event it stores
// one pending DeliveryRecord per webhook, holding the exact body and
// signature sent on every attempt, so a delivery survives a restart and a
// receiver can check the signature of any retry. DeliverDue() makes one
// attempt at each delivery whose time has come; Start() runs it on a
// background thread. Delivery is at least once: a receiver deduplicates by
// the X-Slipway-Delivery header.
//
// One notifier per data directory: two notifiers sharing a store would both
// attempt the same due deliveries.
//
// Ownership: the notifier borrows the Store, Clock and HttpPoster; they must
// outlive it.
// Thread safety: WebhookNotifier is safe for concurrent use (OnAudit from
// any thread, DeliverDue calls are serialized). Start and Stop are called
// by the owner, not concurrently with each other. HttpPoster
// implementations are safe for concurrent use.
#ifndef SLIPWAY_NOTIFY_WEBHOOKS_H_
#define SLIPWAY_NOTIFY_WEBHOOKS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "audit/audit_log.h"
#include "core/clock.h"
#include "store/store.h"

namespace slipway {

// One receiver of an app's events. `secret` is the resolved value of the
// spec's `env:` reference; "" sends the events unsigned.
struct Webhook {
  std::string url;
  std::string secret;
};

// The webhooks an app's current spec lists (the server resolves `notify:`
// and its secrets). An app without webhooks yields an empty list.
using WebhookLookup =
    std::function<absl::StatusOr<std::vector<Webhook>>(const std::string& app)>;

// Sends one HTTP POST. Redirects are not followed.
class HttpPoster {
 public:
  virtual ~HttpPoster() = default;
  // Returns the receiver's HTTP status, whatever it is. Errors when no
  // status came back: Unavailable (cannot connect, connection broken),
  // DeadlineExceeded (no answer within `timeout_ms`), InvalidArgument (a
  // URL that is malformed or not http/https); each names the URL.
  virtual absl::StatusOr<int> Post(
      const std::string& url,
      const std::vector<std::pair<std::string, std::string>>& headers,
      const std::string& body, int timeout_ms) = 0;
};

// An HttpPoster on libcurl (http and https only).
std::unique_ptr<HttpPoster> NewCurlPoster();

// HMAC-SHA256 of `data` under `key` as 64 lowercase hex digits.
std::string HmacSha256Hex(std::string_view key, std::string_view data);

// The webhook event an audit action reports: "model.register" ->
// "model.registered", "alias.move" -> "alias.moved", "approval.request" ->
// "approval.requested", "approval.approve" / "approval.reject" /
// "approval.expire" -> "approval.decided", "alert.fire" -> "alert.firing",
// "alert.resolve" -> "alert.resolved"; "" for any other action.
std::string WebhookEventForAction(std::string_view action);

struct WebhookOptions {
  // Attempts per delivery before it is "failed".
  int max_attempts = 8;
  // The delay before attempt k+1 is min(first_retry * 2^(k-1), max_retry).
  int64_t first_retry_micros = 1'000'000;
  int64_t max_retry_micros = 300'000'000;
  // Per POST, connecting included.
  int timeout_ms = 5000;
  // Deliveries attempted per DeliverDue call.
  int batch = 64;
};

class WebhookNotifier : public AuditObserver {
 public:
  WebhookNotifier(Store* store, Clock* clock, HttpPoster* poster,
                  WebhookLookup lookup, WebhookOptions options = {});
  ~WebhookNotifier() override;
  WebhookNotifier(const WebhookNotifier&) = delete;
  WebhookNotifier& operator=(const WebhookNotifier&) = delete;

  // Stores a pending delivery, due now, for each of the app's webhooks when
  // `record` is a registry event (WebhookEventForAction) of an app, and
  // wakes the worker. Sends nothing itself. Never fails: a lookup or store
  // error is logged, because auditing must not fail over a misconfigured
  // webhook.
  void OnAudit(const AuditRecord& record) override ABSL_LOCKS_EXCLUDED(mu_);

  // Attempts each pending delivery due now (at most options.batch) once: a
  // 2xx answer makes it "delivered"; otherwise its attempts, last_status
  // and last_error are recorded and it is due again after the backoff, or
  // "failed" after max_attempts. Returns the number of attempts made.
  // Errors: the store's, when the due deliveries cannot be read or an
  // attempt cannot be recorded (that delivery stays due and is sent again).
  absl::StatusOr<int> DeliverDue() ABSL_LOCKS_EXCLUDED(deliver_mu_, mu_);

  // Runs DeliverDue on a background thread: at once, then whenever OnAudit
  // stored deliveries or the earliest retry this notifier scheduled is due
  // (waiting in real time). Deliveries it did not schedule (left pending by
  // an earlier process) are picked up at least every max_retry_micros.
  // Starting a started notifier does nothing.
  void Start() ABSL_LOCKS_EXCLUDED(mu_);
  // Stops and joins the background thread after its current attempt; the
  // destructor calls it.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // The delay before the next attempt after `attempts` failed ones.
  int64_t RetryDelayMicros(int attempts) const;
  // Records the outcome of one attempt on `delivery`.
  void RecordAttempt(const absl::StatusOr<int>& answer, int64_t now,
                     DeliveryRecord* delivery) const;
  void WorkerLoop() ABSL_LOCKS_EXCLUDED(mu_);

  Store* const store_;
  Clock* const clock_;
  HttpPoster* const poster_;
  const WebhookLookup lookup_;
  const WebhookOptions options_;

  // Held for a whole DeliverDue, so no delivery is attempted twice at once.
  // Acquired before mu_.
  absl::Mutex deliver_mu_;

  absl::Mutex mu_;
  absl::CondVar wake_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  // OnAudit stored deliveries since the worker last looked.
  bool wake_requested_ ABSL_GUARDED_BY(mu_) = false;
  // The earliest next_attempt_at this notifier scheduled since the worker
  // last ran DeliverDue (unix micros); INT64_MAX: none.
  int64_t next_due_ ABSL_GUARDED_BY(mu_);
  std::thread worker_ ABSL_GUARDED_BY(mu_);
};

}  // namespace slipway

#endif  // SLIPWAY_NOTIFY_WEBHOOKS_H_
