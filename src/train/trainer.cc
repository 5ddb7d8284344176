#include "train/trainer.h"

#include <charconv>
#include <cmath>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/status.h"
#include "models/features.h"
#include "models/xgboost_api.h"
#include "train/target.h"

namespace slipway {
namespace {

constexpr int kMaxClassesForInferredClassification = 20;

std::string NumberText(double value) {
  char buffer[64];
  auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

absl::Status OptionError(const std::string& option, const std::string& rule,
                         const std::string& value) {
  return absl::InvalidArgumentError("train option '" + option + "' must be " +
                                    rule + ", got " + value);
}

// The checks are written "!(ok)" so NaN fails them too.
absl::Status ValidateOptions(const TrainOptions& o) {
  if (!(o.rounds >= 1)) {
    return OptionError("rounds", "at least 1", std::to_string(o.rounds));
  }
  if (!(o.max_depth >= 1)) {
    return OptionError("max_depth", "at least 1", std::to_string(o.max_depth));
  }
  if (!(o.eta > 0)) return OptionError("eta", "> 0", NumberText(o.eta));
  if (!(o.subsample > 0 && o.subsample <= 1)) {
    return OptionError("subsample", "in (0, 1]", NumberText(o.subsample));
  }
  if (!(o.colsample_bytree > 0 && o.colsample_bytree <= 1)) {
    return OptionError("colsample_bytree", "in (0, 1]",
                       NumberText(o.colsample_bytree));
  }
  if (!(o.min_child_weight >= 0)) {
    return OptionError("min_child_weight", ">= 0",
                       NumberText(o.min_child_weight));
  }
  if (!(o.lambda >= 0))
    return OptionError("lambda", ">= 0", NumberText(o.lambda));
  if (!(o.alpha >= 0)) return OptionError("alpha", ">= 0", NumberText(o.alpha));
  if (!(o.threads >= 0)) {
    return OptionError("threads", ">= 0 (0 = all cores)",
                       std::to_string(o.threads));
  }
  return absl::OkStatus();
}

struct TaskChoice {
  Task task = Task::kRegression;
  std::string objective;
  std::vector<std::string> class_labels;  // classification only
};

absl::StatusOr<TaskChoice> ChooseTask(const Column& target,
                                      const std::string& objective) {
  const std::string& name = target.name();
  const bool classifiable = target.type() != DataType::kFloat64;
  TaskChoice choice;
  if (objective.empty()) {
    bool classification =
        target.type() == DataType::kString || target.type() == DataType::kBool;
    if (target.type() == DataType::kInt64) {
      choice.class_labels = SortedDistinctValues(target);
      classification =
          choice.class_labels.size() <=
          static_cast<size_t>(kMaxClassesForInferredClassification);
    }
    if (!classification) {
      choice.class_labels.clear();
      choice.objective = "reg:squarederror";
      return choice;
    }
  } else if (objective == "reg:squarederror") {
    if (target.type() == DataType::kString) {
      return absl::InvalidArgumentError(
          "objective reg:squarederror needs a numeric target; '" + name +
          "' holds strings (use binary:logistic or multi:softprob)");
    }
    choice.objective = objective;
    return choice;
  } else if (objective != "binary:logistic" && objective != "multi:softprob") {
    return absl::InvalidArgumentError(
        "unsupported objective '" + objective +
        "' (use binary:logistic, multi:softprob or reg:squarederror, or "
        "leave it empty to infer it from the target)");
  } else if (!classifiable) {
    return absl::InvalidArgumentError(
        "objective " + objective + " needs class labels; target '" + name +
        "' is float64 (give it as string, bool or int64, or use "
        "reg:squarederror)");
  }

  choice.class_labels = SortedDistinctValues(target);
  const size_t classes = choice.class_labels.size();
  if (classes < 2) {
    return absl::InvalidArgumentError(
        "target '" + name + "' has " + std::to_string(classes) +
        " class(es) in the training data; classification needs at least 2");
  }
  if (objective == "binary:logistic" && classes != 2) {
    return absl::InvalidArgumentError(
        "objective binary:logistic needs exactly 2 classes; target '" + name +
        "' has " + std::to_string(classes) + " (use multi:softprob)");
  }
  choice.objective = objective.empty()
                         ? (classes == 2 ? "binary:logistic" : "multi:softprob")
                         : objective;
  choice.task = choice.objective == "binary:logistic"
                    ? Task::kBinaryClassification
                    : Task::kMulticlassClassification;
  return choice;
}

absl::StatusOr<std::vector<const Column*>> SelectFeatureColumns(
    const Table& table, const std::string& target,
    const TrainOptions& options) {
  std::unordered_set<std::string> excluded;
  for (const std::string& name : options.exclude) {
    if (table.FindColumn(name) == nullptr) {
      return absl::InvalidArgumentError(
          "train option 'exclude' names column '" + name +
          "', which the training data does not have");
    }
    excluded.insert(name);
  }
  std::vector<const Column*> columns;
  if (!options.features.empty()) {
    std::unordered_set<std::string> seen;
    for (const std::string& name : options.features) {
      const Column* column = table.FindColumn(name);
      if (column == nullptr) {
        return absl::InvalidArgumentError(
            "train option 'features' names column '" + name +
            "', which the training data does not have");
      }
      if (name == target || excluded.count(name) > 0) {
        return absl::InvalidArgumentError(
            "train option 'features' names column '" + name +
            "', which is the target or excluded");
      }
      if (!seen.insert(name).second) {
        return absl::InvalidArgumentError("train option 'features' lists '" +
                                          name + "' twice");
      }
      columns.push_back(column);
    }
  } else {
    for (const Column& column : table.columns()) {
      if (column.name() != target && excluded.count(column.name()) == 0) {
        columns.push_back(&column);
      }
    }
  }
  if (columns.empty()) {
    return absl::InvalidArgumentError(
        "no feature columns left: the training data has only the target '" +
        target + "' and excluded columns");
  }
  return columns;
}

std::vector<float> Labels(const Column& target, const TaskChoice& choice) {
  std::vector<float> labels(target.size());
  if (choice.task == Task::kRegression) {
    for (size_t row = 0; row < target.size(); ++row) {
      labels[row] = static_cast<float>(target.NumberAt(row));
    }
    return labels;
  }
  std::unordered_map<std::string, int> index;
  for (size_t i = 0; i < choice.class_labels.size(); ++i) {
    index.emplace(choice.class_labels[i], static_cast<int>(i));
  }
  for (size_t row = 0; row < target.size(); ++row) {
    labels[row] = static_cast<float>(index.at(LabelText(target, row)));
  }
  return labels;
}

// XGBoost refuses infinite inputs with a message that names neither the
// feature nor the row; this one does. Values beyond float range count too.
absl::Status CheckFinite(const std::vector<float>& matrix,
                         const Signature& signature) {
  const size_t width = signature.features().size();
  for (size_t i = 0; i < matrix.size(); ++i) {
    if (std::isinf(matrix[i])) {
      return absl::InvalidArgumentError(
          "training data: feature '" + signature.features()[i % width].name +
          "' is infinite (or beyond float range) at row " +
          std::to_string(i / width) + "; drop or fill that value");
    }
  }
  return absl::OkStatus();
}

// Parameter name/value pairs passed to XGBoost, in a fixed order.
std::vector<std::pair<std::string, std::string>> BoosterParams(
    const TrainOptions& options, const TaskChoice& choice) {
  const uint32_t folded_seed =
      static_cast<uint32_t>(options.seed ^ (options.seed >> 32));
  std::vector<std::pair<std::string, std::string>> params = {
      {"objective", choice.objective},
      {"tree_method", "hist"},
      {"max_depth", std::to_string(options.max_depth)},
      {"eta", NumberText(options.eta)},
      {"subsample", NumberText(options.subsample)},
      {"colsample_bytree", NumberText(options.colsample_bytree)},
      {"min_child_weight", NumberText(options.min_child_weight)},
      {"lambda", NumberText(options.lambda)},
      {"alpha", NumberText(options.alpha)},
      {"seed", std::to_string(folded_seed)},
      {"nthread", std::to_string(options.threads)},
  };
  if (choice.task == Task::kMulticlassClassification) {
    params.emplace_back("num_class",
                        std::to_string(choice.class_labels.size()));
  }
  return params;
}

absl::Status SetFeatureInfo(void* handle, bool is_booster,
                            const Signature& signature) {
  std::vector<const char*> names;
  std::vector<const char*> types;
  for (const FeatureSpec& spec : signature.features()) {
    names.push_back(spec.name.c_str());
    types.push_back(spec.is_categorical() ? "c" : "q");
  }
  const bst_ulong n = names.size();
  if (is_booster) {
    RETURN_IF_ERROR(XgbCheck(
        XGBoosterSetStrFeatureInfo(handle, "feature_name", names.data(), n),
        "setting the model's feature names"));
    return XgbCheck(
        XGBoosterSetStrFeatureInfo(handle, "feature_type", types.data(), n),
        "setting the model's feature types");
  }
  RETURN_IF_ERROR(XgbCheck(
      XGDMatrixSetStrFeatureInfo(handle, "feature_name", names.data(), n),
      "setting the training matrix's feature names"));
  return XgbCheck(
      XGDMatrixSetStrFeatureInfo(handle, "feature_type", types.data(), n),
      "setting the training matrix's feature types");
}

nlohmann::json ParamsJson(const TrainOptions& options,
                          const TaskChoice& choice) {
  nlohmann::json params = {{"objective", choice.objective},
                           {"tree_method", "hist"},
                           {"rounds", options.rounds},
                           {"max_depth", options.max_depth},
                           {"eta", options.eta},
                           {"subsample", options.subsample},
                           {"colsample_bytree", options.colsample_bytree},
                           {"min_child_weight", options.min_child_weight},
                           {"lambda", options.lambda},
                           {"alpha", options.alpha},
                           {"seed", options.seed},
                           {"threads", options.threads}};
  if (choice.task == Task::kMulticlassClassification) {
    params["num_class"] = choice.class_labels.size();
  }
  return params;
}

}  // namespace

absl::StatusOr<TrainedModel> TrainXgboost(const Table& train,
                                          const std::string& target,
                                          const TrainOptions& options) {
  RouteXgboostLogs();
  RETURN_IF_ERROR(ValidateOptions(options));
  if (train.num_rows() == 0) {
    return absl::InvalidArgumentError("training data has no rows");
  }
  ASSIGN_OR_RETURN(const Column* target_column,
                   FindTarget(train, target, "training data"));
  // The target's type decides before its values are checked: a wrong type
  // is the more basic mistake.
  ASSIGN_OR_RETURN(TaskChoice choice,
                   ChooseTask(*target_column, options.objective));
  RETURN_IF_ERROR(CheckTargetComplete(*target_column, "training data"));
  ASSIGN_OR_RETURN(std::vector<const Column*> feature_columns,
                   SelectFeatureColumns(train, target, options));

  std::vector<FeatureSpec> specs;
  for (const Column* column : feature_columns) {
    FeatureSpec spec;
    spec.name = column->name();
    spec.type = column->type();
    if (spec.is_categorical()) spec.categories = SortedDistinctValues(*column);
    specs.push_back(std::move(spec));
  }
  TrainedModel trained;
  trained.signature = Signature(choice.task, std::move(specs), target,
                                target_column->type(), choice.class_labels);
  trained.rows = static_cast<int64_t>(train.num_rows());
  trained.params = ParamsJson(options, choice);

  std::vector<float> matrix;
  RETURN_IF_ERROR(EncodeTable(trained.signature, train, &matrix, nullptr),
                  "encoding training data");
  const std::vector<float> labels = Labels(*target_column, choice);
  RETURN_IF_ERROR(CheckFinite(matrix, trained.signature));

  const size_t rows = train.num_rows();
  const size_t cols = trained.signature.features().size();
  const std::string array = DenseArrayInterface(matrix.data(), rows, cols);
  const std::string matrix_config =
      "{\"missing\":NaN,\"nthread\":" + std::to_string(options.threads) + "}";
  void* dmatrix_handle = nullptr;
  RETURN_IF_ERROR(
      XgbCheck(XGDMatrixCreateFromDense(array.c_str(), matrix_config.c_str(),
                                        &dmatrix_handle),
               "building the XGBoost training matrix",
               absl::StatusCode::kInvalidArgument));
  XgbDMatrix dmatrix(dmatrix_handle);
  // The DMatrix holds its own copy; release ours before training.
  std::vector<float>().swap(matrix);
  RETURN_IF_ERROR(
      SetFeatureInfo(dmatrix.get(), /*is_booster=*/false, trained.signature));
  RETURN_IF_ERROR(XgbCheck(XGDMatrixSetFloatInfo(dmatrix.get(), "label",
                                                 labels.data(), labels.size()),
                           "setting the training labels"));

  void* booster_handle = nullptr;
  void* cache[] = {dmatrix.get()};
  RETURN_IF_ERROR(XgbCheck(XGBoosterCreate(cache, 1, &booster_handle),
                           "creating the XGBoost booster"));
  XgbBooster booster(booster_handle);
  for (const auto& [key, value] : BoosterParams(options, choice)) {
    RETURN_IF_ERROR(
        XgbCheck(XGBoosterSetParam(booster.get(), key.c_str(), value.c_str()),
                 "setting XGBoost parameter " + key + "=" + value,
                 absl::StatusCode::kInvalidArgument));
  }
  RETURN_IF_ERROR(
      SetFeatureInfo(booster.get(), /*is_booster=*/true, trained.signature));
  for (int round = 0; round < options.rounds; ++round) {
    if (options.cancel != nullptr && options.cancel->load()) {
      return absl::CancelledError("training cancelled after " +
                                  std::to_string(round) + " of " +
                                  std::to_string(options.rounds) + " rounds");
    }
    RETURN_IF_ERROR(
        XgbCheck(XGBoosterUpdateOneIter(booster.get(), round, dmatrix.get()),
                 "XGBoost training round " + std::to_string(round)));
    if (options.on_round) options.on_round(round + 1, options.rounds);
  }
  bst_ulong length = 0;
  const char* bytes = nullptr;
  RETURN_IF_ERROR(
      XgbCheck(XGBoosterSaveModelToBuffer(
                   booster.get(), "{\"format\":\"json\"}", &length, &bytes),
               "saving the trained model"));
  trained.model_bytes.assign(bytes, length);
  return trained;
}

}  // namespace slipway
