#include "serving/inference.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "models/model.h"
#include "nlohmann/json.hpp"
#include "serving/metrics.h"
#include "testing/fake_clock.h"
#include "train/trainer.h"

namespace slipway {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// 120 deterministic rows: age (float64), city (string), member (bool),
// visits (int64), and one target column per task.
Table TrainingTable() {
  Column age("age", DataType::kFloat64);
  Column city("city", DataType::kString);
  Column member("member", DataType::kBool);
  Column visits("visits", DataType::kInt64);
  Column churned("churned", DataType::kInt64);
  Column active("active", DataType::kBool);
  Column size("size", DataType::kString);
  Column spend("spend", DataType::kFloat64);
  const char* cities[] = {"paris", "tokyo", "lima"};
  std::mt19937 rng(7);
  for (int i = 0; i < 120; ++i) {
    const double a = 18 + static_cast<double>(rng() % 60);
    const int c = static_cast<int>(rng() % 3);
    const bool m = rng() % 2 == 0;
    const int64_t v = static_cast<int64_t>(rng() % 10);
    age.AppendFloat64(a);
    city.AppendString(cities[c]);
    member.AppendBool(m);
    visits.AppendInt64(v);
    churned.AppendInt64((a > 45 && c != 2) || v < 2 || rng() % 7 == 0 ? 1 : 0);
    active.AppendBool(m || v > 6);
    size.AppendString(v < 3 ? "small" : v < 7 ? "medium" : "large");
    spend.AppendFloat64(a * 1.5 + v * 10 + (m ? 25 : 0) + c);
  }
  Table table;
  for (Column* column :
       {&age, &city, &member, &visits, &churned, &active, &size, &spend}) {
    EXPECT_TRUE(table.AddColumn(std::move(*column)).ok());
  }
  return table;
}

// A model trained on TrainingTable() predicting `target`, without the
// features in `drop`.
std::shared_ptr<const Model> TrainModel(const Table& table,
                                        const std::string& target,
                                        std::vector<std::string> drop = {}) {
  TrainOptions options;
  options.rounds = 8;
  options.max_depth = 3;
  options.threads = 1;
  options.seed = 1;
  options.exclude = std::move(drop);
  for (const char* other : {"churned", "active", "size", "spend"}) {
    if (other != target) options.exclude.push_back(other);
  }
  absl::StatusOr<TrainedModel> trained = TrainXgboost(table, target, options);
  EXPECT_TRUE(trained.ok()) << trained.status();
  absl::StatusOr<std::unique_ptr<Model>> model =
      LoadModel(trained->format, trained->model_bytes, trained->signature);
  EXPECT_TRUE(model.ok()) << model.status();
  return std::shared_ptr<const Model>(std::move(*model));
}

class InferenceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    Table table = TrainingTable();
    churn_ = new std::shared_ptr<const Model>(TrainModel(table, "churned"));
    active_ = new std::shared_ptr<const Model>(TrainModel(table, "active"));
    size_ = new std::shared_ptr<const Model>(TrainModel(table, "size"));
    spend_ = new std::shared_ptr<const Model>(TrainModel(table, "spend"));
  }
  static void TearDownTestSuite() {
    delete churn_;
    delete active_;
    delete size_;
    delete spend_;
  }

  void SetUp() override {
    Serve("churn", 3, *churn_);
    Serve("active", 1, *active_);
    Serve("size", 2, *size_);
    Serve("spend", 5, *spend_);
    models_.AddApp("empty");
    AddInferenceRoutes(&router_, &models_, &clock_, &metrics_);
  }

  void Serve(const std::string& app, int version,
             std::shared_ptr<const Model> model) {
    models_.AddApp(app);
    ASSERT_TRUE(models_.Serve(app, version, LoaderOf(model)).ok());
  }
  static ModelManager::Loader LoaderOf(std::shared_ptr<const Model> model) {
    return [model]() -> absl::StatusOr<std::shared_ptr<const Model>> {
      return model;
    };
  }

  HttpResponse Call(const std::string& method, const std::string& path,
                    const std::string& body = "",
                    const std::string& content_type = "application/json") {
    HttpRequest request;
    request.method = method;
    request.path = path;
    request.body = body;
    request.headers["content-type"] = content_type;
    return router_.Dispatch(request);
  }
  HttpResponse Post(const std::string& path, const json& body) {
    return Call("POST", path, body.dump());
  }
  // A POST with the header X-Routing-Key: `key`, through `router` (the
  // fixture's by default).
  HttpResponse PostKeyed(const std::string& path, const json& body,
                         const std::string& key,
                         const Router* router = nullptr) {
    HttpRequest request;
    request.method = "POST";
    request.path = path;
    request.body = body.dump();
    request.headers["content-type"] = "application/json";
    request.headers["x-routing-key"] = key;
    return (router == nullptr ? router_ : *router).Dispatch(request);
  }
  // Triton's binary data extension: the JSON header, then `data`, with the
  // header Inference-Header-Content-Length (the JSON's length unless
  // `header_length` says otherwise).
  HttpResponse PostBinary(const std::string& path, const json& header,
                          const std::string& data,
                          const std::string& header_length = "") {
    HttpRequest request;
    request.method = "POST";
    request.path = path;
    const std::string text = header.dump();
    request.body = text + data;
    request.headers["content-type"] = "application/octet-stream";
    request.headers["inference-header-content-length"] =
        header_length.empty() ? std::to_string(text.size()) : header_length;
    return router_.Dispatch(request);
  }

  static json Parse(const HttpResponse& response) {
    return json::parse(response.body);
  }
  static std::string Error(const HttpResponse& response) {
    json body = json::parse(response.body);
    return body.contains("error") ? body["error"].get<std::string>() : "";
  }
  static std::string Header(const HttpResponse& response,
                            const std::string& name) {
    for (const auto& [key, value] : response.headers) {
      if (key == name) return value;
    }
    return "";
  }

  // The model's own outputs for rows of {age, city, member, visits}.
  static std::vector<float> Direct(const Model& model,
                                   const std::vector<float>& rows) {
    std::vector<float> out;
    EXPECT_TRUE(model.Predict(rows.data(), rows.size() / 4, &out).ok());
    return out;
  }
  static float CityCode(const Model& model, const std::string& city) {
    return static_cast<float>(model.signature().CategoryCode(
        model.signature().FeatureIndex("city"), city));
  }

  static inline std::shared_ptr<const Model>* churn_ = nullptr;
  static inline std::shared_ptr<const Model>* active_ = nullptr;
  static inline std::shared_ptr<const Model>* size_ = nullptr;
  static inline std::shared_ptr<const Model>* spend_ = nullptr;

  FakeClock clock_;
  ServingMetrics metrics_;  // outlives the batchers in models_
  ModelManager models_{&clock_, &metrics_};
  Router router_;
};

// The requests below send features in this order; the signature must agree
// for Direct() to see the same rows.
TEST_F(InferenceTest, ModelsSeeFeaturesInTableOrder) {
  for (auto* model : {churn_, active_, size_, spend_}) {
    const Signature& signature = (*model)->signature();
    ASSERT_EQ(signature.features().size(), 4u);
    EXPECT_EQ(signature.FeatureIndex("age"), 0);
    EXPECT_EQ(signature.FeatureIndex("city"), 1);
    EXPECT_EQ(signature.FeatureIndex("member"), 2);
    EXPECT_EQ(signature.FeatureIndex("visits"), 3);
  }
}

TEST_F(InferenceTest, HealthAndServerMetadata) {
  HttpResponse healthz = Call("GET", "/healthz");
  EXPECT_EQ(healthz.status, 200);
  EXPECT_EQ(Parse(healthz), json({{"status", "ok"}}));
  HttpResponse live = Call("GET", "/v2/health/live");
  EXPECT_EQ(live.status, 200);
  EXPECT_EQ(Parse(live), json({{"live", true}}));
  EXPECT_EQ(Call("GET", "/readyz").status, 200);
  HttpResponse ready = Call("GET", "/v2/health/ready");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(Parse(ready), json({{"ready", true}}));
  HttpResponse server = Call("GET", "/v2");
  EXPECT_EQ(server.status, 200);
  EXPECT_EQ(Parse(server), json({{"name", "slipway"},
                                 {"version", "0.1.0"},
                                 {"extensions", {"binary_tensor_data"}}}));
}

TEST_F(InferenceTest, NotReadyWhileALoadIsInProgress) {
  models_.AddApp("slow");
  absl::Notification started;
  absl::Notification release;
  std::thread loader([&] {
    std::shared_ptr<const Model> model = *churn_;
    EXPECT_TRUE(
        models_
            .Serve("slow", 1,
                   [&]() -> absl::StatusOr<std::shared_ptr<const Model>> {
                     started.Notify();
                     release.WaitForNotification();
                     return model;
                   })
            .ok());
  });
  started.WaitForNotification();
  HttpResponse readyz = Call("GET", "/readyz");
  EXPECT_EQ(readyz.status, 503);
  EXPECT_EQ(Error(readyz), "model slow v1 is loading");
  HttpResponse ready = Call("GET", "/v2/health/ready");
  EXPECT_EQ(ready.status, 503);
  EXPECT_EQ(Parse(ready)["ready"], false);
  HttpResponse model_ready = Call("GET", "/v2/models/slow/ready");
  EXPECT_EQ(model_ready.status, 503);
  EXPECT_EQ(Parse(model_ready)["ready"], false);
  // Liveness does not depend on models.
  EXPECT_EQ(Call("GET", "/v2/health/live").status, 200);
  release.Notify();
  loader.join();
  EXPECT_EQ(Call("GET", "/readyz").status, 200);
  EXPECT_EQ(Call("GET", "/v2/models/slow/ready").status, 200);
}

TEST_F(InferenceTest, PredictRecordsForBinaryClassification) {
  const Model& model = **churn_;
  HttpResponse response = Post(
      "/v1/apps/churn/predict",
      {{"records",
        {{{"age", 62}, {"city", "paris"}, {"member", true}, {"visits", 5}},
         {{"age", 23.5}, {"city", "lima"}, {"member", false}, {"visits", 0}},
         {{"age", 40}, {"city", "tokyo"}, {"member", 1}, {"visits", 8}}}}});
  ASSERT_EQ(response.status, 200) << response.body;
  json body = Parse(response);
  std::vector<float> expected =
      Direct(model, {62, CityCode(model, "paris"), 1, 5,   //
                     23.5, CityCode(model, "lima"), 0, 0,  //
                     40, CityCode(model, "tokyo"), 1, 8});
  ASSERT_EQ(body["predictions"].size(), 3u);
  bool saw_both_labels[2] = {false, false};
  for (size_t i = 0; i < 3; ++i) {
    const json& prediction = body["predictions"][i];
    const float p1 = expected[i];
    EXPECT_EQ(prediction["probabilities"]["1"].get<double>(),
              static_cast<double>(p1));
    EXPECT_EQ(prediction["probabilities"]["0"].get<double>(),
              static_cast<double>(1.0f - p1));
    ASSERT_TRUE(prediction["label"].is_number_integer());
    EXPECT_EQ(prediction["label"].get<int>(), p1 > 0.5f ? 1 : 0);
    saw_both_labels[prediction["label"].get<int>()] = true;
  }
  EXPECT_TRUE(saw_both_labels[0] && saw_both_labels[1])
      << "pick rows that exercise both classes: " << body.dump();
  EXPECT_EQ(body["model_version"], 3);
  const std::string request_id = body["request_id"];
  EXPECT_THAT(request_id, StartsWith("req-"));
  EXPECT_EQ(Header(response, "X-Request-Id"), request_id);
  EXPECT_EQ(Header(response, "X-Model-Version"), "3");
  EXPECT_FALSE(body.contains("unseen_categories"));
}

TEST_F(InferenceTest, PredictColumnsAndCsvMatchRecords) {
  const json records = {
      {"records",
       {{{"age", 62}, {"city", "paris"}, {"member", true}, {"visits", 5}},
        {{"age", nullptr},
         {"city", "lima"},
         {"member", false},
         {"visits", 0}}}}};
  const json columns = {
      {"columns", {"visits", "age", "city", "member"}},
      {"index", {10, 11}},
      {"data", {{5, 62, "paris", true}, {0, nullptr, "lima", false}}}};
  const std::string csv =
      "id,age,city,member,visits,churned\r\n"
      "a,62,\"paris\",true,5,1\r\n"
      "b,,lima,false,0,0\r\n";
  HttpResponse from_records = Post("/v1/apps/churn/predict", records);
  HttpResponse from_columns = Post("/v1/apps/churn/predict", columns);
  HttpResponse from_csv =
      Call("POST", "/v1/apps/churn/predict", csv, "text/csv");
  ASSERT_EQ(from_records.status, 200) << from_records.body;
  ASSERT_EQ(from_columns.status, 200) << from_columns.body;
  ASSERT_EQ(from_csv.status, 200) << from_csv.body;
  const json expected = Parse(from_records)["predictions"];
  EXPECT_EQ(Parse(from_columns)["predictions"], expected);
  EXPECT_EQ(Parse(from_csv)["predictions"], expected);

  const Model& model = **churn_;
  std::vector<float> direct =
      Direct(model, {62, CityCode(model, "paris"), 1, 5,  //
                     kNaN, CityCode(model, "lima"), 0, 0});
  EXPECT_EQ(expected[1]["probabilities"]["1"].get<double>(),
            static_cast<double>(direct[1]));
}

TEST_F(InferenceTest, MulticlassLabelsAreStringsWithEveryProbability) {
  const Model& model = **size_;
  HttpResponse response = Post(
      "/v1/apps/size/predict",
      {{"records",
        {{{"age", 30}, {"city", "tokyo"}, {"member", false}, {"visits", 1}},
         {{"age", 50}, {"city", "paris"}, {"member", true}, {"visits", 9}}}}});
  ASSERT_EQ(response.status, 200) << response.body;
  json body = Parse(response);
  std::vector<float> direct =
      Direct(model, {30, CityCode(model, "tokyo"), 0, 1,  //
                     50, CityCode(model, "paris"), 1, 9});
  const std::vector<std::string>& labels = model.signature().class_labels();
  ASSERT_EQ(labels.size(), 3u);
  for (size_t row = 0; row < 2; ++row) {
    const json& prediction = body["predictions"][row];
    ASSERT_EQ(prediction["probabilities"].size(), 3u);
    size_t best = 0;
    for (size_t k = 0; k < 3; ++k) {
      EXPECT_EQ(prediction["probabilities"][labels[k]].get<double>(),
                static_cast<double>(direct[row * 3 + k]));
      if (direct[row * 3 + k] > direct[row * 3 + best]) best = k;
    }
    ASSERT_TRUE(prediction["label"].is_string());
    EXPECT_EQ(prediction["label"], labels[best]);
  }
  EXPECT_EQ(body["predictions"][0]["label"], "small");
  EXPECT_EQ(body["predictions"][1]["label"], "large");
}

TEST_F(InferenceTest, BoolLabelsAreJsonBooleans) {
  HttpResponse response = Post(
      "/v1/apps/active/predict",
      {{"records",
        {{{"age", 30}, {"city", "tokyo"}, {"member", true}, {"visits", 1}},
         {{"age", 30}, {"city", "tokyo"}, {"member", false}, {"visits", 1}}}}});
  ASSERT_EQ(response.status, 200) << response.body;
  json body = Parse(response);
  EXPECT_EQ(body["predictions"][0]["label"], true);
  EXPECT_EQ(body["predictions"][1]["label"], false);
  EXPECT_TRUE(body["predictions"][0]["probabilities"].contains("true"));
  EXPECT_TRUE(body["predictions"][0]["probabilities"].contains("false"));
}

TEST_F(InferenceTest, RegressionPredictsNumbers) {
  const Model& model = **spend_;
  HttpResponse response =
      Post("/v1/apps/spend/predict",
           {{"columns", {"age", "city", "member", "visits"}},
            {"data", {{40, "lima", true, 3}, {20, "paris", false, 9}}}});
  ASSERT_EQ(response.status, 200) << response.body;
  json body = Parse(response);
  std::vector<float> direct = Direct(
      model,
      {40, CityCode(model, "lima"), 1, 3, 20, CityCode(model, "paris"), 0, 9});
  ASSERT_EQ(body["predictions"].size(), 2u);
  EXPECT_EQ(body["predictions"][0].get<double>(),
            static_cast<double>(direct[0]));
  EXPECT_EQ(body["predictions"][1].get<double>(),
            static_cast<double>(direct[1]));
  EXPECT_EQ(body["model_version"], 5);
}

TEST_F(InferenceTest, UnseenCategoriesAreMissingAndCounted) {
  const Model& model = **churn_;
  HttpResponse response =
      Post("/v1/apps/churn/predict",
           {{"records",
             {{{"age", 62}, {"city", "oslo"}, {"member", true}, {"visits", 5}},
              {{"age", 62}, {"city", 7}, {"member", true}, {"visits", 5}}}}});
  ASSERT_EQ(response.status, 200) << response.body;
  json body = Parse(response);
  EXPECT_EQ(body["unseen_categories"], 2);
  std::vector<float> direct = Direct(model, {62, kNaN, 1, 5});
  EXPECT_EQ(body["predictions"][0]["probabilities"]["1"].get<double>(),
            static_cast<double>(direct[0]));
}

TEST_F(InferenceTest, PredictErrorsNameTheProblem) {
  struct Case {
    std::string body;
    int status;
    std::string error;
  };
  const std::vector<Case> cases = {
      {"", 400, "request body is empty; send {\"records\": ["},
      {"  \n", 400, "request body is empty"},
      {"{\"records\": [", 400,
       "request body is not valid JSON: parse error at line 1, column 14: "
       "syntax error "
       "while parsing value - unexpected end of input"},
      {"[1, 2]", 400, "request body must be a JSON object"},
      {"{\"rows\": []}", 400,
       "request body has no \"records\" key; send {\"records\": "
       "[{\"feature\": value, ...}]} or {\"columns\": [...], \"data\": "
       "[[...]]}; the model's features are: age, city, member, visits"},
      {"{\"records\": {}}", 400, "\"records\" must be an array of objects"},
      {"{\"records\": []}", 400, "\"records\" is empty"},
      {"{\"records\": [3]}", 400, "record 0 must be an object"},
      {R"({"records": [{"age": 1, "city": "paris", "member": true, "visits": 1},
                       {"age": 1, "city": "paris", "visits": 1}]})",
       400, "feature 'member' is missing from record 1"},
      {R"({"records": [{"agee": 1, "city": "paris", "member": true, "visits": 1}]})",
       400,
       "unknown feature 'agee' in record 0; the model's features are: age, "
       "city, member, visits"},
      {R"({"records": [{"age": "abc", "city": "paris", "member": true, "visits": 1}]})",
       400, "feature 'age' expects a number, got string \"abc\" in record 0"},
      {R"({"records": [{"age": 3, "city": ["x"], "member": true, "visits": 1}]})",
       400, "feature 'city' expects a string, got an array in record 0"},
      {R"({"records": [{"age": 3, "city": "x", "member": 2, "visits": 1}]})",
       400, "feature 'member' expects true or false, got number 2 in record 0"},
      {R"({"records": [{"age": 3, "city": "x", "member": true, "visits": false}]})",
       400, "feature 'visits' expects a number, got boolean false in record 0"},
      {R"({"columns": ["age"]})", 400,
       "request body has \"columns\" but no \"data\""},
      {R"({"data": [[1]]})", 400,
       "request body has \"data\" but no \"columns\""},
      {R"({"columns": ["age", "city", "member"], "data": [[1, "x", true]]})",
       400, "feature 'visits' is missing from \"columns\""},
      {R"({"columns": ["age", "age"], "data": []})", 400,
       "feature 'age' appears twice in \"columns\""},
      {R"({"columns": ["age", "town"], "data": []})", 400,
       "unknown feature 'town' in \"columns\"; the model's features are"},
      {R"({"columns": ["age", "city", "member", "visits"], "data": [[1, "x", true]]})",
       400, "row 0 of \"data\" has 3 values but \"columns\" names 4"},
      {R"({"columns": ["age", "city", "member", "visits"], "data": [[1, "x", true, "7"]]})",
       400, "feature 'visits' expects a number, got string \"7\" in row 0"},
  };
  for (const Case& c : cases) {
    HttpResponse response = Call("POST", "/v1/apps/churn/predict", c.body);
    EXPECT_EQ(response.status, c.status) << c.body << " -> " << response.body;
    EXPECT_THAT(Error(response), StartsWith(c.error)) << c.body;
  }
}

TEST_F(InferenceTest, CsvErrorsNameLineAndFeature) {
  HttpResponse missing = Call("POST", "/v1/apps/churn/predict",
                              "age,city,member\n1,paris,true\n", "text/csv");
  EXPECT_EQ(missing.status, 400);
  EXPECT_THAT(Error(missing), HasSubstr("feature 'visits' is missing"));
  HttpResponse bad_number =
      Call("POST", "/v1/apps/churn/predict",
           "age,city,member,visits\nold,paris,true,1\n", "text/csv");
  EXPECT_EQ(bad_number.status, 400);
  EXPECT_THAT(Error(bad_number), StartsWith("request body:2:1: "));
  HttpResponse header_only = Call("POST", "/v1/apps/churn/predict",
                                  "age,city,member,visits\n", "text/csv");
  EXPECT_EQ(header_only.status, 400);
  EXPECT_EQ(Error(header_only), "request body has a CSV header but no rows");
  HttpResponse empty = Call("POST", "/v1/apps/churn/predict", "", "text/csv");
  EXPECT_EQ(empty.status, 400);
  EXPECT_THAT(Error(empty), StartsWith("request body is empty"));
}

TEST_F(InferenceTest, UnknownAppAndAppWithoutModel) {
  const json body = {{"records", {{{"age", 1}}}}};
  HttpResponse unknown = Post("/v1/apps/nope/predict", body);
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(Error(unknown), "app 'nope' not found");
  HttpResponse empty = Post("/v1/apps/empty/predict", body);
  EXPECT_EQ(empty.status, 503);
  EXPECT_THAT(Error(empty), HasSubstr("has no champion model yet"));
  EXPECT_EQ(Call("GET", "/v2/models/nope").status, 404);
  EXPECT_EQ(Call("GET", "/v2/models/nope/ready").status, 404);
  EXPECT_EQ(Call("GET", "/v2/models/empty/ready").status, 503);
  EXPECT_EQ(Post("/v2/models/nope/infer", json::object()).status, 404);
}

TEST_F(InferenceTest, ModelMetadataDescribesInputsAndOutputs) {
  HttpResponse response = Call("GET", "/v2/models/churn");
  ASSERT_EQ(response.status, 200) << response.body;
  const json expected_inputs = {
      {{"name", "age"}, {"datatype", "FP32"}, {"shape", {-1}}},
      {{"name", "city"}, {"datatype", "BYTES"}, {"shape", {-1}}},
      {{"name", "member"}, {"datatype", "BOOL"}, {"shape", {-1}}},
      {{"name", "visits"}, {"datatype", "INT64"}, {"shape", {-1}}}};
  EXPECT_EQ(
      Parse(response),
      json({{"name", "churn"},
            {"versions", {"3"}},
            {"platform", "xgboost"},
            {"inputs", expected_inputs},
            {"outputs",
             {{{"name", "probabilities"},
               {"datatype", "FP32"},
               {"shape", {-1, 2}}},
              {{"name", "label"}, {"datatype", "INT64"}, {"shape", {-1}}}}}}));

  json size = Parse(Call("GET", "/v2/models/size/versions/2"));
  EXPECT_EQ(size["versions"], json({"2"}));
  EXPECT_EQ(size["outputs"][0]["shape"], json({-1, 3}));
  EXPECT_EQ(size["outputs"][1]["datatype"], "BYTES");
  json active = Parse(Call("GET", "/v2/models/active"));
  EXPECT_EQ(active["outputs"][1]["datatype"], "BOOL");
  json spend = Parse(Call("GET", "/v2/models/spend"));
  EXPECT_EQ(
      spend["outputs"],
      json({{{"name", "predictions"}, {"datatype", "FP32"}, {"shape", {-1}}}}));

  HttpResponse ready = Call("GET", "/v2/models/churn/ready");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(Parse(ready), json({{"name", "churn"}, {"ready", true}}));
  EXPECT_EQ(Call("GET", "/v2/models/churn/versions/3/ready").status, 200);
  EXPECT_EQ(Call("GET", "/v2/models/churn/versions/v3").status, 200);

  HttpResponse other = Call("GET", "/v2/models/churn/versions/4");
  EXPECT_EQ(other.status, 404);
  EXPECT_EQ(Error(other),
            "model churn v4 is not loaded (app 'churn' serves v3)");
  EXPECT_EQ(Call("GET", "/v2/models/churn/versions/4/ready").status, 404);
  HttpResponse bad = Call("GET", "/v2/models/churn/versions/latest");
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(Error(bad),
              StartsWith("model version 'latest' is not a positive"));
}

json InferBody(const json& inputs) {
  return {{"id", "42"}, {"inputs", inputs}};
}

json StandardInputs() {
  return {{{"name", "age"},
           {"shape", {3}},
           {"datatype", "FP32"},
           {"data", {62, 23.5, nullptr}}},
          {{"name", "city"},
           {"shape", {3, 1}},
           {"datatype", "BYTES"},
           {"data", {{"paris"}, {"lima"}, {"tokyo"}}}},
          {{"name", "member"},
           {"shape", {3}},
           {"datatype", "BOOL"},
           {"data", {true, false, true}}},
          {{"name", "visits"},
           {"shape", {3, 1}},
           {"datatype", "INT64"},
           {"data", {5, 0, 8}}}};
}

TEST_F(InferenceTest, InferAnswersTheOpenInferenceProtocol) {
  HttpResponse response =
      Post("/v2/models/churn/infer", InferBody(StandardInputs()));
  ASSERT_EQ(response.status, 200) << response.body;
  json body = Parse(response);
  EXPECT_EQ(body["model_name"], "churn");
  EXPECT_EQ(body["model_version"], "3");
  EXPECT_EQ(body["id"], "42");
  const std::string request_id = body["parameters"]["request_id"];
  EXPECT_THAT(request_id, StartsWith("req-"));
  EXPECT_EQ(Header(response, "X-Request-Id"), request_id);
  EXPECT_EQ(Header(response, "X-Model-Version"), "3");
  ASSERT_EQ(body["outputs"].size(), 2u);
  const json& probabilities = body["outputs"][0];
  EXPECT_EQ(probabilities["name"], "probabilities");
  EXPECT_EQ(probabilities["datatype"], "FP32");
  EXPECT_EQ(probabilities["shape"], json({3, 2}));
  const json& label = body["outputs"][1];
  EXPECT_EQ(label["name"], "label");
  EXPECT_EQ(label["datatype"], "INT64");
  EXPECT_EQ(label["shape"], json({3}));

  const Model& model = **churn_;
  std::vector<float> direct =
      Direct(model, {62, CityCode(model, "paris"), 1, 5,   //
                     23.5, CityCode(model, "lima"), 0, 0,  //
                     kNaN, CityCode(model, "tokyo"), 1, 8});
  ASSERT_EQ(probabilities["data"].size(), 6u);
  for (size_t row = 0; row < 3; ++row) {
    EXPECT_EQ(probabilities["data"][2 * row].get<double>(),
              static_cast<double>(1.0f - direct[row]));
    EXPECT_EQ(probabilities["data"][2 * row + 1].get<double>(),
              static_cast<double>(direct[row]));
    EXPECT_EQ(label["data"][row], direct[row] > 0.5f ? 1 : 0);
  }

  // Version path, no id, only the label output.
  json only_label = {{"inputs", StandardInputs()},
                     {"outputs", {{{"name", "label"}}}}};
  HttpResponse selected = Post("/v2/models/churn/versions/3/infer", only_label);
  ASSERT_EQ(selected.status, 200) << selected.body;
  json selected_body = Parse(selected);
  EXPECT_FALSE(selected_body.contains("id"));
  ASSERT_EQ(selected_body["outputs"].size(), 1u);
  EXPECT_EQ(selected_body["outputs"][0], label);
}

TEST_F(InferenceTest, InferRegressionAndMulticlassOutputs) {
  json spend =
      Parse(Post("/v2/models/spend/infer", InferBody(StandardInputs())));
  ASSERT_EQ(spend["outputs"].size(), 1u);
  EXPECT_EQ(spend["outputs"][0]["name"], "predictions");
  EXPECT_EQ(spend["outputs"][0]["shape"], json({3}));
  EXPECT_EQ(spend["model_version"], "5");

  json size = Parse(Post("/v2/models/size/infer", InferBody(StandardInputs())));
  EXPECT_EQ(size["outputs"][0]["shape"], json({3, 3}));
  EXPECT_EQ(size["outputs"][0]["data"].size(), 9u);
  EXPECT_EQ(size["outputs"][1]["datatype"], "BYTES");
  EXPECT_TRUE(size["outputs"][1]["data"][0].is_string());
}

TEST_F(InferenceTest, PredictAndInferAgreeOnTheSameRows) {
  const json records = {
      {"records",
       {{{"age", 62}, {"city", "paris"}, {"member", true}, {"visits", 5}},
        {{"age", 23.5}, {"city", "lima"}, {"member", false}, {"visits", 0}},
        {{"age", nullptr},
         {"city", "tokyo"},
         {"member", true},
         {"visits", 8}}}}};
  for (const std::string app : {"churn", "size", "spend"}) {
    json v1 = Parse(Post("/v1/apps/" + app + "/predict", records));
    json v2 = Parse(
        Post("/v2/models/" + app + "/infer", InferBody(StandardInputs())));
    ASSERT_EQ(v1["predictions"].size(), 3u) << app;
    const json& outputs = v2["outputs"];
    if (app == "spend") {
      for (size_t row = 0; row < 3; ++row) {
        EXPECT_EQ(v1["predictions"][row], outputs[0]["data"][row]);
      }
      continue;
    }
    const size_t classes = outputs[0]["shape"][1];
    const std::vector<std::string>& labels =
        (app == "churn" ? *churn_ : *size_)->signature().class_labels();
    for (size_t row = 0; row < 3; ++row) {
      const json& prediction = v1["predictions"][row];
      EXPECT_EQ(prediction["label"], outputs[1]["data"][row]) << app;
      for (size_t k = 0; k < classes; ++k) {
        EXPECT_EQ(prediction["probabilities"][labels[k]],
                  outputs[0]["data"][row * classes + k])
            << app;
      }
    }
  }
}

TEST_F(InferenceTest, InferErrorsNameTheTensor) {
  auto with = [](int index, const std::string& key, const json& value) {
    json inputs = StandardInputs();
    inputs[index][key] = value;
    return InferBody(inputs);
  };
  json missing_input = StandardInputs();
  missing_input.erase(1);
  json unknown_input = StandardInputs();
  unknown_input.push_back({{"name", "agee"},
                           {"shape", {3}},
                           {"datatype", "FP32"},
                           {"data", {1, 2, 3}}});
  json duplicate = StandardInputs();
  duplicate.push_back(StandardInputs()[0]);
  json unknown_output = InferBody(StandardInputs());
  unknown_output["outputs"] = {{{"name", "scores"}}};
  json twice = InferBody(StandardInputs());
  twice["outputs"] = {{{"name", "label"}}, {{"name", "label"}}};

  struct Case {
    json body;
    std::string error;
  };
  const std::vector<Case> cases = {
      {json::object(), "request body has no \"inputs\" array"},
      {InferBody(missing_input),
       "input 'city' is missing; the model's inputs are: age, city, member, "
       "visits"},
      {InferBody(unknown_input),
       "unknown input 'agee'; the model's inputs are: age, city, member, "
       "visits"},
      {InferBody(duplicate), "input 'age' appears twice in \"inputs\""},
      {with(0, "shape", {4}),
       "input 'age' has shape [4] (4 values) but its \"data\" holds 3"},
      {with(1, "shape", {3, 2}),
       "input 'city' has shape [3,2]; each input is one feature"},
      {with(1, "shape", {2, 1}),
       "input 'city' has 2 rows but input 'age' has 3"},
      {with(0, "shape", {-3}),
       "input 'age' has shape [-3]; dimensions must be"},
      {with(0, "datatype", "FLOAT"),
       "input 'age' has unknown datatype 'FLOAT'"},
      {with(0, "datatype", "BYTES"),
       "input 'age' has datatype BYTES but feature 'age' is numeric (float64); "
       "send FP32"},
      {with(0, "data", {1, "two", 3}),
       "input 'age' is FP32 but data[1] is string \"two\""},
      {with(2, "data", {true, 1, false}),
       "input 'member' is BOOL but data[1] is number 1"},
      {with(0, "data", {{{1}}, 2, 3}),
       "input 'age' has \"data\" nested deeper than its shape"},
      {with(0, "data", "1,2,3"), "input 'age' has \"data\" string"},
      {unknown_output,
       "unknown output 'scores'; the model's outputs are: probabilities, "
       "label"},
      {twice, "output 'label' is requested twice"},
  };
  for (const Case& c : cases) {
    HttpResponse response = Post("/v2/models/churn/infer", c.body);
    EXPECT_EQ(response.status, 400) << c.body.dump() << " -> " << response.body;
    EXPECT_THAT(Error(response), StartsWith(c.error)) << c.body.dump();
  }
  // Accepted variations.
  EXPECT_EQ(Post("/v2/models/churn/infer", with(3, "data", {1, 2.5, 3})).status,
            200);
  json bool_as_numbers = StandardInputs();
  bool_as_numbers[2]["datatype"] = "INT32";
  bool_as_numbers[2]["data"] = {1, 0, 1};
  EXPECT_EQ(Post("/v2/models/churn/infer", InferBody(bool_as_numbers)).status,
            200);
  bool_as_numbers[2]["data"] = {2, 0, 1};
  HttpResponse not_bool =
      Post("/v2/models/churn/infer", InferBody(bool_as_numbers));
  EXPECT_EQ(not_bool.status, 400);
  EXPECT_EQ(
      Error(not_bool),
      "feature 'member' expects true or false, got number 2 at data[0] of "
      "input 'member'");
  HttpResponse empty = Call("POST", "/v2/models/churn/infer", "");
  EXPECT_EQ(empty.status, 400);
  EXPECT_THAT(Error(empty), StartsWith("request body is empty"));
  HttpResponse invalid =
      Call("POST", "/v2/models/churn/infer", "{\"inputs\": [}");
  EXPECT_EQ(invalid.status, 400);
  EXPECT_THAT(
      Error(invalid),
      StartsWith("request body is not valid JSON: parse error at line 1"));
}

// --- Binary tensor data (Triton's binary data extension) ---

// The little-endian bytes of `values` (this machine is little-endian).
template <typename T>
std::string Raw(const std::vector<T>& values) {
  std::string bytes(values.size() * sizeof(T), '\0');
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

// BYTES elements: a 4-byte length, then the bytes, per element.
std::string RawStrings(const std::vector<std::string>& values) {
  std::string bytes;
  for (const std::string& value : values) {
    const uint32_t length = static_cast<uint32_t>(value.size());
    bytes.append(reinterpret_cast<const char*>(&length), sizeof(length));
    bytes.append(value);
  }
  return bytes;
}

json BinaryInput(const std::string& name, const std::string& datatype,
                 size_t rows, size_t size) {
  return {{"name", name},
          {"shape", {rows}},
          {"datatype", datatype},
          {"parameters", {{"binary_data_size", size}}}};
}

// StandardInputs() as binary data: each input's JSON and its bytes.
struct BinaryTensor {
  json input;
  std::string bytes;
};

BinaryTensor BinaryAge(const std::string& datatype = "FP32") {
  const std::string bytes = datatype == "FP64"
                                ? Raw<double>({62, 23.5, std::nan("")})
                                : Raw<float>({62, 23.5f, kNaN});
  return {BinaryInput("age", datatype, 3, bytes.size()), bytes};
}
BinaryTensor BinaryCity(const std::vector<std::string>& cities = {
                            "paris", "lima", "tokyo"}) {
  const std::string bytes = RawStrings(cities);
  return {BinaryInput("city", "BYTES", 3, bytes.size()), bytes};
}
BinaryTensor BinaryMember() {
  const std::string bytes = Raw<uint8_t>({1, 0, 1});
  return {BinaryInput("member", "BOOL", 3, 3), bytes};
}
template <typename T>
BinaryTensor BinaryVisits(const std::string& datatype) {
  const std::string bytes = Raw<T>({5, 0, 8});
  return {BinaryInput("visits", datatype, 3, bytes.size()), bytes};
}

struct BinaryBody {
  json header;
  std::string data;
};

// The request's JSON header ("id" "42", as InferBody) and its binary data,
// in the order of `tensors`.
BinaryBody MakeBinaryBody(const std::vector<BinaryTensor>& tensors) {
  BinaryBody body{InferBody(json::array()), ""};
  for (const BinaryTensor& tensor : tensors) {
    body.header["inputs"].push_back(tensor.input);
    body.data += tensor.bytes;
  }
  return body;
}

std::vector<BinaryTensor> StandardBinaryTensors() {
  return {BinaryAge(), BinaryCity(), BinaryMember(),
          BinaryVisits<int64_t>("INT64")};
}

TEST_F(InferenceTest, BinaryInputsPredictAsTheSameJson) {
  for (const std::string app : {"churn", "size", "spend"}) {
    const std::string path = "/v2/models/" + app + "/infer";
    HttpResponse reference = Post(path, InferBody(StandardInputs()));
    ASSERT_EQ(reference.status, 200) << reference.body;
    const json expected = Parse(reference)["outputs"];

    auto check = [&](const std::vector<BinaryTensor>& tensors,
                     const std::string& what) {
      BinaryBody body = MakeBinaryBody(tensors);
      HttpResponse response = PostBinary(path, body.header, body.data);
      ASSERT_EQ(response.status, 200)
          << app << " " << what << ": " << response.body;
      json answer = Parse(response);
      EXPECT_EQ(answer["outputs"], expected) << app << " " << what;
      EXPECT_EQ(answer["id"], "42");
    };
    check(StandardBinaryTensors(), "FP32, BYTES, BOOL, INT64");
    check({BinaryAge("FP64"), BinaryCity(), BinaryMember(),
           BinaryVisits<double>("FP64")},
          "FP64");
    check({BinaryAge(), BinaryCity(), BinaryMember(),
           BinaryVisits<int8_t>("INT8")},
          "INT8");
    check({BinaryAge(), BinaryCity(), BinaryMember(),
           BinaryVisits<uint16_t>("UINT16")},
          "UINT16");
    check({BinaryAge(), BinaryCity(), BinaryMember(),
           BinaryVisits<int32_t>("INT32")},
          "INT32");
    check({BinaryAge(), BinaryCity(), BinaryMember(),
           BinaryVisits<uint64_t>("UINT64")},
          "UINT64");
    check({BinaryAge(), BinaryCity(), BinaryMember(),
           BinaryVisits<float>("FP32")},
          "FP32 visits");
    // A bool feature sent as numbers 0/1, as JSON allows.
    BinaryTensor member_numbers{BinaryInput("member", "INT32", 3, 12),
                                Raw<int32_t>({1, 0, 1})};
    check({BinaryAge(), BinaryCity(), member_numbers,
           BinaryVisits<int64_t>("INT64")},
          "member as INT32");
    // Binary data follows the inputs' order, whatever it is.
    std::vector<BinaryTensor> reversed = StandardBinaryTensors();
    std::reverse(reversed.begin(), reversed.end());
    check(reversed, "reversed inputs");
  }
}

TEST_F(InferenceTest, BinaryMissingAndUnseenValuesCountAsInJson) {
  // NaN is the binary form of null; an unseen category is counted.
  json inputs = StandardInputs();
  inputs[1]["data"] = {{"paris"}, {"berlin"}, {"tokyo"}};
  json expected = Parse(Post("/v2/models/churn/infer", InferBody(inputs)));
  ASSERT_EQ(expected["parameters"]["unseen_categories"], 1);
  BinaryBody body =
      MakeBinaryBody({BinaryAge(), BinaryCity({"paris", "berlin", "tokyo"}),
                      BinaryMember(), BinaryVisits<int64_t>("INT64")});
  HttpResponse response =
      PostBinary("/v2/models/churn/infer", body.header, body.data);
  ASSERT_EQ(response.status, 200) << response.body;
  json answer = Parse(response);
  EXPECT_EQ(answer["outputs"], expected["outputs"]);
  EXPECT_EQ(answer["parameters"]["unseen_categories"], 1);
}

TEST_F(InferenceTest, BinaryAndJsonInputsMix) {
  const json expected = Parse(
      Post("/v2/models/churn/infer", InferBody(StandardInputs())))["outputs"];
  // age and member in JSON, city and visits binary, interleaved.
  const json json_inputs = StandardInputs();
  BinaryTensor city = BinaryCity();
  BinaryTensor visits = BinaryVisits<int64_t>("INT64");
  json header =
      InferBody({city.input, json_inputs[0], visits.input, json_inputs[2]});
  HttpResponse mixed =
      PostBinary("/v2/models/churn/infer", header, city.bytes + visits.bytes);
  ASSERT_EQ(mixed.status, 200) << mixed.body;
  EXPECT_EQ(Parse(mixed)["outputs"], expected);
  // The header with no binary input: a plain JSON request.
  HttpResponse json_only =
      PostBinary("/v2/models/churn/infer", InferBody(StandardInputs()), "");
  ASSERT_EQ(json_only.status, 200) << json_only.body;
  EXPECT_EQ(Parse(json_only)["outputs"], expected);
  // Answers stay JSON when binary outputs are asked for.
  BinaryBody body = MakeBinaryBody(StandardBinaryTensors());
  body.header["parameters"] = {{"binary_data_output", true}};
  body.header["outputs"] = {
      {{"name", "label"}, {"parameters", {{"binary_data", true}}}}};
  HttpResponse binary_outputs =
      PostBinary("/v2/models/churn/infer", body.header, body.data);
  ASSERT_EQ(binary_outputs.status, 200) << binary_outputs.body;
  EXPECT_EQ(binary_outputs.content_type, "application/json");
  EXPECT_EQ(Parse(binary_outputs)["outputs"], json({expected[1]}));
}

TEST_F(InferenceTest, BinaryErrorsNameTheInputAndTheFix) {
  const std::string path = "/v2/models/churn/infer";
  const BinaryBody standard = MakeBinaryBody(StandardBinaryTensors());
  // Body variations of the standard request.
  auto with_input = [&](int index, const BinaryTensor& tensor) {
    std::vector<BinaryTensor> tensors = StandardBinaryTensors();
    tensors[index] = tensor;
    return MakeBinaryBody(tensors);
  };
  struct Case {
    std::string what;
    BinaryBody body;
    std::string header_length;  // "" for the JSON's true length
    std::string error;
  };
  BinaryBody age_with_data = standard;
  age_with_data.header["inputs"][0]["data"] = {62, 23.5, nullptr};
  BinaryBody size_as_text = standard;
  size_as_text.header["inputs"][0]["parameters"]["binary_data_size"] = "12";
  BinaryBody left_over = standard;
  left_over.data += "xy";
  BinaryBody truncated = standard;
  truncated.data.resize(truncated.data.size() - 4);
  std::string city_past_end = RawStrings({"paris", "lima"});
  const uint32_t too_long = 100;
  city_past_end.append(reinterpret_cast<const char*>(&too_long), 4);
  city_past_end.append("tokyo");
  const std::string city_two = RawStrings({"paris", "lima"});
  const std::string city_extra = RawStrings({"paris", "lima", "tokyo", "x"});
  const std::string member_two = Raw<uint8_t>({1, 2, 1});
  const std::string age_fp16 = Raw<uint16_t>({0x5000, 0x4de0, 0x7e00});
  const std::vector<Case> cases = {
      {"header length not a number", standard, "abc",
       "header Inference-Header-Content-Length is 'abc', not a byte count"},
      {"header length beyond the body", standard, "99999",
       "header Inference-Header-Content-Length is 99999 but the body has "
       "only " +
           std::to_string(standard.header.dump().size() +
                          standard.data.size()) +
           " bytes"},
      {"header length cutting the JSON", standard, "10",
       "the JSON header (the first 10 bytes of the body, per "
       "Inference-Header-Content-Length) is not valid JSON"},
      {"size not matching the shape",
       with_input(0,
                  {BinaryInput("age", "FP32", 3, 8), Raw<float>({62, 23.5f})}),
       "",
       "input 'age' has binary_data_size 8 but its 3 FP32 values take 3 x 4 "
       "bytes"},
      {"size not a count", size_as_text, "",
       "input 'age' has binary_data_size string \"12\"; send the byte count"},
      {"data and binary_data_size", age_with_data, "",
       "input 'age' has both \"data\" and parameters.binary_data_size"},
      {"bytes left over", left_over, "",
       "the body has " + std::to_string(left_over.data.size()) +
           " bytes of binary data after its JSON header but the inputs' "
           "binary_data_size values add up to " +
           std::to_string(standard.data.size())},
      {"bytes missing at the end", truncated, "",
       "input 'visits' has binary_data_size 24 but only 20 bytes of binary "
       "data remain"},
      {"BYTES element past the end",
       with_input(1, {BinaryInput("city", "BYTES", 3, city_past_end.size()),
                      city_past_end}),
       "",
       "input 'city' BYTES element 2 has length 100 but only 5 bytes of the "
       "input's binary_data_size remain"},
      {"BYTES elements running out before the shape",
       with_input(1,
                  {BinaryInput("city", "BYTES", 3, city_two.size()), city_two}),
       "",
       "input 'city' ends inside the length of BYTES element 2 of 3; its "
       "binary_data_size 17 must hold"},
      {"BYTES elements shorter than the size",
       with_input(
           1, {BinaryInput("city", "BYTES", 3, city_extra.size()), city_extra}),
       "",
       "input 'city' has binary_data_size 31 but its 3 BYTES elements take "
       "26 bytes"},
      {"BYTES size too small for the shape",
       with_input(1,
                  {BinaryInput("city", "BYTES", 3, 8), std::string(8, '\0')}),
       "", "input 'city' has binary_data_size 8, too small for its 3 BYTES"},
      {"BOOL byte other than 0 or 1",
       with_input(2, {BinaryInput("member", "BOOL", 3, 3), member_two}), "",
       "input 'member' is BOOL but element 1 is the byte 2; a BOOL element is "
       "0 (false) or 1 (true)"},
      {"bool feature given 2",
       with_input(
           2, {BinaryInput("member", "INT32", 3, 12), Raw<int32_t>({2, 0, 1})}),
       "",
       "feature 'member' expects true or false, got number 2 at element 0 of "
       "input 'member'"},
      {"FP16", with_input(0, {BinaryInput("age", "FP16", 3, 6), age_fp16}), "",
       "input 'age' sends FP16 binary data, which this server does not "
       "read; send it as FP32"},
      {"BYTES for a numeric feature",
       with_input(
           0, {BinaryInput("age", "BYTES", 3, 12), RawStrings({"", "", ""})}),
       "", "input 'age' has datatype BYTES but feature 'age' is numeric"},
  };
  for (const Case& c : cases) {
    HttpResponse response =
        PostBinary(path, c.body.header, c.body.data, c.header_length);
    EXPECT_EQ(response.status, 400) << c.what << " -> " << response.body;
    EXPECT_THAT(Error(response), StartsWith(c.error)) << c.what;
  }
  // binary_data_size in a request without the header.
  HttpResponse no_header = Post(path, standard.header);
  EXPECT_EQ(no_header.status, 400);
  EXPECT_THAT(Error(no_header),
              StartsWith("input 'age' has parameters.binary_data_size but the "
                         "request has no Inference-Header-Content-Length "
                         "header"));
  // ... and with "data" too: refused, not read from "data".
  json both = InferBody(StandardInputs());
  both["inputs"][0]["parameters"] = {{"binary_data_size", 12}};
  HttpResponse both_no_header = Post(path, both);
  EXPECT_EQ(both_no_header.status, 400);
  EXPECT_THAT(Error(both_no_header),
              StartsWith("input 'age' has both \"data\" and "
                         "parameters.binary_data_size"));
}

TEST_F(InferenceTest, VersionPathReachesOnlyLoadedVersions) {
  Serve("churn", 4, *churn_);
  HttpResponse old =
      Post("/v2/models/churn/versions/3/infer", InferBody(StandardInputs()));
  EXPECT_EQ(old.status, 404);
  EXPECT_EQ(Error(old), "model churn v3 is not loaded (app 'churn' serves v4)");
  HttpResponse current =
      Post("/v2/models/churn/versions/4/infer", InferBody(StandardInputs()));
  EXPECT_EQ(current.status, 200);
  EXPECT_EQ(Parse(current)["model_version"], "4");
  EXPECT_EQ(Parse(Call("GET", "/v2/models/churn"))["versions"], json({"4"}));
}

// --- Canary and shadow traffic ---

// Every prediction observed, copied out of the call.
class RecordingObserver : public PredictionObserver {
 public:
  // Every model these tests observe has the four features of
  // TrainingTable().
  static constexpr size_t kFeatures = 4;

  struct Seen {
    std::string app;
    int version = 0;
    std::string request_id;
    std::vector<float> rows;
    std::vector<float> outputs;
    size_t width = 0;
    bool shadow = false;
    int primary_version = 0;
    std::vector<float> primary_outputs;
    size_t primary_width = 0;
  };

  void Observe(const ObservedPrediction& p) override {
    Seen seen;
    seen.app = p.app;
    seen.version = p.version;
    seen.request_id = p.request_id;
    seen.rows.assign(p.rows, p.rows + p.num_rows * kFeatures);
    seen.outputs.assign(p.outputs, p.outputs + p.num_rows * p.width);
    seen.width = p.width;
    seen.shadow = p.shadow;
    seen.primary_version = p.primary_version;
    if (p.primary_outputs != nullptr) {
      seen.primary_outputs.assign(
          p.primary_outputs, p.primary_outputs + p.num_rows * p.primary_width);
    }
    seen.primary_width = p.primary_width;
    absl::MutexLock lock(&mu_);
    seen_.push_back(std::move(seen));
  }

  // What was observed once there are `count` predictions; fails the test
  // when they do not come within 10 seconds.
  std::vector<Seen> WaitFor(size_t count) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, count]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return seen_.size() >= count;
    };
    EXPECT_TRUE(
        mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10)))
        << "observed " << seen_.size() << " predictions, expected " << count;
    return seen_;
  }
  std::vector<Seen> Snapshot() {
    absl::MutexLock lock(&mu_);
    return seen_;
  }

  void ObserveFailure(std::string_view app, int version) override {
    absl::MutexLock lock(&mu_);
    failures_.emplace_back(std::string(app), version);
  }
  std::vector<std::pair<std::string, int>> Failures() {
    absl::MutexLock lock(&mu_);
    return failures_;
  }

 private:
  absl::Mutex mu_;
  std::vector<Seen> seen_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<std::string, int>> failures_ ABSL_GUARDED_BY(mu_);
};

// A model with a given signature whose predictions fail.
class FailingModel : public Model {
 public:
  explicit FailingModel(const Signature& signature) : Model(signature) {}
  std::string_view format() const override { return "fake"; }
  absl::Status Predict(const float*, size_t,
                       std::vector<float>*) const override {
    return absl::InternalError("the backend crashed");
  }
};

// A model whose first prediction waits until the test releases it.
class BlockingModel : public Model {
 public:
  explicit BlockingModel(const Signature& signature) : Model(signature) {}
  std::string_view format() const override { return "fake"; }
  absl::Status Predict(const float*, size_t num_rows,
                       std::vector<float>* out) const override {
    if (!started.HasBeenNotified()) {
      started.Notify();
      release.WaitForNotification();
    }
    out->assign(num_rows, 0.25f);
    return absl::OkStatus();
  }
  mutable absl::Notification started;
  mutable absl::Notification release;
};

json ThreeRecords() {
  return {
      {"records",
       {{{"age", 62}, {"city", "paris"}, {"member", true}, {"visits", 5}},
        {{"age", 23.5}, {"city", "lima"}, {"member", false}, {"visits", 0}},
        {{"age", 40}, {"city", "tokyo"}, {"member", true}, {"visits", 8}}}}};
}

// The sample of series `series` in a Prometheus exposition, "" without one.
std::string Sample(const std::string& text, const std::string& series) {
  size_t at = text.find("\n" + series + " ");
  if (at == std::string::npos) return "";
  at += series.size() + 2;
  return text.substr(at, text.find('\n', at) - at);
}

std::string ShadowSeries(const std::string& app, int version,
                         const std::string& outcome) {
  return "slipway_shadow_predictions_total{app=\"" + app + "\",version=\"" +
         std::to_string(version) + "\",outcome=\"" + outcome + "\"}";
}

// Waits (at most 10 s) until the metrics show `value` for `series`, which a
// shadow's idle-priority thread updates after the answer; returns it.
std::string WaitForSample(const ServingMetrics& metrics,
                          const ModelManager& models, const std::string& series,
                          const std::string& value) {
  const auto deadline = absl::Now() + absl::Seconds(10);
  std::string seen;
  while (absl::Now() < deadline) {
    seen = Sample(metrics.Render(models.States()), series);
    if (seen == value) return seen;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return seen;
}

TEST_F(InferenceTest, CanaryAnswersItsShareStickyPerRoutingKey) {
  Serve("split", 1, *churn_);
  ASSERT_TRUE(models_.ServeCanary("split", 2, 50, LoaderOf(*active_)).ok());
  std::map<int, int> answers;  // version -> requests
  for (int i = 0; i < 40; ++i) {
    const std::string key = "user-" + std::to_string(i);
    HttpResponse predict =
        PostKeyed("/v1/apps/split/predict", ThreeRecords(), key);
    ASSERT_EQ(predict.status, 200) << predict.body;
    const int version = Parse(predict)["model_version"];
    EXPECT_EQ(Header(predict, "X-Model-Version"), std::to_string(version));
    ++answers[version];
    // The version's own model answered ("1" or "true": the last key is
    // class 1's).
    const Model& model = version == 2 ? **active_ : **churn_;
    EXPECT_EQ(
        Parse(predict)["predictions"][0]["probabilities"].back().get<double>(),
        static_cast<double>(
            Direct(model, {62, CityCode(model, "paris"), 1, 5})[0]));
    // The same key, again and through infer: the same version.
    EXPECT_EQ(Parse(PostKeyed("/v1/apps/split/predict", ThreeRecords(),
                              key))["model_version"],
              version);
    HttpResponse infer =
        PostKeyed("/v2/models/split/infer", InferBody(StandardInputs()), key);
    ASSERT_EQ(infer.status, 200) << infer.body;
    EXPECT_EQ(Parse(infer)["model_version"], std::to_string(version));
    EXPECT_EQ(Header(infer, "X-Model-Version"), std::to_string(version));
  }
  EXPECT_GT(answers[1], 5);
  EXPECT_GT(answers[2], 5);
  EXPECT_EQ(answers[1] + answers[2], 40);

  // Keyless requests alternate at 50%.
  std::set<int> keyless;
  for (int i = 0; i < 4; ++i) {
    keyless.insert(
        Parse(Post("/v1/apps/split/predict", ThreeRecords()))["model_version"]
            .get<int>());
  }
  EXPECT_EQ(keyless, std::set<int>({1, 2}));
  // A version in the path answers alone.
  HttpResponse pinned = PostKeyed("/v2/models/split/versions/2/infer",
                                  InferBody(StandardInputs()), "user-0");
  EXPECT_EQ(Parse(pinned)["model_version"], "2");

  // Requests are counted under the version that answered.
  const std::string text = metrics_.Render(models_.States());
  auto requests = [&text](int version) {
    return Sample(text, "slipway_requests_total{app=\"split\",version=\"" +
                            std::to_string(version) +
                            "\",endpoint=\"predict\",status=\"200\"}");
  };
  EXPECT_EQ(requests(1), std::to_string(2 * answers[1] + 2));
  EXPECT_EQ(requests(2), std::to_string(2 * answers[2] + 2));
  EXPECT_EQ(Sample(text,
                   "slipway_model_version_role{app=\"split\",version="
                   "\"2\",role=\"canary\"}"),
            "1");
}

TEST_F(InferenceTest, ShadowPredictsEachRequestAfterTheAnswer) {
  RecordingObserver observer;
  Router router;
  AddInferenceRoutes(&router, &models_, &clock_, &metrics_, {}, &observer);
  Serve("shadowed", 1, *churn_);
  ASSERT_TRUE(models_.ServeShadow("shadowed", 7, LoaderOf(*active_)).ok());

  HttpRequest request;
  request.method = "POST";
  request.path = "/v1/apps/shadowed/predict";
  request.body = ThreeRecords().dump();
  request.headers["content-type"] = "application/json";
  HttpResponse shadowed = router.Dispatch(request);
  ASSERT_EQ(shadowed.status, 200) << shadowed.body;
  json body = Parse(shadowed);
  EXPECT_EQ(body["model_version"], 1);

  std::vector<RecordingObserver::Seen> seen = observer.WaitFor(2);
  ASSERT_EQ(seen.size(), 2u);
  const RecordingObserver::Seen& primary = seen[0];
  const RecordingObserver::Seen& shadow = seen[1];
  EXPECT_FALSE(primary.shadow);
  EXPECT_EQ(primary.version, 1);
  EXPECT_EQ(primary.request_id, body["request_id"]);
  EXPECT_TRUE(shadow.shadow);
  EXPECT_EQ(shadow.app, "shadowed");
  EXPECT_EQ(shadow.version, 7);
  EXPECT_EQ(shadow.request_id, primary.request_id);
  EXPECT_EQ(shadow.primary_version, 1);
  EXPECT_EQ(shadow.primary_outputs, primary.outputs);
  EXPECT_EQ(shadow.primary_width, primary.width);
  EXPECT_EQ(shadow.outputs, Direct(**active_, shadow.rows));
  EXPECT_NE(shadow.outputs, primary.outputs);
  // The client got the serving version's answer only.
  std::vector<float> churn = Direct(**churn_, primary.rows);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(body["predictions"][i]["probabilities"]["1"].get<double>(),
              static_cast<double>(churn[i]));
  }

  // Infer is shadowed too.
  HttpRequest infer_request = request;
  infer_request.path = "/v2/models/shadowed/infer";
  infer_request.body = InferBody(StandardInputs()).dump();
  HttpResponse infer = router.Dispatch(infer_request);
  ASSERT_EQ(infer.status, 200) << infer.body;
  EXPECT_EQ(Parse(infer)["model_version"], "1");
  seen = observer.WaitFor(4);
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_TRUE(seen[3].shadow);
  EXPECT_EQ(seen[3].request_id, Parse(infer)["parameters"]["request_id"]);
  EXPECT_EQ(seen[3].primary_outputs, seen[2].outputs);
  // Counted just after it is observed.
  EXPECT_EQ(
      WaitForSample(metrics_, models_, ShadowSeries("shadowed", 7, "ok"), "2"),
      "2");

  // Without the shadow the answer is the same, byte for byte, up to the
  // request id.
  models_.EndShadow("shadowed");
  HttpResponse alone = router.Dispatch(request);
  auto without_id = [](const HttpResponse& response) {
    std::string text = response.body;
    const std::string id = json::parse(text)["request_id"];
    text.replace(text.find(id), id.size(), "ID");
    return text;
  };
  EXPECT_EQ(without_id(alone), without_id(shadowed));
  EXPECT_EQ(alone.headers.size(), shadowed.headers.size());
  EXPECT_EQ(Header(alone, "X-Model-Version"),
            Header(shadowed, "X-Model-Version"));
  EXPECT_EQ(observer.WaitFor(5).size(), 5u);
}

TEST_F(InferenceTest, ShadowErrorsAreCountedAndNeverReachTheClient) {
  RecordingObserver observer;
  Router router;
  AddInferenceRoutes(&router, &models_, &clock_, &metrics_, {}, &observer);
  BatchingOptions direct;
  direct.enabled = false;
  models_.AddApp("strict");
  ASSERT_TRUE(models_.Serve("strict", 1, LoaderOf(*churn_), direct).ok());
  HttpRequest request;
  request.method = "POST";
  request.path = "/v1/apps/strict/predict";
  request.body = ThreeRecords().dump();
  request.headers["content-type"] = "application/json";
  HttpResponse alone = router.Dispatch(request);
  ASSERT_EQ(alone.status, 200);
  const json expected = Parse(alone)["predictions"];

  // A shadow that lacks the request's feature 'visits'.
  std::shared_ptr<const Model> no_visits =
      TrainModel(TrainingTable(), "churned", {"visits"});
  ASSERT_EQ(no_visits->signature().FeatureIndex("visits"), -1);
  ASSERT_TRUE(
      models_.ServeShadow("strict", 2, LoaderOf(no_visits), direct).ok());
  HttpResponse response = router.Dispatch(request);
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(Parse(response)["predictions"], expected);
  EXPECT_EQ(Parse(response)["model_version"], 1);
  EXPECT_EQ(WaitForSample(metrics_, models_, ShadowSeries("strict", 2, "error"),
                          "1"),
            "1");
  std::string text = metrics_.Render(models_.States());
  EXPECT_EQ(Sample(text, ShadowSeries("strict", 2, "ok")), "0");
  EXPECT_EQ(Sample(text, ShadowSeries("strict", 2, "dropped")), "0");

  // A shadow whose backend fails.
  ASSERT_TRUE(models_
                  .ServeShadow("strict", 3,
                               LoaderOf(std::make_shared<FailingModel>(
                                   (*churn_)->signature())),
                               direct)
                  .ok());
  response = router.Dispatch(request);
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(Parse(response)["predictions"], expected);
  EXPECT_EQ(WaitForSample(metrics_, models_, ShadowSeries("strict", 3, "error"),
                          "1"),
            "1");
  // Only the answers were observed; a shadow's failure is not the app's.
  std::vector<RecordingObserver::Seen> seen = observer.Snapshot();
  ASSERT_EQ(seen.size(), 3u);
  for (const RecordingObserver::Seen& each : seen) {
    EXPECT_FALSE(each.shadow);
  }
  EXPECT_TRUE(observer.Failures().empty());
}

TEST_F(InferenceTest, AVersionsFailuresAreReportedToTheObserver) {
  RecordingObserver observer;
  Router router;
  AddInferenceRoutes(&router, &models_, &clock_, &metrics_, {}, &observer);
  BatchingOptions direct;
  direct.enabled = false;
  models_.AddApp("broken");
  ASSERT_TRUE(models_
                  .Serve("broken", 4,
                         LoaderOf(std::make_shared<FailingModel>(
                             (*churn_)->signature())),
                         direct)
                  .ok());
  HttpRequest request;
  request.method = "POST";
  request.path = "/v1/apps/broken/predict";
  request.body = ThreeRecords().dump();
  request.headers["content-type"] = "application/json";
  EXPECT_EQ(router.Dispatch(request).status, 500);
  // Bad input is the caller's failure, not the version's.
  request.body = "{\"records\": 3}";
  EXPECT_EQ(router.Dispatch(request).status, 400);
  EXPECT_EQ(observer.Failures(),
            (std::vector<std::pair<std::string, int>>{{"broken", 4}}));
  EXPECT_TRUE(observer.Snapshot().empty());
}

TEST_F(InferenceTest, ShadowWithAFullQueueDropsCopiesNotAnswers) {
  RecordingObserver observer;
  Router router;
  // The shadow's runner holds 2 copies; its first copy blocks it.
  AddInferenceRoutes(&router, &models_, &clock_, &metrics_, {}, &observer,
                     std::make_shared<ShadowRunner>(/*max_queued=*/2));
  BatchingOptions direct;
  direct.enabled = false;
  models_.AddApp("busy");
  ASSERT_TRUE(models_.Serve("busy", 1, LoaderOf(*churn_), direct).ok());
  auto blocking = std::make_shared<BlockingModel>((*churn_)->signature());
  ASSERT_TRUE(models_.ServeShadow("busy", 2, LoaderOf(blocking), direct).ok());
  HttpRequest request;
  request.method = "POST";
  request.path = "/v1/apps/busy/predict";
  request.body = json({{"records",
                        {{{"age", 30},
                          {"city", "lima"},
                          {"member", false},
                          {"visits", 1}}}}})
                     .dump();
  request.headers["content-type"] = "application/json";
  EXPECT_EQ(router.Dispatch(request).status, 200);
  blocking->started.WaitForNotification();
  // Two more copies fill the queue; the next two are dropped.
  for (int i = 0; i < 4; ++i) {
    HttpResponse response = router.Dispatch(request);
    EXPECT_EQ(response.status, 200) << response.body;
    EXPECT_EQ(Parse(response)["model_version"], 1);
  }
  std::string text = metrics_.Render(models_.States());
  EXPECT_EQ(Sample(text, ShadowSeries("busy", 2, "dropped")), "2");
  blocking->release.Notify();
  // The five answers and the three copies the shadow took.
  std::vector<RecordingObserver::Seen> seen = observer.WaitFor(5 + 3);
  int shadows = 0;
  for (const RecordingObserver::Seen& each : seen) {
    shadows += each.shadow;
    if (each.shadow) {
      EXPECT_EQ(each.outputs, std::vector<float>{0.25f});
    }
  }
  EXPECT_EQ(shadows, 3);
}

}  // namespace
}  // namespace slipway
