#include "train/evaluate.h"

#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "models/features.h"
#include "stats/metrics.h"
#include "train/target.h"

namespace slipway {
namespace {

using nlohmann::json;

// Labels as metrics.h wants them: class indices for classification, values
// for regression.
absl::StatusOr<std::vector<double>> LabelValues(const Signature& signature,
                                                const Column& target) {
  std::vector<double> labels(target.size());
  if (!signature.is_classification()) {
    if (target.type() == DataType::kString) {
      return absl::InvalidArgumentError(
          "test data: target '" + target.name() +
          "' holds strings but the model is a regression model");
    }
    for (size_t row = 0; row < target.size(); ++row) {
      labels[row] = target.NumberAt(row);
    }
    return labels;
  }
  const std::vector<std::string>& classes = signature.class_labels();
  std::unordered_map<std::string, int> index;
  for (size_t i = 0; i < classes.size(); ++i) {
    index.emplace(classes[i], static_cast<int>(i));
  }
  for (size_t row = 0; row < target.size(); ++row) {
    const std::string label = LabelText(target, row);
    auto it = index.find(label);
    if (it == index.end()) {
      std::string known;
      for (const std::string& name : classes) {
        known += (known.empty() ? "" : ", ") + name;
      }
      return absl::InvalidArgumentError(
          "test data row " + std::to_string(row) + ": target '" +
          target.name() + "' is '" + label +
          "', which is not one of the model's classes (" + known + ")");
    }
    labels[row] = it->second;
  }
  return labels;
}

// Whether one-vs-rest AUC is defined for every class in [0, classes).
bool EveryClassPresentAndNotAll(const std::vector<double>& labels,
                                int classes) {
  std::vector<size_t> counts(classes, 0);
  for (double label : labels) ++counts[static_cast<size_t>(label)];
  for (size_t count : counts) {
    if (count == 0 || count == labels.size()) return false;
  }
  return true;
}

absl::Status AddMetric(json* metrics, const char* name,
                       const absl::StatusOr<double>& value) {
  if (!value.ok()) {
    return Annotate(value.status(), std::string("computing ") + name);
  }
  (*metrics)[name] = *value;
  return absl::OkStatus();
}

// The model's predictions on every row of `table`.
absl::StatusOr<std::vector<float>> PredictAll(const Model& model,
                                              const Table& table,
                                              const std::string& role) {
  std::vector<float> rows;
  RETURN_IF_ERROR(EncodeTable(model.signature(), table, &rows, nullptr),
                  "encoding the holdout rows for the " + role);
  std::vector<float> predictions;
  RETURN_IF_ERROR(model.Predict(rows.data(), table.num_rows(), &predictions),
                  "predicting the holdout rows with the " + role);
  return predictions;
}

}  // namespace

absl::StatusOr<MetricComparison> CompareOnHoldout(
    const Model& champion, const Model& challenger, const Table& holdout,
    std::string_view metric, const BootstrapOptions& options) {
  const Signature& signature = champion.signature();
  if (signature.task() != challenger.signature().task()) {
    return absl::InvalidArgumentError(
        "the challenger and the champion solve different tasks; a paired "
        "comparison needs two models of one task");
  }
  if (signature.task() == Task::kMulticlassClassification) {
    return absl::InvalidArgumentError(
        "a multiclass model cannot be compared pairwise yet; the paired "
        "comparison takes binary classification and regression models");
  }
  if (holdout.num_rows() == 0) {
    return absl::InvalidArgumentError("the holdout has no rows to compare on");
  }
  ASSIGN_OR_RETURN(const Column* target,
                   FindTarget(holdout, signature.target(), "holdout"));
  RETURN_IF_ERROR(CheckTargetComplete(*target, "holdout"));
  ASSIGN_OR_RETURN(std::vector<double> labels, LabelValues(signature, *target));
  ASSIGN_OR_RETURN(std::vector<float> a,
                   PredictAll(champion, holdout, "champion"));
  ASSIGN_OR_RETURN(std::vector<float> b,
                   PredictAll(challenger, holdout, "challenger"));
  const std::vector<double> champion_scores(a.begin(), a.end());
  const std::vector<double> challenger_scores(b.begin(), b.end());
  return ComparePaired(metric, labels, champion_scores, challenger_scores,
                       options);
}

absl::StatusOr<json> Evaluate(const Model& model, const Table& test) {
  const Signature& signature = model.signature();
  if (test.num_rows() == 0) {
    return absl::InvalidArgumentError("test data has no rows to evaluate on");
  }
  ASSIGN_OR_RETURN(const Column* target,
                   FindTarget(test, signature.target(), "test data"));
  RETURN_IF_ERROR(CheckTargetComplete(*target, "test data"));
  ASSIGN_OR_RETURN(std::vector<double> labels, LabelValues(signature, *target));

  EncodeStats stats;
  std::vector<float> rows;
  RETURN_IF_ERROR(EncodeTable(signature, test, &rows, &stats),
                  "encoding test data");
  std::vector<float> predictions;
  RETURN_IF_ERROR(model.Predict(rows.data(), test.num_rows(), &predictions),
                  "predicting test data");

  json metrics = {{"rows", test.num_rows()},
                  {"unseen_categories", stats.unseen_categories},
                  {"missing_values", stats.missing_values}};
  const std::span<const float> p(predictions);
  switch (signature.task()) {
    case Task::kBinaryClassification:
      if (EveryClassPresentAndNotAll(labels, 2)) {
        RETURN_IF_ERROR(AddMetric(&metrics, "auc", BinaryAuc(labels, p)));
      } else {
        metrics["auc"] = nullptr;
      }
      RETURN_IF_ERROR(AddMetric(&metrics, "logloss", LogLoss(labels, p)));
      RETURN_IF_ERROR(AddMetric(&metrics, "accuracy", Accuracy(labels, p)));
      break;
    case Task::kMulticlassClassification: {
      const int classes = signature.output_width();
      if (EveryClassPresentAndNotAll(labels, classes)) {
        RETURN_IF_ERROR(
            AddMetric(&metrics, "auc", MulticlassAuc(labels, p, classes)));
      } else {
        metrics["auc"] = nullptr;
      }
      RETURN_IF_ERROR(
          AddMetric(&metrics, "logloss", LogLoss(labels, p, classes)));
      RETURN_IF_ERROR(
          AddMetric(&metrics, "accuracy", Accuracy(labels, p, classes)));
      break;
    }
    case Task::kRegression:
      RETURN_IF_ERROR(AddMetric(&metrics, "rmse", Rmse(labels, p)));
      RETURN_IF_ERROR(AddMetric(&metrics, "mae", Mae(labels, p)));
      RETURN_IF_ERROR(AddMetric(&metrics, "r2", R2(labels, p)));
      break;
  }
  return metrics;
}

}  // namespace slipway
