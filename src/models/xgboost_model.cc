#include "models/xgboost_model.h"

#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "core/status.h"
#include "models/xgboost_api.h"
#include "nlohmann/json.hpp"

namespace slipway {
namespace {

// Plain value prediction over every tree; "cache_id" is required by 1.7's
// inplace prediction although only 0 is supported. NaN marks missing cells,
// as in features.h and in Python's DMatrix default.
constexpr char kPredictConfig[] =
    "{\"type\":0,\"training\":false,\"iteration_begin\":0,"
    "\"iteration_end\":0,\"strict_shape\":false,\"cache_id\":0,"
    "\"missing\":NaN}";

// What the loaded booster says about itself (from XGBoosterSaveJsonConfig).
struct BoosterFacts {
  std::string objective;
  std::string booster;  // gbtree, dart or gblinear
  int num_class = 0;    // 0 unless multi:*
};

std::string StringAtPointer(const nlohmann::json& config,
                            const std::string& pointer) {
  try {
    const nlohmann::json::json_pointer path(pointer);
    if (!config.contains(path)) return std::string();
    const nlohmann::json& value = config.at(path);
    return value.is_string() ? value.get<std::string>() : std::string();
  } catch (const nlohmann::json::exception&) {
    return std::string();
  }
}

absl::StatusOr<BoosterFacts> ReadBoosterFacts(void* booster) {
  bst_ulong length = 0;
  const char* text = nullptr;
  RETURN_IF_ERROR(XgbCheck(XGBoosterSaveJsonConfig(booster, &length, &text),
                           "xgboost-json model: reading its configuration",
                           absl::StatusCode::kInvalidArgument));
  const nlohmann::json config =
      nlohmann::json::parse(std::string(text, length), nullptr,
                            /*allow_exceptions=*/false);
  if (config.is_discarded()) {
    return absl::InternalError(
        "xgboost-json model: XGBoost returned a configuration that is not "
        "JSON");
  }
  BoosterFacts facts;
  facts.objective = StringAtPointer(config, "/learner/objective/name");
  facts.booster = StringAtPointer(config, "/learner/gradient_booster/name");
  const std::string num_class =
      StringAtPointer(config, "/learner/learner_model_param/num_class");
  if (!num_class.empty() && !absl::SimpleAtoi(num_class, &facts.num_class)) {
    return absl::InvalidArgumentError("xgboost-json model: num_class '" +
                                      num_class + "' is not a number");
  }
  return facts;
}

bool StartsWith(const std::string& text, std::string_view prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

absl::Status CheckObjective(const Signature& signature,
                            const BoosterFacts& facts) {
  const std::string& objective = facts.objective;
  switch (signature.task()) {
    case Task::kBinaryClassification:
      if (objective != "binary:logistic") {
        return absl::InvalidArgumentError(
            "xgboost-json model: objective '" + objective +
            "' does not give the class-1 probability a "
            "binary_classification signature needs; train with "
            "binary:logistic");
      }
      return absl::OkStatus();
    case Task::kMulticlassClassification:
      if (objective != "multi:softprob") {
        return absl::InvalidArgumentError(
            "xgboost-json model: objective '" + objective +
            "' does not give class probabilities; a "
            "multiclass_classification signature needs multi:softprob");
      }
      if (static_cast<size_t>(facts.num_class) !=
          signature.class_labels().size()) {
        return absl::InvalidArgumentError(
            "xgboost-json model has " + std::to_string(facts.num_class) +
            " classes but the signature lists " +
            std::to_string(signature.class_labels().size()) + " class labels");
      }
      return absl::OkStatus();
    case Task::kRegression:
      if (StartsWith(objective, "binary:") || StartsWith(objective, "multi:")) {
        return absl::InvalidArgumentError(
            "xgboost-json model: objective '" + objective +
            "' is a classification objective but the signature's task is "
            "regression");
      }
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

absl::Status CheckFeatures(void* booster, const Signature& signature) {
  const std::vector<FeatureSpec>& features = signature.features();
  bst_ulong num_features = 0;
  RETURN_IF_ERROR(XgbCheck(XGBoosterGetNumFeature(booster, &num_features),
                           "xgboost-json model: reading its feature count",
                           absl::StatusCode::kInvalidArgument));
  if (num_features != features.size()) {
    return absl::InvalidArgumentError(
        "xgboost-json model takes " + std::to_string(num_features) +
        " features but the signature lists " + std::to_string(features.size()));
  }
  bst_ulong num_names = 0;
  const char** names = nullptr;
  RETURN_IF_ERROR(XgbCheck(
      XGBoosterGetStrFeatureInfo(booster, "feature_name", &num_names, &names),
      "xgboost-json model: reading its feature names",
      absl::StatusCode::kInvalidArgument));
  // Models trained without names (plain numpy arrays) record none; then
  // only the count can be checked.
  if (num_names == 0) return absl::OkStatus();
  if (num_names != features.size()) {
    return absl::InvalidArgumentError(
        "xgboost-json model names " + std::to_string(num_names) +
        " features but the signature lists " + std::to_string(features.size()));
  }
  for (size_t i = 0; i < num_names; ++i) {
    if (features[i].name != names[i]) {
      return absl::InvalidArgumentError(
          "xgboost-json model's feature " + std::to_string(i) + " is '" +
          names[i] + "' but the signature's is '" + features[i].name +
          "'; list the signature's features in the model's order");
    }
  }
  return absl::OkStatus();
}

class XgboostModel final : public Model {
 public:
  XgboostModel(Signature signature, XgbBooster booster)
      : Model(std::move(signature)), booster_(std::move(booster)) {}

  std::string_view format() const override { return kXgboostJsonFormat; }

  // Safe to run concurrently: see the header. Load also calls it once, to
  // configure the booster eagerly and check the output width.
  absl::Status Predict(const float* rows, size_t num_rows,
                       std::vector<float>* out) const override {
    const size_t width = static_cast<size_t>(signature().output_width());
    if (num_rows == 0) {
      out->clear();
      return absl::OkStatus();
    }
    if (rows == nullptr) {
      return absl::InvalidArgumentError("predict: no input rows given for " +
                                        std::to_string(num_rows) + " rows");
    }
    const std::string array =
        DenseArrayInterface(rows, num_rows, signature().features().size());
    ASSIGN_OR_RETURN(void* proxy, ThreadProxy());
    const bst_ulong* shape = nullptr;
    bst_ulong dims = 0;
    const float* result = nullptr;
    RETURN_IF_ERROR(XgbCheck(
        XGBoosterPredictFromDense(booster_.get(), array.c_str(), kPredictConfig,
                                  proxy, &shape, &dims, &result),
        "xgboost predict", absl::StatusCode::kInvalidArgument));
    size_t total = 1;
    for (bst_ulong d = 0; d < dims; ++d) total *= shape[d];
    if (total != num_rows * width) {
      return absl::InternalError(
          "xgboost predict gave " + std::to_string(total) + " values for " +
          std::to_string(num_rows) + " rows; the signature expects " +
          std::to_string(width) + " per row");
    }
    // `result` lives in XGBoost's per-thread buffer: copy it out before the
    // next call on this thread.
    out->assign(result, result + total);
    return absl::OkStatus();
  }

 private:
  // This thread's proxy DMatrix, which XGBoost points at each call's rows.
  // Without one, XGBoost builds a proxy per call, and with it a context
  // that reads the cgroup CPU quota from /sys (four system calls a batch).
  static absl::StatusOr<void*> ThreadProxy() {
    thread_local XgbDMatrix proxy;
    if (proxy == nullptr) {
      DMatrixHandle handle = nullptr;
      RETURN_IF_ERROR(XgbCheck(XGProxyDMatrixCreate(&handle),
                               "xgboost predict: creating the proxy matrix"));
      proxy.reset(handle);
    }
    return proxy.get();
  }

  const XgbBooster booster_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Model>> LoadXgboostJsonModel(
    std::string_view bytes, Signature signature) {
  RouteXgboostLogs();
  const size_t first = bytes.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos || bytes[first] != '{') {
    return absl::InvalidArgumentError(
        "xgboost-json model: the bytes are not JSON (they should start with "
        "'{'); save the model with Booster.save_model(\"model.json\")");
  }
  void* handle = nullptr;
  RETURN_IF_ERROR(XgbCheck(XGBoosterCreate(nullptr, 0, &handle),
                           "creating an XGBoost booster"));
  XgbBooster booster(handle);
  RETURN_IF_ERROR(XgbCheck(
      XGBoosterLoadModelFromBuffer(booster.get(), bytes.data(), bytes.size()),
      "xgboost-json model: XGBoost cannot load it (is it "
      "a file from Booster.save_model(\"model.json\")?)",
      absl::StatusCode::kInvalidArgument));
  ASSIGN_OR_RETURN(BoosterFacts facts, ReadBoosterFacts(booster.get()));
  RETURN_IF_ERROR(CheckFeatures(booster.get(), signature));
  RETURN_IF_ERROR(CheckObjective(signature, facts));

  if (facts.booster != "gbtree" && facts.booster != "dart") {
    return absl::InvalidArgumentError(
        "xgboost-json model: booster '" + facts.booster +
        "' is not supported (XGBoost 1.7 predicts in place and thread-safely "
        "only for tree boosters); train with booster gbtree or dart");
  }
  auto model =
      std::make_unique<XgboostModel>(std::move(signature), std::move(booster));
  // One all-missing row: configures the booster now rather than inside the
  // first request, and proves the output width matches the signature.
  const std::vector<float> probe(model->signature().features().size(),
                                 std::numeric_limits<float>::quiet_NaN());
  std::vector<float> probe_out;
  RETURN_IF_ERROR(model->Predict(probe.data(), 1, &probe_out),
                  "xgboost-json model: test prediction");
  return std::unique_ptr<Model>(std::move(model));
}

}  // namespace slipway
