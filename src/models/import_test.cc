#include "models/import.h"

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "data/csv.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/torch_plugin.h"
#include "models/features.h"
#include "models/loader.h"
#include "models/model.h"
#include "models/model_bundle.h"
#include "models/xgboost_api.h"
#include "testing/python_reference.h"
#include "testing/temp_dir.h"
#include "train/trainer.h"

namespace slipway {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

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

// Python models made by /usr/bin/python3 once per test process:
//   named/model.joblib  LogisticRegression fitted on a DataFrame with
//                       columns b, a (feature_names_in_ in that order),
//                       classes_ [3, 7]
//   script/             model.py predicting helper.total(rows)
//   two/                x.pkl and y.pkl
constexpr char kPythonModelsScript[] = R"py(
import json, os, pickle, sys
import joblib
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression, Ridge

out = json.load(open(sys.argv[1]))[0]["dir"]
rng = np.random.default_rng(0)
X = rng.random((50, 2))
y = np.where(X[:, 0] > 0.5, 7, 3)
os.makedirs(out + "/named")
joblib.dump(LogisticRegression().fit(pd.DataFrame(X, columns=["b", "a"]), y),
            out + "/named/model.joblib")
os.makedirs(out + "/script")
with open(out + "/script/helper.py", "w") as f:
    f.write("def total(rows):\n    return rows.sum(axis=1)\n")
with open(out + "/script/model.py", "w") as f:
    f.write("import helper\ndef load(path):\n    pass\n"
            "def predict(rows):\n    return helper.total(rows)\n")
os.makedirs(out + "/two")
for name in ("x.pkl", "y.pkl"):
    with open(out + "/two/" + name, "wb") as f:
        pickle.dump(Ridge().fit(X, X[:, 0]), f)
json.dump([[0]], open(sys.argv[2], "w"))
)py";

const std::string& PythonModels() {
  static const std::string* dir = [] {
    static TempDir temp;
    absl::StatusOr<std::vector<std::vector<double>>> done = RunPythonReference(
        kPythonModelsScript, json::array({{{"dir", temp.path()}}}), 120000);
    EXPECT_TRUE(done.ok()) << done.status();
    return new std::string(temp.path());
  }();
  return *dir;
}

std::string Bundle(const std::string& name) {
  absl::StatusOr<std::string> bundle =
      PackModelFolder(PythonModels() + "/" + name);
  EXPECT_TRUE(bundle.ok()) << bundle.status();
  return *bundle;
}

std::string BundledFile(const std::string& bundle, const std::string& path) {
  absl::StatusOr<std::map<std::string, std::string>> files =
      ReadModelBundle(bundle);
  EXPECT_TRUE(files.ok()) << files.status();
  auto it = files->find(path);
  return it == files->end() ? "" : it->second;
}

TEST(ImportFolderTest, PickleTakesItsFeatureNamesAndClasses) {
  // The sample's column order differs from the model's.
  Table sample = *ParseCsv("a,b,label,note\n0.1,0.2,7,x\n0.9,0.5,3,y\n", "s");
  auto imported = ImportFolderModel(kPythonFormat, Bundle("named"),
                                    "model.joblib", std::nullopt, &sample,
                                    "label");
  ASSERT_TRUE(imported.ok()) << imported.status();
  const Signature& signature = imported->signature;
  EXPECT_EQ(signature.task(), Task::kBinaryClassification);
  EXPECT_EQ(signature.target(), "label");
  ASSERT_EQ(signature.features().size(), 2u);
  EXPECT_EQ(signature.features()[0].name, "b");
  EXPECT_EQ(signature.features()[1].name, "a");
  EXPECT_THAT(signature.class_labels(), ElementsAre("3", "7"));
  EXPECT_EQ(signature.label_type(), DataType::kInt64);
  EXPECT_TRUE(imported->runtime.contains("scikit-learn"));
  EXPECT_EQ(imported->params["file"], "model.joblib");

  // The stored bundle says how to serve it, and serves.
  const std::string yaml = BundledFile(imported->model_bytes, "model.yaml");
  EXPECT_THAT(yaml, HasSubstr("format: python\nfile: model.joblib\n"));
  EXPECT_THAT(yaml, HasSubstr("classes: [3, 7]"));
  EXPECT_THAT(yaml, HasSubstr("scikit-learn: "));
  ModelLoadOptions options;
  options.python.workers = 1;
  auto model = LoadModel(kPythonFormat, imported->model_bytes, signature, "",
                         options);
  ASSERT_TRUE(model.ok()) << model.status();
  std::vector<float> out;
  const float row[] = {0.99f, 0.0f};  // b > 0.5: class 7
  ASSERT_TRUE((*model)->Predict(row, 1, &out).ok());
  EXPECT_GT(out[0], 0.5f);

  Table partial = *ParseCsv("a,label\n0.1,7\n", "s");
  auto missing = ImportFolderModel(kPythonFormat, Bundle("named"),
                                   "model.joblib", std::nullopt, &partial,
                                   "label");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(missing.status().message()),
              HasSubstr("model 'model.joblib': was fitted on feature 'b', "
                        "which the sample has no column for"));
}

TEST(ImportFolderTest, ModelPyTakesTheSampleColumns) {
  Table sample =
      *ParseCsv("x,plan,y\n1.5,gold,2.5\n2.5,basic,3.5\n", "sample");
  auto imported = ImportFolderModel(kPythonFormat, Bundle("script"),
                                    "script", std::nullopt, &sample, "y");
  ASSERT_TRUE(imported.ok()) << imported.status();
  const Signature& signature = imported->signature;
  EXPECT_EQ(signature.task(), Task::kRegression);
  ASSERT_EQ(signature.features().size(), 2u);
  EXPECT_EQ(signature.features()[0].name, "x");
  EXPECT_THAT(signature.features()[1].categories,
              ElementsAre("basic", "gold"));
  EXPECT_FALSE(BundledFile(imported->model_bytes, "helper.py").empty());
  EXPECT_THAT(BundledFile(imported->model_bytes, "model.yaml"),
              HasSubstr("format: python\ntask: regression\ntarget: y\n"));

  // Without the target column nothing says what model.py predicts.
  auto unknown = ImportFolderModel(kPythonFormat, Bundle("script"), "script",
                                   std::nullopt, &sample, "");
  EXPECT_THAT(std::string(unknown.status().message()),
              HasSubstr("cannot tell what the model predicts"));
}

TEST(ImportFolderTest, SignatureTheModelRefusesIsRejected) {
  const json signature = {
      {"task", "binary_classification"},
      {"target", "label"},
      {"label_type", "int64"},
      {"class_labels", {"3", "7"}},
      {"features",
       {{{"name", "a"}, {"type", "float64"}},
        {{"name", "b"}, {"type", "float64"}},
        {{"name", "c"}, {"type", "float64"}}}}};
  auto imported = ImportFolderModel(kPythonFormat, Bundle("named"),
                                    "model.joblib", signature, nullptr, "");
  EXPECT_EQ(imported.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(imported.status().message()),
              HasSubstr("model 'model.joblib' does not load with its "
                        "signature"));
  EXPECT_THAT(std::string(imported.status().message()),
              HasSubstr("was fitted on 2 features but the signature lists 3"));
  EXPECT_THAT(std::string(imported.status().message()),
              Not(HasSubstr("/bundles/")));
}

TEST(ImportFolderTest, AmbiguousOrMissingModelFileIsNamed) {
  auto imported = ImportFolderModel(kPythonFormat, Bundle("two"), "two",
                                    std::nullopt, nullptr, "");
  EXPECT_EQ(imported.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(imported.status().message()),
              HasSubstr("model 'two': holds several model files (x.pkl, "
                        "y.pkl)"));
  imported = ImportFolderModel(kTorchScriptFormat, Bundle("two"), "two",
                               std::nullopt, nullptr, "");
  EXPECT_THAT(std::string(imported.status().message()),
              HasSubstr("holds no model file; give a model.pt"));
  imported = ImportFolderModel("onnx", Bundle("two"), "two", std::nullopt,
                               nullptr, "");
  EXPECT_THAT(std::string(imported.status().message()),
              HasSubstr("format 'onnx' is not a model folder format"));
}

TEST(ImportFolderTest, TorchScriptFileWithASample) {
  const std::string plugin = BuiltTorchPlugin();
  if (plugin.empty()) GTEST_SKIP() << "libslipway_torch.so was not built";
  setenv("SLIPWAY_TORCH_PLUGIN", plugin.c_str(), 1);
  TempDir tmp;
  absl::StatusOr<std::vector<std::vector<double>>> saved = RunPythonReference(
      R"py(
import json, sys
import torch
torch.manual_seed(0)
path = json.load(open(sys.argv[1]))[0]["path"]
net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Softmax(dim=1))
torch.jit.save(torch.jit.script(net), path)
json.dump([[0]], open(sys.argv[2], "w"))
)py",
      json::array({{{"path", tmp.path() + "/net.pt"}}}), 240000);
  ASSERT_TRUE(saved.ok()) << saved.status();
  Table sample = *ParseCsv(
      "u,v,kind\n1,2,cat\n3,4,dog\n5,6,eel\n7,8,cat\n", "sample");
  auto imported =
      ImportFolderModel(kTorchScriptFormat, *PackModelFolder(tmp.path()),
                        "net.pt", std::nullopt, &sample, "kind");
  ASSERT_TRUE(imported.ok()) << imported.status();
  EXPECT_EQ(imported->signature.task(), Task::kMulticlassClassification);
  EXPECT_THAT(imported->signature.class_labels(),
              ElementsAre("cat", "dog", "eel"));
  EXPECT_TRUE(imported->runtime.contains("torch"));
  EXPECT_THAT(BundledFile(imported->model_bytes, "model.yaml"),
              HasSubstr("format: torchscript\nfile: net.pt\n"));
}

}  // namespace
}  // namespace slipway
