// Access control over real HTTP against a started Server: every
// control-plane route (api/access.h's table) called without a token, with
// a malformed, unknown and revoked token, and with a token of each role;
// refused requests change nothing in the store; `endpoint.auth: token`
// guards predict and infer.

#include "api/access.h"

#include <curl/curl.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "api/server.h"
#include "auth/tokens.h"
#include "core/clock.h"
#include "core/filesystem.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "pipeline/app_spec.h"
#include "store/sqlite_store.h"
#include "testing/temp_dir.h"

namespace slipway {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

struct Reply {
  long status = 0;
  std::string body;
  std::string headers;
};

size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// One blocking HTTP exchange; `token` empty sends no Authorization header.
Reply Call(int port, const std::string& method, const std::string& path,
           const std::string& token, const std::string& body = "") {
  Reply reply;
  CURL* curl = curl_easy_init();
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + path;
  curl_slist* headers =
      curl_slist_append(nullptr, "Content-Type: application/json");
  const std::string auth = "Authorization: Bearer " + token;
  if (!token.empty()) headers = curl_slist_append(headers, auth.c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  if (method != "GET") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE,
                     static_cast<long>(body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &reply.headers);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
  CURLcode rc = curl_easy_perform(curl);
  EXPECT_EQ(rc, CURLE_OK) << curl_easy_strerror(rc);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return reply;
}

std::string ErrorOf(const Reply& reply) {
  json body = json::parse(reply.body, nullptr, false);
  return body.is_object() ? body.value("error", "") : reply.body;
}

// A concrete path for a route pattern, naming objects that do not exist:
// an allowed request reaches its handler and is answered 4xx or 2xx, never
// 401 or 403.
std::string Concrete(std::string pattern) {
  const std::map<std::string, std::string> values = {
      {"{app}", "nope"},       {"{run}", "run-nope"}, {"{step}", "train"},
      {"{version}", "1"},      {"{other}", "2"},      {"{alias}", "champion"},
      {"{token}", "tok-nope"}, {"{approval}", "999"}};
  for (const auto& [name, value] : values) {
    for (size_t at = pattern.find(name); at != std::string::npos;
         at = pattern.find(name)) {
      pattern.replace(at, name.size(), value);
    }
  }
  return pattern;
}

class AccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Server::Options options;
    options.data_dir = dir_.path();
    options.port = 0;
    options.threads = 2;
    options.max_parallel_steps = 1;
    // Registers the routes that exist only in --test-clock mode too.
    options.test_clock_start_micros = 1'900'000'000'000'000;
    absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    absl::StatusOr<std::string> admin =
        LocalFilesystem()->ReadFile(JoinPath(dir_.path(), kAdminTokenFile));
    ASSERT_TRUE(admin.ok()) << admin.status();
    ASSERT_EQ(admin->back(), '\n');
    tokens_["admin"] = admin->substr(0, admin->size() - 1);
    for (const char* role : {"viewer", "operator", "approver"}) {
      Reply created = Create(role, role);
      ASSERT_EQ(created.status, 201) << created.body;
      tokens_[role] = json::parse(created.body)["token"].get<std::string>();
    }
  }

  void TearDown() override {
    if (server_ == nullptr) return;
    server_->Shutdown();
    server_->Wait();
  }

  Reply Create(const std::string& name, const std::string& role,
               const std::string& extra = "") {
    return Call(
        server_->port(), "POST", "/api/v1/tokens", tokens_["admin"],
        R"({"name": ")" + name + R"(", "role": ")" + role + "\"" + extra + "}");
  }

  std::map<std::string, int64_t> Counts() {
    // A second connection to the server's database (WAL: reads do not
    // wait for the server).
    absl::StatusOr<std::unique_ptr<Store>> store =
        OpenSqliteStore(dir_.path(), RealClock());
    EXPECT_TRUE(store.ok()) << store.status();
    std::map<std::string, int64_t> counts;
    auto rows = (*store)->CountRows();
    EXPECT_TRUE(rows.ok()) << rows.status();
    for (const auto& [table, n] : *rows) counts[table] = n;
    return counts;
  }

  TempDir dir_;
  std::unique_ptr<Server> server_;
  std::map<std::string, std::string> tokens_;  // by role name
};

TEST_F(AccessTest, EveryControlPlaneRouteIsInTheTableAndBackAgain) {
  std::vector<std::string> registered;
  for (const RouteInfo& route : server_->Routes()) {
    if (route.pattern.rfind("/api/v1/", 0) != 0) continue;
    registered.push_back(route.method + " " + route.pattern);
    EXPECT_TRUE(RequiredRole(route.method, route.pattern).has_value())
        << route.method << " " << route.pattern << " has no role in access.cc";
  }
  EXPECT_EQ(registered.size(), ControlPlaneAccess().size());
}

TEST_F(AccessTest, RoleTimesRouteGivesTheExpectedStatus) {
  const std::map<std::string, int64_t> before = Counts();
  for (const RouteAccess& route : ControlPlaneAccess()) {
    const std::string method(route.method);
    const std::string path = Concrete(std::string(route.pattern));
    const std::string where = method + " " + path;

    Reply none = Call(server_->port(), method, path, "", "{}");
    EXPECT_EQ(none.status, 401) << where << ": " << none.body;
    EXPECT_THAT(ErrorOf(none), HasSubstr("no API token")) << where;
    EXPECT_THAT(none.headers, HasSubstr("WWW-Authenticate: Bearer")) << where;

    for (const char* role : {"viewer", "operator", "approver", "admin"}) {
      Reply reply = Call(server_->port(), method, path, tokens_[role], "{}");
      const bool allowed = RoleAllows(*ParseRole(role), route.role);
      if (allowed) {
        EXPECT_NE(reply.status, 401) << role << " " << where << reply.body;
        EXPECT_NE(reply.status, 403) << role << " " << where << reply.body;
      } else {
        EXPECT_EQ(reply.status, 403) << role << " " << where << reply.body;
        EXPECT_THAT(
            ErrorOf(reply),
            HasSubstr("needs role " + std::string(RoleName(route.role))))
            << role << " " << where;
      }
    }
  }
  // Refused requests, and allowed ones about objects that do not exist,
  // changed nothing.
  EXPECT_EQ(Counts(), before);
}

TEST_F(AccessTest, AllowedRequestsAnswerAsBefore) {
  const int port = server_->port();
  EXPECT_EQ(Call(port, "GET", "/api/v1/apps", tokens_["viewer"]).status, 200);
  EXPECT_EQ(Call(port, "GET", "/api/v1/serving", tokens_["viewer"]).status,
            200);
  Reply applied = Call(port, "POST", "/api/v1/apps", tokens_["operator"],
                       R"({"spec": "app: churn\n"})");
  EXPECT_EQ(applied.status, 201) << applied.body;
  EXPECT_EQ(Call(port, "GET", "/api/v1/apps/churn", tokens_["viewer"]).status,
            200);
  Reply viewer_apply = Call(port, "POST", "/api/v1/apps", tokens_["viewer"],
                            R"({"spec": "app: other\n"})");
  EXPECT_EQ(viewer_apply.status, 403);
  Reply list = Call(port, "GET", "/api/v1/tokens", tokens_["admin"]);
  ASSERT_EQ(list.status, 200) << list.body;
  json tokens = json::parse(list.body)["tokens"];
  ASSERT_EQ(tokens.size(), 4u);
  EXPECT_EQ(tokens[0]["name"], "admin");
  EXPECT_EQ(tokens[0]["created_by"], "server");
  EXPECT_EQ(tokens[1]["created_by"],
            "token " + tokens[0]["id"].get<std::string>());
  for (const json& t : tokens) {
    EXPECT_FALSE(t.contains("token")) << t.dump();
    EXPECT_EQ(t["state"], "active");
  }
  for (const auto& [role, secret] : tokens_) {
    EXPECT_EQ(list.body.find(secret), std::string::npos) << role;
  }
}

TEST_F(AccessTest, BadTokensAreRefusedEachWithItsMessage) {
  const int port = server_->port();
  const std::map<std::string, int64_t> before = Counts();
  Reply malformed = Call(port, "GET", "/api/v1/apps", "slw_not-a-token");
  EXPECT_EQ(malformed.status, 401);
  EXPECT_THAT(ErrorOf(malformed), HasSubstr("malformed API token"));

  std::string unknown_secret = tokens_["viewer"];
  unknown_secret.back() = unknown_secret.back() == 'a' ? 'b' : 'a';
  Reply unknown = Call(port, "GET", "/api/v1/apps", unknown_secret);
  EXPECT_EQ(unknown.status, 401);
  EXPECT_THAT(ErrorOf(unknown), HasSubstr("unknown API token"));
  EXPECT_EQ(unknown.body.find(unknown_secret), std::string::npos);

  Reply ops = Create("ops", "operator");
  ASSERT_EQ(ops.status, 201);
  const json created = json::parse(ops.body);
  Reply revoked =
      Call(port, "DELETE", "/api/v1/tokens/" + created["id"].get<std::string>(),
           tokens_["admin"]);
  ASSERT_EQ(revoked.status, 200) << revoked.body;
  EXPECT_EQ(json::parse(revoked.body)["state"], "revoked");
  const std::map<std::string, int64_t> after_revoke = Counts();
  Reply refused =
      Call(port, "POST", "/api/v1/apps", created["token"].get<std::string>(),
           R"({"spec": "app: churn\n"})");
  EXPECT_EQ(refused.status, 401);
  EXPECT_THAT(ErrorOf(refused), HasSubstr("API token 'ops'"));
  EXPECT_THAT(ErrorOf(refused), HasSubstr("was revoked at"));
  EXPECT_EQ(Counts(), after_revoke);
  EXPECT_EQ(after_revoke.at("tokens"), before.at("tokens") + 1);

  Reply again =
      Call(port, "DELETE", "/api/v1/tokens/" + created["id"].get<std::string>(),
           tokens_["admin"]);
  EXPECT_EQ(again.status, 409);
  Reply missing =
      Call(port, "DELETE", "/api/v1/tokens/tok-none", tokens_["admin"]);
  EXPECT_EQ(missing.status, 404);

  Reply bad_role = Create("x", "root");
  EXPECT_EQ(bad_role.status, 400);
  EXPECT_THAT(ErrorOf(bad_role),
              HasSubstr("viewer, operator, approver, admin"));
  Reply bad_expiry = Create("x", "viewer", R"(, "expires_in": "soon")");
  EXPECT_EQ(bad_expiry.status, 400);
  EXPECT_THAT(ErrorOf(bad_expiry), HasSubstr("30d"));
  EXPECT_EQ(Counts(), after_revoke);
}

TEST_F(AccessTest, ExpiringTokenCarriesItsExpiry) {
  Reply created = Create("temp", "viewer", R"(, "expires_in": "2h")");
  ASSERT_EQ(created.status, 201) << created.body;
  const json token = json::parse(created.body);
  EXPECT_FALSE(token["expires_at"].is_null());
  EXPECT_EQ(Call(server_->port(), "GET", "/api/v1/apps",
                 token["token"].get<std::string>())
                .status,
            200);
}

TEST_F(AccessTest, EndpointAuthTokenGuardsPredictAndInferOnly) {
  const int port = server_->port();
  for (const char* spec :
       {R"({"spec": "app: open\n"})",
        R"({"spec": "app: guarded\nendpoint: {auth: token}\n"})"}) {
    Reply applied =
        Call(port, "POST", "/api/v1/apps", tokens_["operator"], spec);
    ASSERT_EQ(applied.status, 201) << applied.body;
  }
  const std::string records = R"({"records": [{"x": 1}]})";
  // Open app: no token needed (503: no model served yet).
  EXPECT_EQ(Call(port, "POST", "/v1/apps/open/predict", "", records).status,
            503);
  for (const std::string path :
       {"/v1/apps/guarded/predict", "/v2/models/guarded/infer",
        "/v2/models/guarded/versions/1/infer"}) {
    Reply none = Call(port, "POST", path, "", records);
    EXPECT_EQ(none.status, 401) << path;
    EXPECT_THAT(ErrorOf(none), HasSubstr("endpoint.auth: token")) << path;
    Reply bad = Call(port, "POST", path, "slw_x", records);
    EXPECT_EQ(bad.status, 401) << path;
    EXPECT_THAT(ErrorOf(bad), HasSubstr("malformed API token"));
    // Any role passes; the model is not there yet.
    Reply viewer = Call(port, "POST", path, tokens_["viewer"], records);
    EXPECT_NE(viewer.status, 401) << path << viewer.body;
    EXPECT_NE(viewer.status, 403) << path << viewer.body;
  }
  // Health, readiness, metadata and metrics stay open.
  for (const std::string path :
       {"/healthz", "/readyz", "/v2/health/live", "/metrics", "/v2"}) {
    EXPECT_EQ(Call(port, "GET", path, "").status, 200) << path;
  }

  // Applying `auth: none` opens the endpoint again.
  Reply reopened =
      Call(port, "POST", "/api/v1/apps", tokens_["operator"],
           R"({"spec": "app: guarded\nendpoint: {auth: none}\n"})");
  ASSERT_EQ(reopened.status, 201) << reopened.body;
  EXPECT_EQ(Call(port, "POST", "/v1/apps/guarded/predict", "", records).status,
            503);
  // Rolling back to revision 1 guards it again.
  Reply rolled = Call(port, "POST", "/api/v1/apps/guarded/rollback",
                      tokens_["operator"], R"({"revision": 1})");
  ASSERT_EQ(rolled.status, 200) << rolled.body;
  EXPECT_EQ(Call(port, "POST", "/v1/apps/guarded/predict", "", records).status,
            401);
}

TEST(EndpointAuthSpecTest, ParsesNoneAndTokenAndRefusesTheRest) {
  auto token = ParseAppSpec("app: a\nendpoint: {auth: token}\n", "s.yaml");
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_TRUE(token->endpoint.require_token);
  auto none = ParseAppSpec("app: a\nendpoint: {auth: none}\n", "s.yaml");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->endpoint.require_token);
  EXPECT_FALSE(ParseAppSpec("app: a\n", "s.yaml")->endpoint.require_token);
  auto bad = ParseAppSpec("app: a\nendpoint: {auth: basic}\n", "s.yaml");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("none, token"));
}

}  // namespace
}  // namespace slipway
