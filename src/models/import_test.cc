#include "models/import.h"

#include <string>
#include <vector>

#include "data/csv.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "models/features.h"
#include "models/model.h"
#include "models/xgboost_api.h"
#include "train/trainer.h"

namespace slipway {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

Table Sample() {
  std::string csv = "age,plan,y\n";
  const char* plans[] = {"gold", "basic", "silver"};
  for (int i = 0; i < 90; ++i) {
    const int age = 20 + (i * 7) % 50;
    const char* plan = plans[i % 3];
    const int y = (age > 40) != (i % 3 == 0) ? 1 : 0;
    csv += std::to_string(age) + "." + std::to_string(i % 10) + "," + plan +
           "," + std::to_string(y) + "\n";
  }
  return *ParseCsv(csv, "sample");
}

TrainedModel Train(const Table& table) {
  TrainOptions options;
  options.rounds = 8;
  options.max_depth = 3;
  options.threads = 1;
  absl::StatusOr<TrainedModel> trained = TrainXgboost(table, "y", options);
  EXPECT_TRUE(trained.ok()) << trained.status();
  return *std::move(trained);
}

std::vector<float> PredictAll(const Model& model, const Table& table) {
  std::vector<float> rows;
  EXPECT_TRUE(EncodeTable(model.signature(), table, &rows, nullptr).ok());
  std::vector<float> out;
  EXPECT_TRUE(model.Predict(rows.data(), table.num_rows(), &out).ok());
  return out;
}

// The model as UBJSON, as Booster.save_model("m.ubj") writes it.
std::string ToUbj(const std::string& json_bytes) {
  void* handle = nullptr;
  EXPECT_EQ(XGBoosterCreate(nullptr, 0, &handle), 0);
  XgbBooster booster(handle);
  EXPECT_EQ(XGBoosterLoadModelFromBuffer(booster.get(), json_bytes.data(),
                                         json_bytes.size()),
            0);
  bst_ulong length = 0;
  const char* out = nullptr;
  EXPECT_EQ(XGBoosterSaveModelToBuffer(booster.get(), R"({"format": "ubj"})",
                                       &length, &out),
            0);
  return std::string(out, length);
}

TEST(ImportTest, DerivesTheSignatureFromTheModelAndTheSample) {
  Table sample = Sample();
  TrainedModel trained = Train(sample);
  auto imported =
      ImportXgboostModel(trained.model_bytes, "model.json", std::nullopt,
                         &sample);
  ASSERT_TRUE(imported.ok()) << imported.status();
  EXPECT_EQ(imported->format, kXgboostJsonFormat);
  EXPECT_EQ(imported->model_bytes, trained.model_bytes);
  EXPECT_EQ(imported->signature.ToJson(), trained.signature.ToJson());
  EXPECT_EQ(imported->params["objective"], "binary:logistic");
  EXPECT_EQ(imported->params["num_feature"], 2);
}

TEST(ImportTest, UbjModelsPredictAsTheirJsonOriginal) {
  Table sample = Sample();
  TrainedModel trained = Train(sample);
  const std::string ubj = ToUbj(trained.model_bytes);
  ASSERT_NE(ubj.substr(0, 2), "{\"");
  auto imported = ImportXgboostModel(ubj, "model.ubj",
                                     trained.signature.ToJson(), nullptr);
  ASSERT_TRUE(imported.ok()) << imported.status();
  EXPECT_EQ(imported->model_bytes[1], '"');  // stored as native JSON
  auto original = LoadModel(kXgboostJsonFormat, trained.model_bytes,
                            trained.signature);
  auto converted = LoadModel(imported->format, imported->model_bytes,
                             imported->signature);
  ASSERT_TRUE(original.ok() && converted.ok());
  EXPECT_EQ(PredictAll(**converted, sample), PredictAll(**original, sample));
}

TEST(ImportTest, RefusesBrokenFilesAndSignaturesTheModelDoesNotAccept) {
  Table sample = Sample();
  TrainedModel trained = Train(sample);

  auto garbage = ImportXgboostModel("PK\x03\x04 not a model", "model.zip",
                                    std::nullopt, &sample);
  EXPECT_EQ(garbage.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(garbage.status().message()),
              HasSubstr("model file 'model.zip': is neither XGBoost JSON"));

  auto truncated = ImportXgboostModel(
      trained.model_bytes.substr(0, trained.model_bytes.size() / 2),
      "model.json", std::nullopt, &sample);
  EXPECT_EQ(truncated.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(truncated.status().message()),
              HasSubstr("XGBoost cannot load it"));

  json three = trained.signature.ToJson();
  three["features"].push_back({{"name", "extra"}, {"type", "float64"}});
  auto wrong = ImportXgboostModel(trained.model_bytes, "model.json", three,
                                  nullptr);
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(wrong.status().message()),
              HasSubstr("does not accept the signature"));

  auto no_categories = ImportXgboostModel(trained.model_bytes, "model.json",
                                          std::nullopt, nullptr);
  EXPECT_THAT(std::string(no_categories.status().message()),
              HasSubstr("categorical feature 'plan' needs its categories"));
}

TEST(ImportTest, ReadsTheXgboostFlavorOfAnMlmodelFile) {
  const std::string mlmodel = R"(artifact_path: model
flavors:
  python_function:
    data: model.xgb
    env: {conda: conda.yaml, virtualenv: python_env.yaml}
    loader_module: mlflow.xgboost
    python_version: 3.11.2
  xgboost:
    code: null
    data: model.xgb
    model_class: xgboost.core.Booster
    model_format: xgb
    xgb_version: 1.7.4
mlflow_version: 2.9.2
model_uuid: 3f1c
)";
  EXPECT_EQ(*MlflowXgboostDataPath(mlmodel, "m/MLmodel"), "model.xgb");

  auto sklearn = MlflowXgboostDataPath(
      "flavors:\n  python_function: {data: model.pkl}\n  sklearn: "
      "{pickled_model: model.pkl}\n",
      "m/MLmodel");
  EXPECT_EQ(sklearn.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(sklearn.status().message()),
              HasSubstr("MLmodel 'm/MLmodel' has no xgboost flavor (its "
                        "flavors: python_function, sklearn)"));
  EXPECT_THAT(std::string(MlflowXgboostDataPath("flavors:\n  xgboost: {}\n",
                                                "m/MLmodel")
                              .status()
                              .message()),
              HasSubstr("flavors.xgboost.data is missing"));
  EXPECT_THAT(std::string(MlflowXgboostDataPath(
                              "flavors:\n  xgboost: {data: ../../etc/x}\n",
                              "m/MLmodel")
                              .status()
                              .message()),
              HasSubstr("must be a path inside the model directory"));
  EXPECT_THAT(std::string(
                  MlflowXgboostDataPath("[1, 2", "m/MLmodel").status().message()),
              HasSubstr("is not an MLflow model file"));
}

}  // namespace
}  // namespace slipway
