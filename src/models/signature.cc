#include "models/signature.h"

#include <string>
#include <unordered_set>
#include <utility>

#include "absl/strings/numbers.h"
#include "core/status.h"

namespace slipway {
namespace {

using nlohmann::json;

absl::Status FieldError(const std::string& field, const std::string& problem) {
  return absl::InvalidArgumentError("signature field '" + field +
                                    "': " + problem);
}

std::string JsonTypeName(const json& value) {
  return std::string(value.type_name());
}

// The string at `object[key]`, or InvalidArgument naming `path`.
absl::StatusOr<std::string> RequiredString(const json& object,
                                           const std::string& key,
                                           const std::string& path) {
  auto it = object.find(key);
  if (it == object.end()) return FieldError(path, "missing");
  if (!it->is_string()) {
    return FieldError(path, "expected a string, got " + JsonTypeName(*it));
  }
  return it->get<std::string>();
}

// A JSON array of distinct strings, or InvalidArgument naming the element.
absl::StatusOr<std::vector<std::string>> DistinctStrings(
    const json& value, const std::string& path) {
  if (!value.is_array()) {
    return FieldError(
        path, "expected an array of strings, got " + JsonTypeName(value));
  }
  std::vector<std::string> out;
  std::unordered_set<std::string> seen;
  for (size_t i = 0; i < value.size(); ++i) {
    const std::string element_path = path + "[" + std::to_string(i) + "]";
    if (!value[i].is_string()) {
      return FieldError(element_path,
                        "expected a string, got " + JsonTypeName(value[i]));
    }
    std::string text = value[i].get<std::string>();
    if (!seen.insert(text).second) {
      return FieldError(element_path, "duplicate value '" + text + "'");
    }
    out.push_back(std::move(text));
  }
  return out;
}

absl::StatusOr<FeatureSpec> FeatureFromJson(const json& value,
                                            const std::string& path) {
  if (!value.is_object()) {
    return FieldError(path, "expected an object {\"name\", \"type\"}, got " +
                                JsonTypeName(value));
  }
  FeatureSpec spec;
  ASSIGN_OR_RETURN(spec.name, RequiredString(value, "name", path + ".name"));
  if (spec.name.empty()) return FieldError(path + ".name", "empty name");
  ASSIGN_OR_RETURN(std::string type_name,
                   RequiredString(value, "type", path + ".type"));
  absl::StatusOr<DataType> type = ParseDataType(type_name);
  if (!type.ok()) {
    return FieldError(path + ".type", std::string(type.status().message()));
  }
  spec.type = *type;
  auto categories = value.find("categories");
  if (spec.is_categorical()) {
    if (categories == value.end()) {
      return FieldError(path + ".categories",
                        "missing (a string feature lists its categories)");
    }
    ASSIGN_OR_RETURN(spec.categories,
                     DistinctStrings(*categories, path + ".categories"));
  } else if (categories != value.end()) {
    return FieldError(path + ".categories",
                      "only string features have categories; '" + spec.name +
                          "' is " + std::string(DataTypeName(spec.type)));
  }
  return spec;
}

}  // namespace

std::string_view TaskName(Task task) {
  switch (task) {
    case Task::kBinaryClassification:
      return "binary_classification";
    case Task::kMulticlassClassification:
      return "multiclass_classification";
    case Task::kRegression:
      return "regression";
  }
  return "regression";
}

Task TaskOfObjective(std::string_view objective) {
  if (objective.rfind("binary:", 0) == 0) return Task::kBinaryClassification;
  if (objective.rfind("multi:", 0) == 0) {
    return Task::kMulticlassClassification;
  }
  return Task::kRegression;
}

DataType LabelTypeOf(const std::vector<std::string>& class_labels) {
  for (const std::string& label : class_labels) {
    int64_t value = 0;
    if (!absl::SimpleAtoi(label, &value)) return DataType::kString;
  }
  return DataType::kInt64;
}

absl::StatusOr<Task> ParseTask(std::string_view name) {
  for (Task task : {Task::kBinaryClassification,
                    Task::kMulticlassClassification, Task::kRegression}) {
    if (name == TaskName(task)) return task;
  }
  return absl::InvalidArgumentError(
      "unknown task '" + std::string(name) +
      "' (use binary_classification, multiclass_classification or "
      "regression)");
}

Signature::Signature(Task task, std::vector<FeatureSpec> features,
                     std::string target, DataType label_type,
                     std::vector<std::string> class_labels)
    : task_(task),
      features_(std::move(features)),
      target_(std::move(target)),
      label_type_(label_type),
      class_labels_(std::move(class_labels)) {
  category_index_.resize(features_.size());
  for (size_t i = 0; i < features_.size(); ++i) {
    feature_index_.emplace(features_[i].name, static_cast<int>(i));
    const std::vector<std::string>& categories = features_[i].categories;
    for (size_t code = 0; code < categories.size(); ++code) {
      category_index_[i].emplace(categories[code], static_cast<int32_t>(code));
    }
  }
}

int Signature::output_width() const {
  return task_ == Task::kMulticlassClassification
             ? static_cast<int>(class_labels_.size())
             : 1;
}

int Signature::FeatureIndex(std::string_view name) const {
  auto it = feature_index_.find(std::string(name));
  return it == feature_index_.end() ? -1 : it->second;
}

int32_t Signature::CategoryCode(int feature, std::string_view value) const {
  if (feature < 0 || static_cast<size_t>(feature) >= category_index_.size()) {
    return -1;
  }
  const auto& index = category_index_[feature];
  auto it = index.find(std::string(value));
  return it == index.end() ? -1 : it->second;
}

nlohmann::json Signature::ToJson() const {
  json features = json::array();
  for (const FeatureSpec& spec : features_) {
    json feature = {{"name", spec.name},
                    {"type", std::string(DataTypeName(spec.type))}};
    if (spec.is_categorical()) feature["categories"] = spec.categories;
    features.push_back(std::move(feature));
  }
  return json{{"task", std::string(TaskName(task_))},
              {"target", target_},
              {"label_type", std::string(DataTypeName(label_type_))},
              {"class_labels", class_labels_},
              {"features", std::move(features)}};
}

absl::StatusOr<Signature> Signature::FromJson(const nlohmann::json& value) {
  if (!value.is_object()) {
    return absl::InvalidArgumentError(
        "signature: expected a JSON object with task, target, label_type, "
        "class_labels and features, got " +
        JsonTypeName(value));
  }
  ASSIGN_OR_RETURN(std::string task_name,
                   RequiredString(value, "task", "task"));
  absl::StatusOr<Task> task = ParseTask(task_name);
  if (!task.ok())
    return FieldError("task", std::string(task.status().message()));

  ASSIGN_OR_RETURN(std::string target,
                   RequiredString(value, "target", "target"));
  if (target.empty()) return FieldError("target", "empty name");

  ASSIGN_OR_RETURN(std::string label_type_name,
                   RequiredString(value, "label_type", "label_type"));
  absl::StatusOr<DataType> label_type = ParseDataType(label_type_name);
  if (!label_type.ok()) {
    return FieldError("label_type", std::string(label_type.status().message()));
  }

  std::vector<std::string> class_labels;
  auto labels = value.find("class_labels");
  if (labels != value.end()) {
    ASSIGN_OR_RETURN(class_labels, DistinctStrings(*labels, "class_labels"));
  }
  switch (*task) {
    case Task::kBinaryClassification:
      if (class_labels.size() != 2) {
        return FieldError("class_labels",
                          "binary_classification needs exactly 2 labels, got " +
                              std::to_string(class_labels.size()));
      }
      break;
    case Task::kMulticlassClassification:
      if (class_labels.size() < 2) {
        return FieldError(
            "class_labels",
            "multiclass_classification needs at least 2 labels, got " +
                std::to_string(class_labels.size()));
      }
      break;
    case Task::kRegression:
      if (!class_labels.empty()) {
        return FieldError("class_labels",
                          "a regression signature has no class labels, got " +
                              std::to_string(class_labels.size()));
      }
      if (*label_type == DataType::kString) {
        return FieldError("label_type",
                          "a regression target must be numeric, got string");
      }
      break;
  }

  auto features_it = value.find("features");
  if (features_it == value.end()) return FieldError("features", "missing");
  if (!features_it->is_array() || features_it->empty()) {
    return FieldError(
        "features", "expected a non-empty array of features, got " +
                        (features_it->is_array() ? std::string("an empty array")
                                                 : JsonTypeName(*features_it)));
  }
  std::vector<FeatureSpec> features;
  std::unordered_set<std::string> names;
  for (size_t i = 0; i < features_it->size(); ++i) {
    const std::string path = "features[" + std::to_string(i) + "]";
    ASSIGN_OR_RETURN(FeatureSpec spec,
                     FeatureFromJson((*features_it)[i], path));
    if (!names.insert(spec.name).second) {
      return FieldError(path + ".name",
                        "duplicate feature name '" + spec.name + "'");
    }
    if (spec.name == target) {
      return FieldError(path + ".name",
                        "feature '" + spec.name + "' is also the target");
    }
    features.push_back(std::move(spec));
  }
  return Signature(*task, std::move(features), std::move(target), *label_type,
                   std::move(class_labels));
}

}  // namespace slipway
