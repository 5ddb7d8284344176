#include "serving/http.h"

#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace slipway {
namespace {

HttpRequest Request(std::string method, std::string path) {
  HttpRequest request;
  request.method = std::move(method);
  request.path = std::move(path);
  return request;
}

// A handler that answers with its name and the captures, so a test sees
// which route ran and what it captured.
HttpHandler Named(std::string name) {
  return [name](const HttpRequest&, const PathParams& params) {
    nlohmann::json body = {{"route", name}, {"params", params}};
    return HttpResponse::Json(200, body.dump());
  };
}

nlohmann::json Body(const HttpResponse& response) {
  return nlohmann::json::parse(response.body);
}

TEST(RouterTest, MatchesLiteralPath) {
  Router router;
  router.Add("GET", "/v2/health/live", Named("live"));
  router.Add("GET", "/v2/health/ready", Named("ready"));

  HttpResponse response = router.Dispatch(Request("GET", "/v2/health/ready"));
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(Body(response)["route"], "ready");
}

TEST(RouterTest, CapturesNamedSegments) {
  Router router;
  router.Add("POST", "/v2/models/{app}/versions/{version}/infer",
             Named("infer"));

  HttpResponse response =
      router.Dispatch(Request("POST", "/v2/models/churn/versions/7/infer"));
  ASSERT_EQ(response.status, 200);
  nlohmann::json body = Body(response);
  EXPECT_EQ(body["route"], "infer");
  EXPECT_EQ(body["params"]["app"], "churn");
  EXPECT_EQ(body["params"]["version"], "7");
}

TEST(RouterTest, CaptureDoesNotMatchEmptySegment) {
  Router router;
  router.Add("GET", "/v2/models/{app}/ready", Named("ready"));

  EXPECT_EQ(router.Dispatch(Request("GET", "/v2/models//ready")).status, 404);
}

TEST(RouterTest, SegmentCountMustMatch) {
  Router router;
  router.Add("GET", "/v2/models/{app}", Named("model"));

  EXPECT_EQ(router.Dispatch(Request("GET", "/v2/models")).status, 404);
  EXPECT_EQ(router.Dispatch(Request("GET", "/v2/models/a/b")).status, 404);
  EXPECT_EQ(router.Dispatch(Request("GET", "/v2/models/a/")).status, 404);
  EXPECT_EQ(router.Dispatch(Request("GET", "/v2/models/a")).status, 200);
}

TEST(RouterTest, RootPattern) {
  Router router;
  router.Add("GET", "/", Named("root"));

  EXPECT_EQ(router.Dispatch(Request("GET", "/")).status, 200);
  EXPECT_EQ(router.Dispatch(Request("GET", "/x")).status, 404);
}

TEST(RouterTest, LiteralSegmentBeatsCaptureWhateverTheOrder) {
  Router router;
  router.Add("GET", "/api/v1/apps/{app}", Named("app"));
  router.Add("GET", "/api/v1/apps/export", Named("export"));

  EXPECT_EQ(
      Body(router.Dispatch(Request("GET", "/api/v1/apps/export")))["route"],
      "export");
  EXPECT_EQ(
      Body(router.Dispatch(Request("GET", "/api/v1/apps/churn")))["route"],
      "app");
}

TEST(RouterTest, SamePathDifferentMethods) {
  Router router;
  router.Add("GET", "/api/v1/apps/{app}", Named("show"));
  router.Add("DELETE", "/api/v1/apps/{app}", Named("delete"));

  EXPECT_EQ(Body(router.Dispatch(Request("DELETE", "/api/v1/apps/a")))["route"],
            "delete");
  EXPECT_EQ(Body(router.Dispatch(Request("GET", "/api/v1/apps/a")))["route"],
            "show");
}

TEST(RouterTest, UnknownPathIs404WithJsonErrorBody) {
  Router router;
  router.Add("GET", "/v2/health/live", Named("live"));

  HttpResponse response = router.Dispatch(Request("GET", "/v2/nothing"));
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(response.content_type, "application/json");
  nlohmann::json body = Body(response);
  ASSERT_TRUE(body.contains("error"));
  EXPECT_NE(body["error"].get<std::string>().find("GET /v2/nothing"),
            std::string::npos);
}

TEST(RouterTest, WrongMethodIs405WithAllowHeader) {
  Router router;
  router.Add("POST", "/v1/apps/{app}/predict", Named("predict"));
  router.Add("PUT", "/v1/apps/{app}/predict", Named("put"));

  HttpResponse response =
      router.Dispatch(Request("GET", "/v1/apps/churn/predict"));
  EXPECT_EQ(response.status, 405);
  EXPECT_EQ(response.content_type, "application/json");
  std::string error = Body(response)["error"];
  EXPECT_NE(error.find("GET"), std::string::npos);
  EXPECT_NE(error.find("POST, PUT"), std::string::npos);
  ASSERT_EQ(response.headers.size(), 1u);
  EXPECT_EQ(response.headers[0].first, "Allow");
  EXPECT_EQ(response.headers[0].second, "POST, PUT");
}

TEST(RouterTest, MethodIsCaseSensitive) {
  Router router;
  router.Add("GET", "/x", Named("x"));

  EXPECT_EQ(router.Dispatch(Request("get", "/x")).status, 405);
}

TEST(RouterTest, RoutesListsMethodAndPatternInRegistrationOrder) {
  Router router;
  router.Add("GET", "/v2/models/{app}", Named("metadata"));
  router.AddAsync("POST", "/v2/models/{app}/infer",
                  [](const HttpRequest&, const PathParams&,
                     HttpResponder respond) {
                    respond(HttpResponse::Json(200, "{}"));
                  });
  router.Add("GET", "/", Named("root"));

  std::vector<RouteInfo> routes = router.Routes();
  ASSERT_EQ(routes.size(), 3u);
  EXPECT_EQ(routes[0].method, "GET");
  EXPECT_EQ(routes[0].pattern, "/v2/models/{app}");
  EXPECT_EQ(routes[1].method, "POST");
  EXPECT_EQ(routes[1].pattern, "/v2/models/{app}/infer");
  EXPECT_EQ(routes[2].method, "GET");
  EXPECT_EQ(routes[2].pattern, "/");
}

TEST(HttpRequestTest, HeaderLookup) {
  HttpRequest request;
  request.headers["x-request-id"] = "abc";

  EXPECT_EQ(request.Header("x-request-id"), "abc");
  EXPECT_EQ(request.Header("x-missing"), "");
}

TEST(HttpRequestTest, ContentTypeStripsParametersAndLowercases) {
  HttpRequest request;
  request.headers["content-type"] = " Application/JSON ; charset=UTF-8";
  EXPECT_EQ(request.ContentType(), "application/json");

  request.headers["content-type"] = "text/csv";
  EXPECT_EQ(request.ContentType(), "text/csv");

  request.headers.erase("content-type");
  EXPECT_EQ(request.ContentType(), "");
}

TEST(HttpRequestTest, ContentTypeIsComparesWhatContentTypeReturns) {
  HttpRequest request;
  request.headers["content-type"] = " Text/CSV ; header=present";
  EXPECT_TRUE(request.ContentTypeIs("text/csv"));
  EXPECT_FALSE(request.ContentTypeIs("text/cs"));
  EXPECT_FALSE(request.ContentTypeIs("application/csv"));

  request.headers.erase("content-type");
  EXPECT_TRUE(request.ContentTypeIs(""));
  EXPECT_FALSE(request.ContentTypeIs("text/csv"));
}

TEST(HttpResponseTest, JsonAndText) {
  HttpResponse json = HttpResponse::Json(201, "{}");
  EXPECT_EQ(json.status, 201);
  EXPECT_EQ(json.content_type, "application/json");
  EXPECT_EQ(json.body, "{}");

  HttpResponse text = HttpResponse::Text(200, "ok");
  EXPECT_EQ(text.content_type, "text/plain");
  HttpResponse metrics =
      HttpResponse::Text(200, "# HELP", "text/plain; version=0.0.4");
  EXPECT_EQ(metrics.content_type, "text/plain; version=0.0.4");
}

TEST(HttpResponseTest, ErrorMapsStatusAndUsesOneBodyShape) {
  HttpResponse response = HttpResponse::Error(
      absl::NotFoundError("app 'churn' has no version 9; list versions"));
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(response.content_type, "application/json");
  EXPECT_EQ(Body(response),
            nlohmann::json(
                {{"error", "app 'churn' has no version 9; list versions"}}));

  EXPECT_EQ(HttpResponse::Error(absl::UnavailableError("loading")).status, 503);
  EXPECT_EQ(HttpResponse::Error(absl::InvalidArgumentError("bad")).status, 400);
}

// Collects what a responder sends.
struct Sent {
  absl::Mutex mu;
  std::vector<HttpResponse> responses ABSL_GUARDED_BY(mu);

  HttpResponder Responder(std::string request_line = "GET /x") {
    return HttpResponder(
        [this](HttpResponse response) {
          absl::MutexLock lock(&mu);
          responses.push_back(std::move(response));
        },
        std::move(request_line));
  }
  std::vector<HttpResponse> Take() {
    absl::MutexLock lock(&mu);
    return responses;
  }
};

TEST(HttpResponderTest, FirstAnswerWinsAcrossCopies) {
  Sent sent;
  {
    HttpResponder respond = sent.Responder();
    HttpResponder copy = respond;
    copy(HttpResponse::Text(200, "first"));
    respond(HttpResponse::Text(201, "second"));
  }
  std::vector<HttpResponse> responses = sent.Take();
  ASSERT_EQ(responses.size(), 1u);
  EXPECT_EQ(responses[0].status, 200);
  EXPECT_EQ(responses[0].body, "first");
}

TEST(HttpResponderTest, DroppedWithoutAnAnswerSends500NamingTheRequest) {
  Sent sent;
  { HttpResponder dropped = sent.Responder("POST /v1/apps/churn/predict"); }
  std::vector<HttpResponse> responses = sent.Take();
  ASSERT_EQ(responses.size(), 1u);
  EXPECT_EQ(responses[0].status, 500);
  std::string error = Body(responses[0])["error"];
  EXPECT_NE(error.find("POST /v1/apps/churn/predict ended without answering"),
            std::string::npos)
      << error;
}

TEST(RouterTest, DispatchAsyncAnswersSyncRoutesAnd404Inline) {
  Router router;
  router.Add("GET", "/sync", Named("sync"));
  Sent sent;
  router.DispatchAsync(Request("GET", "/sync"), sent.Responder());
  router.DispatchAsync(Request("GET", "/nowhere"), sent.Responder());
  router.DispatchAsync(Request("POST", "/sync"), sent.Responder());
  std::vector<HttpResponse> responses = sent.Take();
  ASSERT_EQ(responses.size(), 3u);
  EXPECT_EQ(Body(responses[0])["route"], "sync");
  EXPECT_EQ(responses[1].status, 404);
  EXPECT_EQ(responses[2].status, 405);
}

TEST(RouterTest, AsyncRouteIsAnsweredFromAnotherThread) {
  Router router;
  std::optional<HttpResponder> held;
  absl::Notification entered;
  router.AddAsync("POST", "/later/{id}",
                  [&](const HttpRequest& request, const PathParams& params,
                      HttpResponder respond) {
                    EXPECT_EQ(request.body, "payload");
                    EXPECT_EQ(params.at("id"), "7");
                    held.emplace(std::move(respond));
                    entered.Notify();
                  });
  std::thread answerer([&] {
    entered.WaitForNotification();
    (*held)(HttpResponse::Text(202, "answered elsewhere"));
  });
  HttpRequest request = Request("POST", "/later/7");
  request.body = "payload";
  // Dispatch blocks until the other thread has answered.
  HttpResponse response = router.Dispatch(request);
  answerer.join();
  EXPECT_EQ(response.status, 202);
  EXPECT_EQ(response.body, "answered elsewhere");
}

TEST(RouterTest, AsyncHandlerThatDropsItsResponderGets500) {
  Router router;
  router.AddAsync("GET", "/forgets",
                  [](const HttpRequest&, const PathParams&, HttpResponder) {});
  HttpResponse response = router.Dispatch(Request("GET", "/forgets"));
  EXPECT_EQ(response.status, 500);
  EXPECT_NE(Body(response)["error"].get<std::string>().find("GET /forgets"),
            std::string::npos);
}

}  // namespace
}  // namespace slipway
