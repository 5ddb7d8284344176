#include "models/model.h"

#include <string>

#include "core/status.h"
#include "models/transform.h"
#include "models/xgboost_model.h"

namespace slipway {
namespace {

// A backend model behind its fitted transform: takes rows encoded with the
// request signature, predicts with the backend on the transformed rows.
class TransformedModel : public Model {
 public:
  TransformedModel(FeatureTransform transform, std::unique_ptr<Model> inner)
      : Model(RequestSignature(transform, inner->signature())),
        transform_(std::move(transform)),
        inner_(std::move(inner)) {}

  std::string_view format() const override { return inner_->format(); }

  absl::Status Predict(const float* rows, size_t num_rows,
                       std::vector<float>* out) const override {
    // One buffer per serving thread, grown to its largest batch.
    thread_local std::vector<float> model_rows;
    transform_.Apply(rows, num_rows, &model_rows);
    return inner_->Predict(model_rows.data(), num_rows, out);
  }
  int max_concurrency() const override { return inner_->max_concurrency(); }
  bool blocking() const override { return inner_->blocking(); }
  std::vector<ModelWorker> Workers() const override {
    return inner_->Workers();
  }

 private:
  const FeatureTransform transform_;
  const std::unique_ptr<Model> inner_;
};

absl::StatusOr<std::unique_ptr<Model>> LoadBackend(std::string_view format,
                                                   std::string_view bytes,
                                                   Signature signature) {
  if (format == kXgboostJsonFormat) {
    return LoadXgboostJsonModel(bytes, std::move(signature));
  }
  return absl::InvalidArgumentError(
      "unknown model format '" + std::string(format) +
      "' (supported: " + std::string(kXgboostJsonFormat) + ")");
}

}  // namespace

absl::StatusOr<std::unique_ptr<Model>> LoadModel(
    std::string_view format, std::string_view bytes, Signature signature,
    std::string_view transform_json) {
  if (transform_json.empty()) {
    return LoadBackend(format, bytes, std::move(signature));
  }
  ASSIGN_OR_RETURN(FeatureTransform transform,
                   FeatureTransform::Parse(transform_json));
  RETURN_IF_ERROR(transform.CheckModelSignature(signature),
                  "the model's transform");
  ASSIGN_OR_RETURN(std::unique_ptr<Model> inner,
                   LoadBackend(format, bytes, std::move(signature)));
  return std::unique_ptr<Model>(
      new TransformedModel(std::move(transform), std::move(inner)));
}

absl::StatusOr<std::unique_ptr<Model>> LoadRegisteredModel(
    std::string_view format, std::string_view bytes,
    Signature request_signature, std::string_view transform_json) {
  if (transform_json.empty()) {
    return LoadModel(format, bytes, std::move(request_signature));
  }
  ASSIGN_OR_RETURN(FeatureTransform transform,
                   FeatureTransform::Parse(transform_json));
  Signature model_signature(
      request_signature.task(), transform.model_features(),
      request_signature.target(), request_signature.label_type(),
      request_signature.class_labels());
  return LoadModel(format, bytes, std::move(model_signature), transform_json);
}

}  // namespace slipway
