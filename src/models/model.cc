#include "models/model.h"

#include <string>

#include "models/xgboost_model.h"

namespace slipway {

absl::StatusOr<std::unique_ptr<Model>> LoadModel(std::string_view format,
                                                 std::string_view bytes,
                                                 Signature signature) {
  if (format == kXgboostJsonFormat) {
    return LoadXgboostJsonModel(bytes, std::move(signature));
  }
  return absl::InvalidArgumentError(
      "unknown model format '" + std::string(format) +
      "' (supported: " + std::string(kXgboostJsonFormat) + ")");
}

}  // namespace slipway
