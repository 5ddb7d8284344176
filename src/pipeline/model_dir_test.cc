#include "pipeline/model_dir.h"

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>

#include "core/filesystem.h"
#include "data/csv.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/torch_plugin.h"
#include "models/model.h"
#include "models/model_bundle.h"
#include "models/transform.h"
#include "testing/python_reference.h"
#include "testing/temp_dir.h"
#include "train/trainer.h"

namespace slipway {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

// 60 rows: a numeric, an integer and a categorical feature, a 0/1 label.
Table TrainingTable() {
  std::string csv = "size,rooms,color,label\n";
  const char* colors[] = {"red", "green", "blue"};
  for (int i = 0; i < 60; ++i) {
    csv += std::to_string(i % 7 * 0.5) + "," + std::to_string(i % 4 + 1) + "," +
           colors[i % 3] + "," + ((i % 3 == 0 || i % 7 > 4) ? "1" : "0") + "\n";
  }
  absl::StatusOr<Table> table = ParseCsv(csv, "training rows");
  EXPECT_TRUE(table.ok()) << table.status();
  return *table;
}

TrainedModel Train(const Table& table) {
  TrainOptions options;
  options.rounds = 5;
  options.threads = 1;
  absl::StatusOr<TrainedModel> trained = TrainXgboost(table, "label", options);
  EXPECT_TRUE(trained.ok()) << trained.status();
  return *trained;
}

class ModelDirTest : public ::testing::Test {
 protected:
  std::string Dir() { return JoinPath(tmp_.path(), "model"); }
  void Write(const std::string& name, const std::string& text) {
    ASSERT_TRUE(fs_->WriteFileAtomic(JoinPath(Dir(), name), text).ok());
  }
  // A model directory as user code leaves it: model.json and model.yaml.
  void WriteUserModelDir(const std::string& model_yaml) {
    ASSERT_TRUE(fs_->CreateDirs(Dir()).ok());
    Write("model.json", trained_.model_bytes);
    Write("model.yaml", model_yaml);
  }

  Filesystem* fs_ = LocalFilesystem();
  TempDir tmp_;
  Table table_ = TrainingTable();
  TrainedModel trained_ = Train(table_);
};

TEST_F(ModelDirTest, WrittenDirectoryReadsBack) {
  const nlohmann::json params = {{"rounds", 5}};
  absl::StatusOr<FeatureTransform> transform = FeatureTransform::Fit(
      table_, {"size", "rooms", "color"}, TransformOptions());
  ASSERT_TRUE(transform.ok()) << transform.status();
  const std::string transform_json = transform->ToJson().dump();
  ASSERT_TRUE(WriteModelDir(fs_, Dir(), kXgboostJsonFormat,
                            trained_.model_bytes, trained_.signature, params,
                            transform_json)
                  .ok());
  absl::StatusOr<ModelDir> model = ReadModelDir(fs_, Dir(), nullptr);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->format, kXgboostJsonFormat);
  EXPECT_EQ(model->model_bytes, trained_.model_bytes);
  EXPECT_EQ(model->signature.ToJson(), trained_.signature.ToJson());
  EXPECT_EQ(model->params, params);
  EXPECT_EQ(model->transform_json, transform_json);
  EXPECT_THAT(*fs_->ReadFile(JoinPath(Dir(), "model.yaml")),
              HasSubstr("format: xgboost\n"));
}

TEST_F(ModelDirTest, SignatureIsDerivedFromTheModelAndTheInput) {
  WriteUserModelDir("format: xgboost\n");
  absl::StatusOr<ModelDir> model = ReadModelDir(fs_, Dir(), &table_, "label");
  ASSERT_TRUE(model.ok()) << model.status();
  // The trainer's own signature: same names, types, categories, classes.
  EXPECT_EQ(model->signature.ToJson(), trained_.signature.ToJson());
  EXPECT_TRUE(model->transform_json.empty());
  EXPECT_EQ(model->params, nlohmann::json::object());
}

TEST_F(ModelDirTest, ModelYamlGivesCategoriesClassesAndTarget) {
  WriteUserModelDir(
      "format: xgboost\n"
      "target: churned\n"
      "classes: [stay, leave]\n"
      "features: [{name: color, categories: [blue, green, red]}]\n");
  absl::StatusOr<ModelDir> model = ReadModelDir(fs_, Dir(), nullptr);
  ASSERT_TRUE(model.ok()) << model.status();
  const Signature& signature = model->signature;
  EXPECT_EQ(signature.target(), "churned");
  EXPECT_EQ(signature.label_type(), DataType::kString);
  EXPECT_THAT(signature.class_labels(), ElementsAre("stay", "leave"));
  EXPECT_EQ(signature.features()[0].type, DataType::kFloat64);
  EXPECT_THAT(signature.features()[2].categories,
              ElementsAre("blue", "green", "red"));
}

TEST_F(ModelDirTest, CategoricalFeatureWithoutCategoriesIsRefused) {
  WriteUserModelDir("format: xgboost\n");
  absl::StatusOr<ModelDir> model = ReadModelDir(fs_, Dir(), nullptr);
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(model.status().message()),
              HasSubstr(Dir() + "/model.json: categorical feature 'color' "
                                "needs its categories"));
  EXPECT_THAT(std::string(model.status().message()),
              HasSubstr("`features: [{name: color, categories: [...]}]`"));
}

TEST_F(ModelDirTest, MissingModelYamlIsNamed) {
  ASSERT_TRUE(fs_->CreateDirs(Dir()).ok());
  Write("model.json", trained_.model_bytes);
  absl::StatusOr<ModelDir> model = ReadModelDir(fs_, Dir(), &table_);
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(model.status().message()),
              HasSubstr(Dir() + "/model.yaml: missing; a model directory "
                                "needs model.yaml with at least `format: "
                                "xgboost`"));
}

TEST_F(ModelDirTest, UnknownFormatAndKeysAreRefusedAtTheirLine) {
  WriteUserModelDir("format: onnx\n");
  EXPECT_THAT(std::string(ReadModelDir(fs_, Dir(), &table_).status().message()),
              HasSubstr("model.yaml:1:9: format 'onnx' is not supported; use "
                        "`format: xgboost`"));
  WriteUserModelDir("format: xgboost\nepochs: 3\n");
  EXPECT_THAT(std::string(ReadModelDir(fs_, Dir(), &table_).status().message()),
              HasSubstr("model.yaml:2:1: unknown key 'epochs'"));
  WriteUserModelDir("format: xgboost\noutput: logits\n");
  EXPECT_THAT(std::string(ReadModelDir(fs_, Dir(), &table_).status().message()),
              HasSubstr("model.yaml:2:1: 'output' applies to torchscript "
                        "models only"));
  WriteUserModelDir("format: torchscript\noutput: scores\n");
  EXPECT_THAT(std::string(ReadModelDir(fs_, Dir(), &table_).status().message()),
              HasSubstr("model.yaml:2:9: output 'scores' is not known"));
  WriteUserModelDir("format: python\nfile: model.py\n");
  EXPECT_THAT(std::string(ReadModelDir(fs_, Dir(), &table_).status().message()),
              HasSubstr("model.yaml: `file: model.py`: omit `file`"));
  WriteUserModelDir("format: python\nruntime: [3.11]\n");
  EXPECT_THAT(std::string(ReadModelDir(fs_, Dir(), &table_).status().message()),
              HasSubstr("model.yaml:2:10: 'runtime' must map packages"));
  WriteUserModelDir("format: xgboost\nfile: ../../etc/passwd\n");
  EXPECT_THAT(std::string(ReadModelDir(fs_, Dir(), &table_).status().message()),
              HasSubstr("must name a file inside the model directory"));
}

TEST_F(ModelDirTest, MissingModelFileIsNamed) {
  WriteUserModelDir("format: xgboost\nfile: booster.json\n");
  absl::StatusOr<ModelDir> model = ReadModelDir(fs_, Dir(), &table_);
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(model.status().message()),
              HasSubstr(Dir() + "/booster.json: missing; model.yaml names it"));
}

TEST_F(ModelDirTest, WrongClassCountIsRefused) {
  WriteUserModelDir("format: xgboost\nclasses: [a, b, c]\n");
  EXPECT_THAT(std::string(ReadModelDir(fs_, Dir(), &table_).status().message()),
              HasSubstr("lists 3 classes but the model has 2"));
}

TEST_F(ModelDirTest, BrokenModelFailsWithTheReason) {
  WriteUserModelDir("format: xgboost\n");
  Write("model.json", "{\"learner\": {}}");
  absl::StatusOr<ModelDir> model = ReadModelDir(fs_, Dir(), &table_);
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(model.status().message()),
              HasSubstr(Dir() + "/model.json"));

  Write("model.json", "not json");
  EXPECT_THAT(std::string(ReadModelDir(fs_, Dir(), &table_).status().message()),
              HasSubstr("not an XGBoost JSON model; save it with "
                        "Booster.save_model(\"model.json\")"));
}

TEST_F(ModelDirTest, BrokenTransformIsRefused) {
  WriteUserModelDir("format: xgboost\n");
  Write("transform.json", "{\"version\": 1, \"features\": 3}");
  absl::StatusOr<ModelDir> model = ReadModelDir(fs_, Dir(), &table_);
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(model.status().message()),
              HasSubstr("does not load with its signature and transform.json"));
}

TEST_F(ModelDirTest, SignatureThatDoesNotFitTheModelIsRefused) {
  WriteUserModelDir("format: xgboost\n");
  nlohmann::json signature = trained_.signature.ToJson();
  signature["task"] = "regression";
  signature["class_labels"] = nlohmann::json::array();
  Write("signature.json", signature.dump());
  absl::StatusOr<ModelDir> model = ReadModelDir(fs_, Dir(), &table_);
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(model.status().message()),
              HasSubstr("does not load with its signature"));
  EXPECT_THAT(std::string(model.status().message()),
              HasSubstr("classification objective"));
}

// Python and TorchScript model folders, made by /usr/bin/python3 once per
// test process:
//   named/model.joblib   LogisticRegression fitted on a DataFrame with
//                        columns size, rooms, color (feature_names_in_)
//   plain/model.joblib   Ridge fitted on a 2-column array (no names)
//   script/model.py      predict(rows) = helper.total(rows); helper.py
//                        and scale.txt beside it
constexpr char kPythonModelsScript[] = R"py(
import json, os, sys
import joblib
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression, Ridge

out = json.load(open(sys.argv[1]))[0]["dir"]
rng = np.random.default_rng(0)
X = rng.random((60, 3))
y = (X[:, 0] + X[:, 2] > 1).astype(int)
os.makedirs(out + "/named")
joblib.dump(LogisticRegression().fit(
    pd.DataFrame(X, columns=["size", "rooms", "color"]), y),
    out + "/named/model.joblib")
os.makedirs(out + "/plain")
joblib.dump(Ridge().fit(X[:, :2], X[:, 0] * 2), out + "/plain/model.joblib")
os.makedirs(out + "/script")
with open(out + "/script/helper.py", "w") as f:
    f.write("def total(rows, scale):\n    return rows.sum(axis=1) * scale\n")
with open(out + "/script/scale.txt", "w") as f:
    f.write("2\n")
with open(out + "/script/model.py", "w") as f:
    f.write("import os\nimport helper\nSCALE = 1.0\n"
            "def load(path):\n    global SCALE\n"
            "    SCALE = float(open(os.path.join(path, 'scale.txt')).read())\n"
            "def predict(rows):\n    return helper.total(rows, SCALE)\n")
json.dump([[0]], open(sys.argv[2], "w"))
)py";

const std::string& PythonModels() {
  static const std::string* dir = [] {
    static TempDir temp;
    absl::StatusOr<std::vector<std::vector<double>>> done = RunPythonReference(
        kPythonModelsScript, nlohmann::json::array({{{"dir", temp.path()}}}),
        120000);
    EXPECT_TRUE(done.ok()) << done.status();
    return new std::string(temp.path());
  }();
  return *dir;
}

class FolderModelDirTest : public ModelDirTest {
 protected:
  // Copies the folder `name` of PythonModels() to Dir() and adds model.yaml.
  void UseFolder(const std::string& name, const std::string& model_yaml) {
    std::filesystem::remove_all(Dir());
    std::filesystem::copy(JoinPath(PythonModels(), name), Dir(),
                          std::filesystem::copy_options::recursive);
    Write("model.yaml", model_yaml);
  }
};

TEST_F(FolderModelDirTest, PythonFolderTravelsWhole) {
  UseFolder("script",
            "format: python\n"
            "task: regression\n"
            "target: label\n"
            "features: [{name: size}, {name: rooms, type: int64}]\n"
            "runtime: {python: \"3.0.0\"}\n");
  absl::StatusOr<ModelDir> model = ReadModelDir(fs_, Dir(), nullptr);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->format, kPythonFormat);
  EXPECT_EQ(model->model_bytes, *PackModelFolder(Dir()));
  absl::StatusOr<std::map<std::string, std::string>> files =
      ReadModelBundle(model->model_bytes);
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_EQ(files->size(), 4u);
  EXPECT_TRUE(files->count("helper.py"));
  EXPECT_TRUE(files->count("model.yaml"));
  EXPECT_EQ(model->signature.task(), Task::kRegression);
  EXPECT_EQ(model->signature.target(), "label");
  ASSERT_EQ(model->signature.features().size(), 2u);
  EXPECT_EQ(model->signature.features()[1].type, DataType::kInt64);
  // What the worker ran on, not what model.yaml said.
  EXPECT_TRUE(model->runtime.contains("python"));
  EXPECT_NE(model->runtime["python"], "3.0.0");
}

TEST_F(FolderModelDirTest, PickleFeatureNamesConfirmTheInputTable) {
  UseFolder("named",
            "format: python\nfile: model.joblib\n"
            "task: binary_classification\n");
  absl::StatusOr<ModelDir> model = ReadModelDir(fs_, Dir(), &table_, "label");
  ASSERT_TRUE(model.ok()) << model.status();
  const Signature& signature = model->signature;
  ASSERT_EQ(signature.features().size(), 3u);
  EXPECT_EQ(signature.features()[0].name, "size");
  EXPECT_EQ(signature.features()[1].type, DataType::kInt64);
  EXPECT_THAT(signature.features()[2].categories,
              ElementsAre("blue", "green", "red"));
  EXPECT_EQ(signature.target(), "label");
  // classes_ as the pickled classifier gives them.
  EXPECT_THAT(signature.class_labels(), ElementsAre("0", "1"));
  EXPECT_EQ(signature.label_type(), DataType::kInt64);
  EXPECT_TRUE(model->runtime.contains("scikit-learn"));

  // Without an input table the features must be listed.
  absl::StatusOr<ModelDir> unnamed = ReadModelDir(fs_, Dir(), nullptr);
  EXPECT_EQ(unnamed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(unnamed.status().message()),
              HasSubstr(Dir() + "/model.yaml: lists no 'features'; a python "
                                "model file does not name its inputs"));
}

TEST_F(FolderModelDirTest, InputColumnsMustBeConfirmedByTheModel) {
  // A model fitted on an array cannot confirm the table's columns.
  UseFolder("plain", "format: python\nfile: model.joblib\ntask: regression\n");
  Table two = *ParseCsv("size,rooms,label\n1,2,3\n", "rows");
  absl::StatusOr<ModelDir> model = ReadModelDir(fs_, Dir(), &two, "label");
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(model.status().message()),
              HasSubstr("model.yaml: lists no 'features' and model.joblib "
                        "records no feature_names_in_"));
  // Columns in another order than the fitted names: the model says which.
  UseFolder("named",
            "format: python\nfile: model.joblib\n"
            "task: binary_classification\n");
  Table reordered = *ParseCsv("rooms,size,color,label\n1,2,3,0\n", "rows");
  model = ReadModelDir(fs_, Dir(), &reordered, "label");
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(model.status().message()),
              HasSubstr("does not load with its signature"));
  EXPECT_THAT(std::string(model.status().message()),
              HasSubstr("list the model's inputs in model order"));
}

TEST_F(FolderModelDirTest, FolderFormatsNeedTaskAndFeatures) {
  UseFolder("plain", "format: python\nfile: model.joblib\n");
  absl::StatusOr<ModelDir> model = ReadModelDir(fs_, Dir(), nullptr);
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(model.status().message()),
              HasSubstr(Dir() + "/model.yaml: missing 'task'; a python model "
                                "does not record what it predicts"));

  UseFolder("plain", "format: python\nfile: gone.joblib\ntask: regression\n");
  EXPECT_THAT(std::string(ReadModelDir(fs_, Dir(), nullptr).status().message()),
              HasSubstr(Dir() + "/gone.joblib: missing; model.yaml names it"));

  UseFolder("plain",
            "format: python\nfile: model.joblib\ntask: regression\n"
            "features: [{name: a}, {name: b}, {name: c}]\n");
  EXPECT_THAT(std::string(ReadModelDir(fs_, Dir(), nullptr).status().message()),
              HasSubstr("was fitted on 2 features but the signature lists 3"));

  UseFolder("plain",
            "format: python\nfile: model.joblib\n"
            "task: multiclass_classification\nfeatures: [{name: a}]\n");
  EXPECT_THAT(std::string(ReadModelDir(fs_, Dir(), nullptr).status().message()),
              HasSubstr("a multiclass model needs its classes"));
}

TEST_F(FolderModelDirTest, PythonSignatureJsonWinsAndWritesBack) {
  UseFolder("plain",
            "format: python\nfile: model.joblib\ntask: regression\n"
            "features: [{name: a}, {name: b}]\n");
  absl::StatusOr<ModelDir> model = ReadModelDir(fs_, Dir(), nullptr, "y");
  ASSERT_TRUE(model.ok()) << model.status();

  // As `slipway models export` writes a registered version.
  const std::string out = JoinPath(tmp_.path(), "exported");
  const nlohmann::json params = {{"alpha", 1}};
  ASSERT_TRUE(WriteModelDir(fs_, out, kPythonFormat, model->model_bytes,
                            model->signature, params, "")
                  .ok());
  EXPECT_EQ(*fs_->ReadFile(JoinPath(out, "model.yaml")),
            *fs_->ReadFile(JoinPath(Dir(), "model.yaml")));
  EXPECT_EQ(*fs_->ReadFile(JoinPath(out, "model.joblib")),
            *fs_->ReadFile(JoinPath(Dir(), "model.joblib")));
  absl::StatusOr<ModelDir> back = ReadModelDir(fs_, out, nullptr);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->signature.ToJson(), model->signature.ToJson());
  EXPECT_EQ(back->params, params);

  EXPECT_THAT(std::string(WriteModelDir(fs_, out, kPythonFormat, "not a tar",
                                        model->signature, params, "")
                              .message()),
              HasSubstr("not a tar archive"));
}

TEST_F(ModelDirTest, TorchScriptFolder) {
  const std::string plugin = BuiltTorchPlugin();
  if (plugin.empty()) GTEST_SKIP() << "libslipway_torch.so was not built";
  setenv("SLIPWAY_TORCH_PLUGIN", plugin.c_str(), 1);
  ASSERT_TRUE(fs_->CreateDirs(Dir()).ok());
  absl::StatusOr<std::vector<std::vector<double>>> saved = RunPythonReference(
      R"py(
import json, sys
import torch
torch.manual_seed(0)
path = json.load(open(sys.argv[1]))[0]["path"]
torch.jit.save(torch.jit.script(torch.nn.Linear(3, 2)), path)
json.dump([[0]], open(sys.argv[2], "w"))
)py",
      nlohmann::json::array({{{"path", JoinPath(Dir(), "net.pt")}}}), 240000);
  ASSERT_TRUE(saved.ok()) << saved.status();
  Write("model.yaml",
        "format: torchscript\nfile: net.pt\noutput: logits\n"
        "task: binary_classification\nclasses: [stay, leave]\n"
        "features: [{name: size}, {name: rooms}, {name: color}]\n");
  absl::StatusOr<ModelDir> model = ReadModelDir(fs_, Dir(), &table_, "label");
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->format, kTorchScriptFormat);
  EXPECT_THAT(*ReadModelBundle(model->model_bytes),
              ElementsAre(Pair("model.yaml", testing::_),
                          Pair("net.pt", *fs_->ReadFile(JoinPath(Dir(), "net.pt")))));
  EXPECT_THAT(model->signature.class_labels(), ElementsAre("stay", "leave"));
  // color is categorical in the input table.
  EXPECT_THAT(model->signature.features()[2].categories,
              ElementsAre("blue", "green", "red"));
  EXPECT_TRUE(model->runtime.contains("torch"));

  // Two output columns do not fit a regression.
  Write("model.yaml",
        "format: torchscript\nfile: net.pt\ntask: regression\n"
        "features: [{name: size}, {name: rooms}, {name: color}]\n");
  EXPECT_THAT(std::string(ReadModelDir(fs_, Dir(), &table_).status().message()),
              HasSubstr(Dir() + "/net.pt: does not load with its signature"));
}

}  // namespace
}  // namespace slipway
