// Signature: what a model version takes and gives, stored with the version
// and used by every consumer (training, serving, batch scoring, export).
//
// Features are listed in the order the model sees them. A numeric feature
// (float64, int64, bool) is passed through as a number; a categorical
// feature (type string) is encoded as the index of its value in
// `categories`, which the trainer fixed from the training data. Clients
// therefore send raw strings; a value not in `categories` is treated as
// missing and counted (EncodeStats::unseen_categories).
//
// Thread safety: immutable after construction; safe to share.
#ifndef SLIPWAY_MODELS_SIGNATURE_H_
#define SLIPWAY_MODELS_SIGNATURE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "data/table.h"
#include "nlohmann/json.hpp"

namespace slipway {

enum class Task {
  kBinaryClassification,
  kMulticlassClassification,
  kRegression
};

// "binary_classification", "multiclass_classification", "regression".
std::string_view TaskName(Task task);
absl::StatusOr<Task> ParseTask(std::string_view name);
// The task an XGBoost objective implies: "binary:*" binary classification,
// "multi:*" multiclass, anything else regression.
Task TaskOfObjective(std::string_view objective);
// How class labels given as text are typed: int64 when every one is an
// integer, else string.
DataType LabelTypeOf(const std::vector<std::string>& class_labels);

struct FeatureSpec {
  std::string name;
  DataType type = DataType::kFloat64;
  std::vector<std::string> categories;  // kString only: code -> value

  bool is_categorical() const { return type == DataType::kString; }
};

class Signature {
 public:
  Signature() = default;
  // Builds the lookup tables. `class_labels` lists, for classification, the
  // label of class index 0, 1, ... as text; `label_type` says how to print a
  // label (int64 labels as JSON numbers, string labels as JSON strings).
  Signature(Task task, std::vector<FeatureSpec> features, std::string target,
            DataType label_type, std::vector<std::string> class_labels);

  Task task() const { return task_; }
  const std::vector<FeatureSpec>& features() const { return features_; }
  const std::string& target() const { return target_; }
  DataType label_type() const { return label_type_; }
  const std::vector<std::string>& class_labels() const { return class_labels_; }
  bool is_classification() const { return task_ != Task::kRegression; }
  // Number of model outputs per row: 1 for regression and binary
  // classification (probability of class 1), the class count otherwise.
  int output_width() const;

  // Index of the feature named `name`, or -1.
  int FeatureIndex(std::string_view name) const;
  // Code of `value` for categorical feature `feature`, or -1 when unseen.
  int32_t CategoryCode(int feature, std::string_view value) const;

  nlohmann::json ToJson() const;
  // InvalidArgument naming the bad field when `json` is not a signature.
  static absl::StatusOr<Signature> FromJson(const nlohmann::json& json);

 private:
  Task task_ = Task::kRegression;
  std::vector<FeatureSpec> features_;
  std::string target_;
  DataType label_type_ = DataType::kFloat64;
  std::vector<std::string> class_labels_;
  std::unordered_map<std::string, int> feature_index_;
  std::vector<std::unordered_map<std::string, int32_t>> category_index_;
};

}  // namespace slipway

#endif  // SLIPWAY_MODELS_SIGNATURE_H_
