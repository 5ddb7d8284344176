#include "notify/webhooks.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <limits>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/logging.h"
#include "core/status.h"
#include "nlohmann/json.hpp"

namespace slipway {
namespace {

constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

size_t DiscardBody(char*, size_t size, size_t count, void*) {
  return size * count;
}

class CurlPoster : public HttpPoster {
 public:
  absl::StatusOr<int> Post(
      const std::string& url,
      const std::vector<std::pair<std::string, std::string>>& headers,
      const std::string& body, int timeout_ms) override {
    // curl_global_init is not thread-safe; a function-local static runs it
    // exactly once, whichever thread posts first.
    static const CURLcode init = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (init != CURLE_OK) {
      return absl::InternalError(std::string("cannot initialise libcurl: ") +
                                 curl_easy_strerror(init));
    }
    std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(),
                                                curl_easy_cleanup);
    if (!curl) return absl::InternalError("cannot initialise libcurl");
    std::vector<std::string> lines;
    lines.reserve(headers.size() + 1);
    for (const auto& [name, value] : headers) {
      std::string line = name;
      line += ": ";
      line += value;
      lines.push_back(std::move(line));
    }
    // Without this, curl waits up to a second for "100 Continue" before
    // sending bodies over 1 KiB.
    lines.push_back("Expect:");
    curl_slist* list = nullptr;
    for (const std::string& line : lines) {
      list = curl_slist_append(list, line.c_str());
    }
    std::unique_ptr<curl_slist, void (*)(curl_slist*)> header_list(
        list, curl_slist_free_all);
    CURL* c = curl.get();
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, header_list.get());
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(timeout_ms));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, DiscardBody);
    const CURLcode rc = curl_easy_perform(c);
    switch (rc) {
      case CURLE_OK:
        break;
      case CURLE_OPERATION_TIMEDOUT:
        return absl::DeadlineExceededError(
            "webhook " + url + " did not answer within " +
            std::to_string(timeout_ms) + " ms: " + curl_easy_strerror(rc));
      case CURLE_URL_MALFORMAT:
      case CURLE_UNSUPPORTED_PROTOCOL:
        return absl::InvalidArgumentError(
            "webhook URL '" + url + "' cannot be used (" +
            curl_easy_strerror(rc) +
            "): give an http:// or https:// URL in the app's notify list");
      default:
        return absl::UnavailableError("cannot POST to webhook " + url + ": " +
                                      curl_easy_strerror(rc));
    }
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    return static_cast<int>(status);
  }
};

bool IsSuccess(int status) { return status >= 200 && status < 300; }

}  // namespace

std::unique_ptr<HttpPoster> NewCurlPoster() {
  return std::make_unique<CurlPoster>();
}

std::string HmacSha256Hex(std::string_view key, std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest,
       &length);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * length);
  for (unsigned int i = 0; i < length; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 0xf]);
  }
  return hex;
}

std::string WebhookEventForAction(std::string_view action) {
  if (action == "model.register") return "model.registered";
  if (action == "alias.move") return "alias.moved";
  if (action == "alert.fire") return "alert.firing";
  if (action == "alert.resolve") return "alert.resolved";
  if (action == "approval.request") return "approval.requested";
  if (action == "approval.approve" || action == "approval.reject" ||
      action == "approval.expire") {
    return "approval.decided";
  }
  return "";
}

WebhookNotifier::WebhookNotifier(Store* store, Clock* clock, HttpPoster* poster,
                                 WebhookLookup lookup, WebhookOptions options)
    : store_(store),
      clock_(clock),
      poster_(poster),
      lookup_(std::move(lookup)),
      options_(options),
      next_due_(kNever) {}

WebhookNotifier::~WebhookNotifier() { Stop(); }

void WebhookNotifier::OnAudit(const AuditRecord& record) {
  const std::string event = WebhookEventForAction(record.action);
  if (event.empty() || record.app.empty()) return;
  absl::StatusOr<std::vector<Webhook>> webhooks = lookup_(record.app);
  if (!webhooks.ok()) {
    LogWarning("webhook.lookup_failed",
               {{"app", record.app},
                {"event", event},
                {"audit_seq", std::to_string(record.seq)},
                {"error", std::string(webhooks.status().message())}});
    return;
  }
  if (webhooks->empty()) return;
  const nlohmann::json payload = {{"event", event},
                                  {"app", record.app},
                                  {"audit", ToJson(record)},
                                  {"sent_by", "slipway"}};
  const std::string body =
      payload.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  const int64_t now = clock_->NowMicros();
  std::vector<DeliveryRecord> deliveries;
  deliveries.reserve(webhooks->size());
  for (const Webhook& webhook : *webhooks) {
    DeliveryRecord delivery;
    delivery.app = record.app;
    delivery.audit_seq = record.seq;
    delivery.event = event;
    delivery.url = webhook.url;
    delivery.payload_json = body;
    if (!webhook.secret.empty()) {
      delivery.signature = "sha256=" + HmacSha256Hex(webhook.secret, body);
    }
    delivery.state = "pending";
    delivery.next_attempt_at = now;
    deliveries.push_back(std::move(delivery));
  }
  absl::StatusOr<std::vector<DeliveryRecord>> stored =
      store_->AddDeliveries(deliveries);
  if (!stored.ok()) {
    LogError("webhook.store_failed",
             {{"app", record.app},
              {"event", event},
              {"audit_seq", std::to_string(record.seq)},
              {"error", std::string(stored.status().message())}});
    return;
  }
  // The new deliveries are due now: a wake-up, not a due time, so that
  // next_due_ keeps tracking the earliest scheduled retry (lowering it to
  // now here let the worker drop a retry DeliverDue had just scheduled).
  absl::MutexLock lock(&mu_);
  wake_requested_ = true;
  wake_.Signal();
}

int64_t WebhookNotifier::RetryDelayMicros(int attempts) const {
  int64_t delay = options_.first_retry_micros;
  for (int k = 1; k < attempts && delay < options_.max_retry_micros; ++k) {
    delay *= 2;
  }
  return std::min(delay, options_.max_retry_micros);
}

void WebhookNotifier::RecordAttempt(const absl::StatusOr<int>& answer,
                                    int64_t now,
                                    DeliveryRecord* delivery) const {
  ++delivery->attempts;
  if (answer.ok() && IsSuccess(*answer)) {
    delivery->state = "delivered";
    delivery->last_status = *answer;
    delivery->last_error.clear();
    delivery->delivered_at = now;
    return;
  }
  if (answer.ok()) {
    delivery->last_status = *answer;
    delivery->last_error = "webhook " + delivery->url + " answered HTTP " +
                           std::to_string(*answer);
  } else {
    delivery->last_status = 0;
    delivery->last_error = std::string(answer.status().message());
  }
  if (delivery->attempts >= options_.max_attempts) {
    delivery->state = "failed";
    LogWarning("webhook.failed",
               {{"app", delivery->app},
                {"delivery", std::to_string(delivery->id)},
                {"url", delivery->url},
                {"attempts", std::to_string(delivery->attempts)},
                {"error", delivery->last_error}});
    return;
  }
  delivery->next_attempt_at = now + RetryDelayMicros(delivery->attempts);
}

absl::StatusOr<int> WebhookNotifier::DeliverDue() {
  absl::MutexLock deliver_lock(&deliver_mu_);
  ASSIGN_OR_RETURN(std::vector<DeliveryRecord> due,
                   store_->DueDeliveries(clock_->NowMicros(), options_.batch),
                   "reading due webhook deliveries");
  int attempts = 0;
  for (DeliveryRecord& delivery : due) {
    std::vector<std::pair<std::string, std::string>> headers = {
        {"Content-Type", "application/json"},
        {"X-Slipway-Event", delivery.event},
        {"X-Slipway-Delivery", std::to_string(delivery.id)}};
    if (!delivery.signature.empty()) {
      headers.emplace_back("X-Slipway-Signature", delivery.signature);
    }
    const absl::StatusOr<int> answer = poster_->Post(
        delivery.url, headers, delivery.payload_json, options_.timeout_ms);
    ++attempts;
    RecordAttempt(answer, clock_->NowMicros(), &delivery);
    RETURN_IF_ERROR(store_->UpdateDelivery(delivery),
                    "recording attempt " + std::to_string(delivery.attempts) +
                        " of webhook delivery " + std::to_string(delivery.id));
    if (delivery.state == "pending") {
      absl::MutexLock lock(&mu_);
      if (delivery.next_attempt_at < next_due_) {
        next_due_ = delivery.next_attempt_at;
        wake_.Signal();
      }
    }
  }
  return attempts;
}

void WebhookNotifier::Start() {
  absl::MutexLock lock(&mu_);
  if (worker_.joinable()) return;
  stop_ = false;
  // Deliveries left pending by an earlier process may already be due.
  next_due_ = kNever;
  wake_requested_ = true;
  worker_ = std::thread(&WebhookNotifier::WorkerLoop, this);
}

void WebhookNotifier::Stop() {
  std::thread worker;
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    wake_.Signal();
    worker = std::move(worker_);
  }
  if (worker.joinable()) worker.join();
}

void WebhookNotifier::WorkerLoop() {
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      // Capped so deliveries this notifier did not schedule are still found.
      const absl::Time latest =
          absl::Now() + absl::Microseconds(options_.max_retry_micros);
      while (!stop_ && !wake_requested_) {
        absl::Time deadline = latest;
        if (next_due_ != kNever) {
          deadline = std::min(
              deadline, absl::Now() + absl::Microseconds(next_due_ -
                                                         clock_->NowMicros()));
        }
        if (wake_.WaitWithDeadline(&mu_, deadline)) break;
      }
      if (stop_) return;
      wake_requested_ = false;
      // DeliverDue attempts everything due by now and reports the retries
      // it schedules; a retry still ahead (the wait may end a little early)
      // is kept.
      if (next_due_ <= clock_->NowMicros()) next_due_ = kNever;
    }
    absl::StatusOr<int> attempts = DeliverDue();
    if (!attempts.ok()) {
      LogWarning("webhook.deliver_failed",
                 {{"error", std::string(attempts.status().message())}});
      absl::MutexLock lock(&mu_);
      next_due_ = std::min(next_due_,
                           clock_->NowMicros() + options_.first_retry_micros);
    } else if (*attempts >= options_.batch) {
      // A full batch: more may be due already.
      absl::MutexLock lock(&mu_);
      wake_requested_ = true;
    }
  }
}

}  // namespace slipway
