#include "registry/model_diff.h"

#include "gtest/gtest.h"

namespace slipway {
namespace {

using nlohmann::json;

ModelVersionRecord Version(int version, const json& params,
                           const json& metrics, const json& signature) {
  ModelVersionRecord v;
  v.app = "churn";
  v.version = version;
  v.params_json = params.dump();
  v.metrics_json = metrics.dump();
  v.signature_json = signature.dump();
  return v;
}

json SignatureJson(const std::string& task, const json& labels,
               const json& features) {
  return {{"task", task},
          {"target", "churned"},
          {"label_type", "int64"},
          {"class_labels", labels},
          {"features", features}};
}

TEST(ModelDiffTest, ComparesParamsMetricsAndSignature) {
  ModelVersionRecord v1 = Version(
      1, {{"max_depth", 6}, {"eta", 0.3}, {"rounds", 100}},
      {{"auc", 0.9}, {"logloss", 0.3}, {"note", "x"}},
      SignatureJson("binary_classification", {"0", "1"},
                {{{"name", "age"}, {"type", "float64"}},
                 {{"name", "plan"},
                  {"type", "string"},
                  {"categories", {"basic", "gold"}}},
                 {{"name", "tenure"}, {"type", "int64"}},
                 {{"name", "region"},
                  {"type", "string"},
                  {"categories", {"eu", "us"}}},
                 {{"name", "old"}, {"type", "float64"}}}));
  ModelVersionRecord v2 = Version(
      2, {{"max_depth", 8}, {"eta", 0.3}, {"subsample", 0.8}},
      {{"auc", 0.95}, {"accuracy", 0.88}},
      SignatureJson("multiclass_classification", {"0", "1", "2"},
                {{{"name", "age"}, {"type", "float64"}},
                 {{"name", "plan"},
                  {"type", "string"},
                  {"categories", {"basic", "platinum"}}},
                 {{"name", "tenure"}, {"type", "float64"}},
                 {{"name", "region"},
                  {"type", "string"},
                  {"categories", {"us", "eu"}}},
                 {{"name", "new"}, {"type", "bool"}}}));

  json diff = DiffModelVersions(v1, v2);
  EXPECT_EQ(diff["app"], "churn");
  EXPECT_EQ(diff["from"], 1);
  EXPECT_EQ(diff["to"], 2);
  EXPECT_EQ(diff["params"],
            json::parse(R"([{"name":"max_depth","from":6,"to":8},
                            {"name":"rounds","from":100,"to":null},
                            {"name":"subsample","from":null,"to":0.8}])"));

  const json& metrics = diff["metrics"];
  ASSERT_EQ(metrics.size(), 4u);
  EXPECT_EQ(metrics[0]["name"], "accuracy");
  EXPECT_TRUE(metrics[0]["from"].is_null());
  EXPECT_TRUE(metrics[0]["difference"].is_null());
  EXPECT_EQ(metrics[1]["name"], "auc");
  EXPECT_NEAR(metrics[1]["difference"].get<double>(), 0.05, 1e-12);
  EXPECT_EQ(metrics[2]["name"], "logloss");
  EXPECT_TRUE(metrics[2]["to"].is_null());
  EXPECT_EQ(metrics[3]["name"], "note");
  EXPECT_TRUE(metrics[3]["difference"].is_null());

  const json& s = diff["signature"];
  EXPECT_EQ(s["task"], json::parse(R"({"from":"binary_classification",
                                       "to":"multiclass_classification"})"));
  EXPECT_TRUE(s["target"].is_null());
  EXPECT_EQ(s["class_labels"]["to"], json::parse(R"(["0","1","2"])"));
  EXPECT_EQ(s["features_added"],
            json::parse(R"([{"name":"new","type":"bool"}])"));
  EXPECT_EQ(s["features_removed"],
            json::parse(R"([{"name":"old","type":"float64"}])"));
  EXPECT_EQ(s["features_retyped"],
            json::parse(R"([{"name":"tenure","from":"int64","to":"float64"}])"));
  EXPECT_EQ(s["categories_changed"], json::parse(R"([
      {"name":"plan","added":["platinum"],"removed":["gold"],"reordered":false},
      {"name":"region","added":[],"removed":[],"reordered":true}])"));
  EXPECT_FALSE(s["order_changed"].get<bool>());
}

TEST(ModelDiffTest, SameVersionsShowNoChangesAndReorderingIsNoticed) {
  json features = {{{"name", "a"}, {"type", "float64"}},
                   {{"name", "b"}, {"type", "float64"}}};
  json swapped = {{{"name", "b"}, {"type", "float64"}},
                  {{"name", "a"}, {"type", "float64"}}};
  ModelVersionRecord v1 = Version(1, {{"eta", 0.1}}, {{"rmse", 2.0}},
                                  SignatureJson("regression", json::array(),
                                            features));
  json same = DiffModelVersions(v1, v1);
  EXPECT_TRUE(same["params"].empty());
  EXPECT_EQ(same["metrics"][0]["difference"], 0.0);
  EXPECT_TRUE(same["signature"]["task"].is_null());
  EXPECT_TRUE(same["signature"]["features_added"].empty());
  EXPECT_FALSE(same["signature"]["order_changed"].get<bool>());

  ModelVersionRecord v2 = Version(2, {{"eta", 0.1}}, {{"rmse", 2.0}},
                                  SignatureJson("regression", json::array(),
                                            swapped));
  EXPECT_TRUE(DiffModelVersions(v1, v2)["signature"]["order_changed"]
                  .get<bool>());

  ModelVersionRecord broken = v1;
  broken.params_json = "not json";
  broken.signature_json = "";
  json diff = DiffModelVersions(broken, v1);
  EXPECT_EQ(diff["params"][0]["name"], "eta");
  EXPECT_EQ(diff["signature"]["features_added"].size(), 2u);
}

}  // namespace
}  // namespace slipway
