#include "notify/webhooks.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "store/sqlite_store.h"
#include "testing/fake_clock.h"
#include "testing/temp_dir.h"

namespace slipway {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::UnorderedElementsAre;

constexpr int64_t kSecond = 1'000'000;

// One POST as a poster saw it; header names lowercased.
struct SeenPost {
  std::string url;
  std::map<std::string, std::string> headers;
  std::string body;
  int timeout_ms = 0;
};

std::string Lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return text;
}

// Answers POSTs from a script (then 204), recording each.
class FakePoster : public HttpPoster {
 public:
  void Script(std::vector<absl::StatusOr<int>> answers) {
    absl::MutexLock lock(&mu_);
    answers_.clear();
    for (const absl::StatusOr<int>& answer : answers) {
      answers_.push_back(answer.ok() ? Answer{*answer, absl::OkStatus()}
                                     : Answer{0, answer.status()});
    }
  }

  absl::StatusOr<int> Post(
      const std::string& url,
      const std::vector<std::pair<std::string, std::string>>& headers,
      const std::string& body, int timeout_ms) override {
    absl::MutexLock lock(&mu_);
    SeenPost post{url, {}, body, timeout_ms};
    for (const auto& [name, value] : headers) {
      post.headers[Lower(name)] = value;
    }
    posts_.push_back(std::move(post));
    if (answers_.empty()) return 204;
    const Answer answer = answers_.front();
    answers_.pop_front();
    if (!answer.error.ok()) return answer.error;
    return answer.status;
  }

  std::vector<SeenPost> posts() {
    absl::MutexLock lock(&mu_);
    return posts_;
  }

  // True once `count` POSTs arrived; false when `timeout` passed first.
  bool AwaitPosts(size_t count, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto arrived = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return posts_.size() >= count;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&arrived), timeout);
  }

 private:
  struct Answer {
    int status;
    absl::Status error;  // returned instead of `status` when not OK
  };

  absl::Mutex mu_;
  std::deque<Answer> answers_ ABSL_GUARDED_BY(mu_);
  std::vector<SeenPost> posts_ ABSL_GUARDED_BY(mu_);
};

// HMAC-SHA256 computed here with OpenSSL, independently of the notifier.
std::string ExpectedSignature(const std::string& secret,
                              const std::string& body) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), digest,
       &length);
  std::string hex = "sha256=";
  char byte[3];
  for (unsigned int i = 0; i < length; ++i) {
    snprintf(byte, sizeof(byte), "%02x", digest[i]);
    hex += byte;
  }
  return hex;
}

class WebhookNotifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = OpenSqliteStore(dir_.path(), &clock_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  // A notifier whose lookup answers `webhooks_` (or `lookup_error_`).
  std::unique_ptr<WebhookNotifier> MakeNotifier(WebhookOptions options = {},
                                                Clock* clock = nullptr) {
    return std::make_unique<WebhookNotifier>(
        store_.get(), clock != nullptr ? clock : &clock_, &poster_,
        [this](const std::string& app) -> absl::StatusOr<std::vector<Webhook>> {
          looked_up_.push_back(app);
          if (!lookup_error_.ok()) return lookup_error_;
          return webhooks_;
        },
        options);
  }

  AuditRecord Audit(const std::string& action, const std::string& app = "churn",
                    const std::string& object = "model churn v3") {
    AuditEntry entry;
    entry.actor = "run run-1";
    entry.action = action;
    entry.app = app;
    entry.object = object;
    entry.after_json = R"({"version": 3, "metrics": {"auc": 0.91}})";
    auto record = store_->AppendAudit(entry);
    EXPECT_TRUE(record.ok()) << record.status();
    return *record;
  }

  std::vector<DeliveryRecord> Deliveries() {
    auto deliveries = store_->ListDeliveries("", 0);
    EXPECT_TRUE(deliveries.ok()) << deliveries.status();
    return deliveries.ok() ? *deliveries : std::vector<DeliveryRecord>{};
  }

  // The only delivery stored.
  DeliveryRecord OnlyDelivery() {
    std::vector<DeliveryRecord> deliveries = Deliveries();
    EXPECT_EQ(deliveries.size(), 1u);
    return deliveries.empty() ? DeliveryRecord{} : deliveries.front();
  }

  int DeliverDue(WebhookNotifier& notifier) {
    auto attempts = notifier.DeliverDue();
    EXPECT_TRUE(attempts.ok()) << attempts.status();
    return attempts.ok() ? *attempts : -1;
  }

  TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<Store> store_;
  FakePoster poster_;
  std::vector<Webhook> webhooks_ = {
      {"https://hooks.example/slipway", "s3cret"}};
  absl::Status lookup_error_;
  std::vector<std::string> looked_up_;
};

TEST(HmacSha256HexTest, MatchesRfc4231TestCase2) {
  EXPECT_EQ(HmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(WebhookEventForActionTest, MapsRegistryActionsOnly) {
  EXPECT_EQ(WebhookEventForAction("model.register"), "model.registered");
  EXPECT_EQ(WebhookEventForAction("alias.move"), "alias.moved");
  EXPECT_EQ(WebhookEventForAction("approval.request"), "approval.requested");
  EXPECT_EQ(WebhookEventForAction("approval.approve"), "approval.decided");
  EXPECT_EQ(WebhookEventForAction("approval.reject"), "approval.decided");
  EXPECT_EQ(WebhookEventForAction("approval.expire"), "approval.decided");
  EXPECT_EQ(WebhookEventForAction("app.apply"), "");
  EXPECT_EQ(WebhookEventForAction("token.create"), "");
}

TEST_F(WebhookNotifierTest, RetriesOnTheBackoffUntilTheReceiverAccepts) {
  auto notifier = MakeNotifier();
  poster_.Script({503, absl::UnavailableError("connection refused"), 204});
  const AuditRecord record = Audit("model.register");
  const int64_t t0 = clock_.NowMicros();
  notifier->OnAudit(record);

  DeliveryRecord stored = OnlyDelivery();
  EXPECT_EQ(stored.state, "pending");
  EXPECT_EQ(stored.next_attempt_at, t0);
  EXPECT_EQ(stored.audit_seq, record.seq);
  EXPECT_EQ(stored.event, "model.registered");

  // Attempt 1 at once: 503.
  EXPECT_EQ(DeliverDue(*notifier), 1);
  stored = OnlyDelivery();
  EXPECT_EQ(stored.state, "pending");
  EXPECT_EQ(stored.attempts, 1);
  EXPECT_EQ(stored.last_status, 503);
  EXPECT_THAT(stored.last_error, HasSubstr("HTTP 503"));
  EXPECT_EQ(stored.next_attempt_at, t0 + 1 * kSecond);

  // Attempt 2 only once the first backoff (1 s) has passed.
  EXPECT_EQ(DeliverDue(*notifier), 0);
  clock_.Advance(kSecond - 1);
  EXPECT_EQ(DeliverDue(*notifier), 0);
  clock_.Advance(1);
  EXPECT_EQ(DeliverDue(*notifier), 1);
  stored = OnlyDelivery();
  EXPECT_EQ(stored.attempts, 2);
  EXPECT_EQ(stored.last_status, 0);
  EXPECT_THAT(stored.last_error, HasSubstr("connection refused"));
  EXPECT_EQ(stored.next_attempt_at, t0 + 3 * kSecond);

  // Attempt 3 after the doubled backoff (2 s): accepted.
  clock_.Advance(2 * kSecond - 1);
  EXPECT_EQ(DeliverDue(*notifier), 0);
  clock_.Advance(1);
  EXPECT_EQ(DeliverDue(*notifier), 1);
  stored = OnlyDelivery();
  EXPECT_EQ(stored.state, "delivered");
  EXPECT_EQ(stored.attempts, 3);
  EXPECT_EQ(stored.last_status, 204);
  EXPECT_EQ(stored.last_error, "");
  EXPECT_EQ(stored.delivered_at, t0 + 3 * kSecond);

  clock_.Advance(3600 * kSecond);
  EXPECT_EQ(DeliverDue(*notifier), 0);

  // The same bytes and signature on every attempt, as stored.
  const std::vector<SeenPost> posts = poster_.posts();
  ASSERT_EQ(posts.size(), 3u);
  for (const SeenPost& post : posts) {
    EXPECT_EQ(post.url, "https://hooks.example/slipway");
    EXPECT_EQ(post.body, stored.payload_json);
    EXPECT_EQ(post.headers.at("x-slipway-signature"), stored.signature);
    EXPECT_EQ(post.headers.at("x-slipway-event"), "model.registered");
    EXPECT_EQ(post.headers.at("x-slipway-delivery"), std::to_string(stored.id));
    EXPECT_EQ(post.headers.at("content-type"), "application/json");
    EXPECT_EQ(post.timeout_ms, 5000);
  }
}

TEST_F(WebhookNotifierTest, PayloadCarriesTheAuditRecordAndIsSigned) {
  auto notifier = MakeNotifier();
  const AuditRecord record =
      Audit("alias.move", "churn", "alias churn/champion");
  notifier->OnAudit(record);
  EXPECT_EQ(DeliverDue(*notifier), 1);

  const std::vector<SeenPost> posts = poster_.posts();
  ASSERT_EQ(posts.size(), 1u);
  const SeenPost& post = posts.front();
  EXPECT_EQ(post.headers.at("x-slipway-signature"),
            ExpectedSignature("s3cret", post.body));
  EXPECT_NE(post.headers.at("x-slipway-signature"),
            ExpectedSignature("other secret", post.body));

  const nlohmann::json payload = nlohmann::json::parse(post.body);
  EXPECT_EQ(payload["event"], "alias.moved");
  EXPECT_EQ(payload["app"], "churn");
  EXPECT_EQ(payload["sent_by"], "slipway");
  EXPECT_EQ(payload["audit"]["seq"], record.seq);
  EXPECT_EQ(payload["audit"]["action"], "alias.move");
  EXPECT_EQ(payload["audit"]["object"], "alias churn/champion");
  EXPECT_EQ(payload["audit"]["hash"], record.hash);
  EXPECT_EQ(payload["audit"]["after"]["metrics"]["auc"], 0.91);
}

TEST_F(WebhookNotifierTest, GivesUpAfterMaxAttemptsWithCappedBackoff) {
  WebhookOptions options;
  options.max_attempts = 5;
  options.first_retry_micros = 1 * kSecond;
  options.max_retry_micros = 3 * kSecond;
  options.timeout_ms = 250;
  auto notifier = MakeNotifier(options);
  poster_.Script({500, 500, 500, 500, 500});
  notifier->OnAudit(Audit("approval.request"));

  // Delays before attempts 2..5: 1 s, 2 s, then capped at 3 s.
  const int64_t delays[] = {1 * kSecond, 2 * kSecond, 3 * kSecond, 3 * kSecond};
  EXPECT_EQ(DeliverDue(*notifier), 1);
  for (int64_t delay : delays) {
    const DeliveryRecord before = OnlyDelivery();
    EXPECT_EQ(before.next_attempt_at, clock_.NowMicros() + delay);
    clock_.Advance(delay - 1);
    EXPECT_EQ(DeliverDue(*notifier), 0);
    clock_.Advance(1);
    EXPECT_EQ(DeliverDue(*notifier), 1);
  }
  const DeliveryRecord failed = OnlyDelivery();
  EXPECT_EQ(failed.state, "failed");
  EXPECT_EQ(failed.attempts, 5);
  EXPECT_EQ(failed.last_status, 500);
  EXPECT_EQ(failed.delivered_at, 0);
  clock_.Advance(3600 * kSecond);
  EXPECT_EQ(DeliverDue(*notifier), 0);
  EXPECT_EQ(poster_.posts().size(), 5u);
  EXPECT_EQ(poster_.posts().front().timeout_ms, 250);
}

TEST_F(WebhookNotifierTest, OnlyRegistryEventsOfAnAppAreDelivered) {
  auto notifier = MakeNotifier();
  notifier->OnAudit(Audit("app.apply"));
  notifier->OnAudit(Audit("token.create", "", "token tok-1"));
  notifier->OnAudit(Audit("run.start"));
  notifier->OnAudit(Audit("model.register", "", "model v1"));
  EXPECT_THAT(Deliveries(), IsEmpty());
  EXPECT_THAT(looked_up_, IsEmpty());

  const std::pair<const char*, const char*> expected[] = {
      {"model.register", "model.registered"},
      {"alias.move", "alias.moved"},
      {"approval.request", "approval.requested"},
      {"approval.approve", "approval.decided"},
      {"approval.reject", "approval.decided"},
      {"approval.expire", "approval.decided"}};
  for (const auto& [action, event] : expected) {
    notifier->OnAudit(Audit(action));
    const std::vector<DeliveryRecord> deliveries = Deliveries();
    ASSERT_FALSE(deliveries.empty());
    EXPECT_EQ(deliveries.front().event, event) << action;
  }
  EXPECT_EQ(Deliveries().size(), 6u);
}

TEST_F(WebhookNotifierTest, EachWebhookGetsItsOwnDelivery) {
  webhooks_ = {{"https://a.example/hook", "alpha"},
               {"https://b.example/hook", "beta"},
               {"http://c.example/hook", ""}};
  auto notifier = MakeNotifier();
  notifier->OnAudit(Audit("model.register"));
  EXPECT_THAT(looked_up_, UnorderedElementsAre("churn"));
  ASSERT_EQ(Deliveries().size(), 3u);
  EXPECT_EQ(DeliverDue(*notifier), 3);

  std::map<std::string, SeenPost> by_url;
  for (const SeenPost& post : poster_.posts()) by_url[post.url] = post;
  ASSERT_EQ(by_url.size(), 3u);
  const std::string body = by_url["https://a.example/hook"].body;
  EXPECT_EQ(by_url["https://a.example/hook"].headers.at("x-slipway-signature"),
            ExpectedSignature("alpha", body));
  EXPECT_EQ(by_url["https://b.example/hook"].headers.at("x-slipway-signature"),
            ExpectedSignature("beta", body));
  EXPECT_EQ(
      by_url["http://c.example/hook"].headers.count("x-slipway-signature"), 0u);
  EXPECT_EQ(by_url["http://c.example/hook"].body, body);
  for (const DeliveryRecord& delivery : Deliveries()) {
    EXPECT_EQ(delivery.state, "delivered") << delivery.url;
    EXPECT_EQ(delivery.signature.empty(),
              delivery.url == "http://c.example/hook");
  }
}

TEST_F(WebhookNotifierTest, LookupErrorsAreLoggedNotRaised) {
  lookup_error_ = absl::NotFoundError("secret env var HOOK_SECRET is not set");
  auto notifier = MakeNotifier();
  notifier->OnAudit(Audit("model.register"));
  EXPECT_THAT(looked_up_, UnorderedElementsAre("churn"));
  EXPECT_THAT(Deliveries(), IsEmpty());
  EXPECT_EQ(DeliverDue(*notifier), 0);
}

TEST_F(WebhookNotifierTest, BackgroundWorkerDeliversWhenWoken) {
  auto notifier = MakeNotifier();
  notifier->Start();
  notifier->OnAudit(Audit("model.register"));
  ASSERT_TRUE(poster_.AwaitPosts(1, absl::Seconds(30)))
      << "the worker did not deliver within 30 s of OnAudit";
  notifier->Stop();
  EXPECT_EQ(OnlyDelivery().state, "delivered");
}

TEST_F(WebhookNotifierTest, BackgroundWorkerRetriesWhenTheBackoffEnds) {
  WebhookOptions options;
  options.first_retry_micros = 20'000;
  auto notifier = MakeNotifier(options, RealClock());
  poster_.Script({503, 204});
  notifier->Start();
  notifier->OnAudit(Audit("model.register"));
  ASSERT_TRUE(poster_.AwaitPosts(2, absl::Seconds(30)))
      << "the worker did not retry within 30 s";
  notifier->Stop();
  const DeliveryRecord delivery = OnlyDelivery();
  EXPECT_EQ(delivery.state, "delivered");
  EXPECT_EQ(delivery.attempts, 2);
}

// A receiver on 127.0.0.1 (port 0) for one connection: reads one request,
// answers `reply` (when empty, answers nothing and waits for the client to
// hang up). Every wait is bounded.
class OneRequestReceiver {
 public:
  explicit OneRequestReceiver(std::string reply) : reply_(std::move(reply)) {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    EXPECT_EQ(
        bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof(address)),
        0);
    EXPECT_EQ(listen(listener_, 1), 0);
    socklen_t length = sizeof(address);
    getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }

  ~OneRequestReceiver() {
    if (thread_.joinable()) thread_.join();
    close(listener_);
  }

  int port() const { return port_; }

  // The raw request; waits for the receiver to finish.
  std::string Request() {
    if (thread_.joinable()) thread_.join();
    return request_;
  }

 private:
  void Serve() {
    pollfd pending{listener_, POLLIN, 0};
    if (poll(&pending, 1, 30'000) != 1) return;
    const int connection = accept(listener_, nullptr, nullptr);
    if (connection < 0) return;
    timeval timeout{30, 0};
    setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    char buffer[4096];
    while (!Complete()) {
      const ssize_t n = recv(connection, buffer, sizeof(buffer), 0);
      if (n <= 0) break;
      request_.append(buffer, static_cast<size_t>(n));
    }
    if (!reply_.empty()) {
      send(connection, reply_.data(), reply_.size(), MSG_NOSIGNAL);
    } else {
      while (recv(connection, buffer, sizeof(buffer), 0) > 0) {
      }
    }
    close(connection);
  }

  // Headers and the Content-Length bytes of body have arrived.
  bool Complete() const {
    const size_t end = request_.find("\r\n\r\n");
    if (end == std::string::npos) return false;
    const std::string head = Lower(request_.substr(0, end));
    const size_t field = head.find("content-length:");
    const size_t length =
        field == std::string::npos ? 0 : std::stoul(head.substr(field + 15));
    return request_.size() >= end + 4 + length;
  }

  const std::string reply_;
  int listener_ = -1;
  int port_ = 0;
  std::string request_;
  std::thread thread_;
};

TEST(CurlPosterTest, PostsHeadersAndBodyToARealReceiver) {
  OneRequestReceiver receiver(
      "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
  const std::string url =
      "http://127.0.0.1:" + std::to_string(receiver.port()) + "/hooks/slipway";
  // Over 1 KiB, where curl would otherwise wait for "100 Continue".
  const std::string body =
      R"({"event":"model.registered","pad":")" + std::string(3000, 'x') + "\"}";
  auto poster = NewCurlPoster();
  auto status = poster->Post(url,
                             {{"Content-Type", "application/json"},
                              {"X-Slipway-Event", "model.registered"},
                              {"X-Slipway-Signature", "sha256=abc"}},
                             body, 10'000);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, 204);

  const std::string request = receiver.Request();
  const size_t end = request.find("\r\n\r\n");
  ASSERT_NE(end, std::string::npos) << request;
  const std::string head = request.substr(0, end);
  EXPECT_THAT(head, HasSubstr("POST /hooks/slipway HTTP/1.1\r\n"));
  EXPECT_THAT(head, HasSubstr("\r\nContent-Type: application/json"));
  EXPECT_THAT(head, HasSubstr("\r\nX-Slipway-Event: model.registered"));
  EXPECT_THAT(head, HasSubstr("\r\nX-Slipway-Signature: sha256=abc"));
  EXPECT_THAT(Lower(head), Not(HasSubstr("expect:")));
  EXPECT_EQ(request.substr(end + 4), body);
}

TEST(CurlPosterTest, ReturnsRedirectsWithoutFollowing) {
  OneRequestReceiver receiver(
      "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/elsewhere\r\n"
      "Content-Length: 0\r\nConnection: close\r\n\r\n");
  auto status = NewCurlPoster()->Post(
      "http://127.0.0.1:" + std::to_string(receiver.port()) + "/", {}, "{}",
      10'000);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, 302);
}

TEST(CurlPosterTest, HonoursTheTimeout) {
  OneRequestReceiver receiver("");
  const std::string url =
      "http://127.0.0.1:" + std::to_string(receiver.port()) + "/";
  auto status = NewCurlPoster()->Post(url, {}, "{}", 200);
  EXPECT_EQ(status.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(status.status().message(), HasSubstr(url));
}

TEST(CurlPosterTest, ConnectionFailuresAreUnavailableAndNameTheUrl) {
  // A port nothing listens on: bound, then closed.
  int port = 0;
  {
    const int probe = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(
        bind(probe, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    socklen_t length = sizeof(address);
    getsockname(probe, reinterpret_cast<sockaddr*>(&address), &length);
    port = ntohs(address.sin_port);
    close(probe);
  }
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/";
  auto status = NewCurlPoster()->Post(url, {}, "{}", 5000);
  EXPECT_EQ(status.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.status().message(), HasSubstr(url));

  auto file = NewCurlPoster()->Post("file:///etc/passwd", {}, "{}", 5000);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(file.status().message(), HasSubstr("file:///etc/passwd"));
}

}  // namespace
}  // namespace slipway
