#include "pipeline/model_dir.h"

#include <string>

#include "core/filesystem.h"
#include "data/csv.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "models/model.h"
#include "models/transform.h"
#include "testing/temp_dir.h"
#include "train/trainer.h"

namespace slipway {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

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
  WriteUserModelDir("format: torchscript\n");
  EXPECT_THAT(std::string(ReadModelDir(fs_, Dir(), &table_).status().message()),
              HasSubstr("model.yaml:1:9: format 'torchscript' is not "
                        "supported; use `format: xgboost`"));
  WriteUserModelDir("format: xgboost\nepochs: 3\n");
  EXPECT_THAT(std::string(ReadModelDir(fs_, Dir(), &table_).status().message()),
              HasSubstr("model.yaml:2:1: unknown key 'epochs'"));
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

}  // namespace
}  // namespace slipway
