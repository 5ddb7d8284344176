#include "monitor/kpis.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "stats/metrics.h"

namespace slipway {
namespace {

using json = nlohmann::json;

// Sets out[key] to the metric when the rows define it.
void SetIfDefined(json& out, const char* key,
                  const absl::StatusOr<double>& metric) {
  if (metric.ok()) out[key] = *metric;
}

// Counts of one class against the rest.
struct ClassCounts {
  int64_t true_positives = 0;
  int64_t false_positives = 0;
  int64_t false_negatives = 0;

  // 2TP / (2TP + FP + FN); absent when the class is neither a label nor a
  // prediction.
  std::optional<double> F1() const {
    const int64_t denominator =
        2 * true_positives + false_positives + false_negatives;
    if (denominator == 0) return std::nullopt;
    return 2.0 * static_cast<double>(true_positives) /
           static_cast<double>(denominator);
  }
};

std::optional<double> Ratio(int64_t numerator, int64_t denominator) {
  if (denominator == 0) return std::nullopt;
  return static_cast<double>(numerator) / static_cast<double>(denominator);
}

void SetIfPresent(json& out, const char* key, std::optional<double> value) {
  if (value) out[key] = *value;
}

// Precision, recall and F1 of class 1 (binary).
void BinaryCounts(std::span<const double> labels, std::span<const float> p1,
                  json& out) {
  ClassCounts counts;
  for (size_t i = 0; i < labels.size(); ++i) {
    const bool predicted = p1[i] > 0.5f;
    const bool actual = labels[i] == 1.0;
    counts.true_positives += predicted && actual;
    counts.false_positives += predicted && !actual;
    counts.false_negatives += !predicted && actual;
  }
  SetIfPresent(out, "precision",
               Ratio(counts.true_positives,
                     counts.true_positives + counts.false_positives));
  SetIfPresent(out, "recall",
               Ratio(counts.true_positives,
                     counts.true_positives + counts.false_negatives));
  SetIfPresent(out, "f1", counts.F1());
}

// Macro-averaged precision, recall and F1 over the classes that occur as a
// label or a prediction.
void MulticlassCounts(std::span<const double> labels,
                      std::span<const float> probabilities, size_t num_classes,
                      json& out) {
  std::vector<ClassCounts> counts(num_classes);
  for (size_t i = 0; i < labels.size(); ++i) {
    const float* row = probabilities.data() + i * num_classes;
    const size_t predicted = std::max_element(row, row + num_classes) - row;
    const size_t actual = static_cast<size_t>(labels[i]);
    if (predicted == actual) {
      ++counts[actual].true_positives;
    } else {
      ++counts[predicted].false_positives;
      ++counts[actual].false_negatives;
    }
  }
  double precision = 0;
  double recall = 0;
  double f1 = 0;
  size_t classes = 0;
  for (const ClassCounts& c : counts) {
    const std::optional<double> class_f1 = c.F1();
    if (!class_f1) continue;
    ++classes;
    precision += Ratio(c.true_positives, c.true_positives + c.false_positives)
                     .value_or(0.0);
    recall += Ratio(c.true_positives, c.true_positives + c.false_negatives)
                  .value_or(0.0);
    f1 += *class_f1;
  }
  if (classes == 0) return;
  out["precision"] = precision / static_cast<double>(classes);
  out["recall"] = recall / static_cast<double>(classes);
  out["f1"] = f1 / static_cast<double>(classes);
}

std::string ClassList(const std::vector<std::string>& labels) {
  std::string list;
  for (const std::string& label : labels) {
    if (!list.empty()) list += ", ";
    list += "'" + label + "'";
  }
  return list;
}

}  // namespace

absl::StatusOr<json> ComputeKpis(const std::vector<LabeledPrediction>& rows,
                                 const Signature& signature) {
  const size_t width = static_cast<size_t>(signature.output_width());
  const std::vector<std::string>& classes = signature.class_labels();
  std::unordered_map<std::string_view, size_t> class_index;
  for (size_t k = 0; k < classes.size(); ++k) class_index[classes[k]] = k;

  std::vector<double> labels;
  labels.reserve(rows.size());
  std::vector<float> predictions;
  predictions.reserve(rows.size() * width);
  bool numbers_only = true;
  for (size_t i = 0; i < rows.size(); ++i) {
    const LabeledPrediction& row = rows[i];
    const std::string context = "KPIs: row " + std::to_string(i);
    if (row.prediction.size() != width) {
      return absl::InvalidArgumentError(
          context + " has " + std::to_string(row.prediction.size()) +
          " prediction values; the model answers " + std::to_string(width) +
          " per row (its signature's output width)");
    }
    for (float p : row.prediction) {
      numbers_only = numbers_only && !std::isnan(p);
      predictions.push_back(p);
    }
    if (signature.is_classification()) {
      const auto it = class_index.find(row.label);
      if (it == class_index.end()) {
        return absl::InvalidArgumentError(
            context + ": label '" + row.label +
            "' is not a class of the model; send one of " +
            ClassList(classes));
      }
      labels.push_back(static_cast<double>(it->second));
    } else {
      double value = 0;
      const char* begin = row.label.data();
      const char* end = begin + row.label.size();
      const auto [stop, error] = std::from_chars(begin, end, value);
      if (error != std::errc() || stop != end || !std::isfinite(value)) {
        return absl::InvalidArgumentError(
            context + ": label '" + row.label +
            "' is not a number; a regression model's label is a finite "
            "number such as 12.5");
      }
      labels.push_back(value);
    }
  }

  json out = json::object();
  out["rows"] = rows.size();
  if (!rows.empty() && numbers_only) {
    switch (signature.task()) {
      case Task::kBinaryClassification:
        SetIfDefined(out, "accuracy", Accuracy(labels, predictions));
        BinaryCounts(labels, predictions, out);
        SetIfDefined(out, "auc", BinaryAuc(labels, predictions));
        SetIfDefined(out, "logloss", LogLoss(labels, predictions));
        break;
      case Task::kMulticlassClassification: {
        const int k = static_cast<int>(width);
        SetIfDefined(out, "accuracy", Accuracy(labels, predictions, k));
        MulticlassCounts(labels, predictions, width, out);
        SetIfDefined(out, "auc", MulticlassAuc(labels, predictions, k));
        SetIfDefined(out, "logloss", LogLoss(labels, predictions, k));
        break;
      }
      case Task::kRegression:
        SetIfDefined(out, "rmse", Rmse(labels, predictions));
        SetIfDefined(out, "mae", Mae(labels, predictions));
        break;
    }
  }

  struct Sum {
    double sum = 0;
    int64_t rows = 0;
  };
  std::map<std::string, Sum> sums;
  for (const LabeledPrediction& row : rows) {
    for (const auto& [name, value] : row.kpis) {
      if (!std::isfinite(value)) continue;
      Sum& s = sums[name];
      s.sum += value;
      ++s.rows;
    }
  }
  json business = json::object();
  for (const auto& [name, s] : sums) {
    business[name] = {{"sum", s.sum},
                      {"mean", s.sum / static_cast<double>(s.rows)}};
  }
  out["kpis"] = std::move(business);
  return out;
}

}  // namespace slipway
