#include "models/xgboost_api.h"

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "core/logging.h"
#include "core/status.h"
#include "nlohmann/json.hpp"

namespace slipway {
namespace {

// XGBoost messages look like "[13:07:35] ./src/learner.cc:1017: Check
// failed: ...\nStack trace:\n  [bt] ...": keep the part a user can act on.
std::string CleanXgboostMessage(std::string_view message) {
  const size_t trace = message.find("\nStack trace:");
  if (trace != std::string_view::npos) message = message.substr(0, trace);
  if (!message.empty() && message.front() == '[') {
    const size_t close = message.find("] ");
    if (close != std::string_view::npos && close < 16) {
      message.remove_prefix(close + 2);
    }
  }
  while (!message.empty() &&
         (message.back() == '\n' || message.back() == ' ')) {
    message.remove_suffix(1);
  }
  return std::string(message);
}

void LogXgboostLine(const char* line) {
  const std::string message = CleanXgboostMessage(line);
  LogWarning("xgboost.log", {{"message", message}});
}

}  // namespace

absl::Status XgbCheck(int rc, std::string_view what, absl::StatusCode code) {
  if (rc == 0) return absl::OkStatus();
  return absl::Status(
      code, std::string(what) + ": " + CleanXgboostMessage(XGBGetLastError()));
}

std::string DenseArrayInterface(const float* data, size_t rows, size_t cols) {
  return "{\"data\":[" +
         std::to_string(reinterpret_cast<std::uintptr_t>(data)) +
         ",true],\"shape\":[" + std::to_string(rows) + "," +
         std::to_string(cols) +
         "],\"strides\":null,\"typestr\":\"<f4\",\"version\":3}";
}

void RouteXgboostLogs() {
  static std::once_flag once;
  std::call_once(once, [] {
    const absl::Status status =
        XgbCheck(XGBRegisterLogCallback(&LogXgboostLine),
                 "routing XGBoost logs (they stay on stderr)");
    if (!status.ok()) {
      LogWarning("xgboost.log_routing_failed",
                 {{"error", std::string(status.message())}});
    }
  });
}

std::string XGBoostVersionText() {
  int major = 0;
  int minor = 0;
  int patch = 0;
  XGBoostVersion(&major, &minor, &patch);
  return std::to_string(major) + "." + std::to_string(minor) + "." +
         std::to_string(patch);
}

namespace {

// The string at `pointer` in `config`, or empty.
std::string ConfigString(const nlohmann::json& config, const char* pointer) {
  try {
    const nlohmann::json::json_pointer at(pointer);
    if (!config.contains(at) || !config.at(at).is_string()) return "";
    return config.at(at).get<std::string>();
  } catch (const nlohmann::json::exception&) {
    return "";
  }
}

absl::StatusOr<std::vector<std::string>> FeatureInfo(void* booster,
                                                     const char* field) {
  bst_ulong count = 0;
  const char** values = nullptr;
  RETURN_IF_ERROR(
      XgbCheck(XGBoosterGetStrFeatureInfo(booster, field, &count, &values),
               std::string("reading the model's ") + field,
               absl::StatusCode::kInvalidArgument));
  return std::vector<std::string>(values, values + count);
}

}  // namespace

absl::StatusOr<XgboostFacts> ReadXgboostFacts(void* booster) {
  XgboostFacts facts;
  ASSIGN_OR_RETURN(facts.feature_names, FeatureInfo(booster, "feature_name"));
  ASSIGN_OR_RETURN(facts.feature_types, FeatureInfo(booster, "feature_type"));
  bst_ulong num_feature = 0;
  RETURN_IF_ERROR(XgbCheck(XGBoosterGetNumFeature(booster, &num_feature),
                           "reading the model's feature count",
                           absl::StatusCode::kInvalidArgument));
  facts.num_feature = static_cast<int64_t>(num_feature);
  bst_ulong length = 0;
  const char* text = nullptr;
  RETURN_IF_ERROR(XgbCheck(XGBoosterSaveJsonConfig(booster, &length, &text),
                           "reading the model's configuration",
                           absl::StatusCode::kInvalidArgument));
  const nlohmann::json config = nlohmann::json::parse(
      std::string(text, length), nullptr, /*allow_exceptions=*/false);
  facts.objective = ConfigString(config, "/learner/objective/name");
  if (!absl::SimpleAtoi(
          ConfigString(config, "/learner/learner_model_param/num_class"),
          &facts.num_class)) {
    facts.num_class = 0;
  }
  return facts;
}

}  // namespace slipway
