// PredictionObserver: where the data plane reports each prediction it
// answered, so monitoring (the prediction log and the window profiles) can
// follow serving without serving knowing about it.
//
// The predict and infer handlers call Observe once per request that the
// model predicted, with its answer built and just before handing it to the
// HTTP layer (so a client that sends feedback the moment it has the answer
// finds the prediction logged), on the thread that ran the batch (a
// batcher worker or an HTTP I/O thread). Requests refused before or by the
// model are not observed; those a version failed go to ObserveFailure.
//
// Shadow traffic: when the app has a shadow version (ModelManager::Shadow)
// other than the one that answered, the request is predicted again by the
// shadow after the answer went out, and that prediction is observed too,
// with `shadow` set, the shadow's version, rows and outputs, and the
// answering version's outputs for the same rows; its outputs never reach
// the client. A shadow's prediction is observed after the primary's, on the
// thread that ran the shadow's batch; a copy the shadow could not encode,
// predict or queue is not observed (ServingMetrics counts it).
//
// Thread safety: implementations must accept concurrent calls from many
// threads, and must neither block on I/O nor wait for other requests: the
// call is on the serving hot path.
#ifndef SLIPWAY_SERVING_PREDICTION_OBSERVER_H_
#define SLIPWAY_SERVING_PREDICTION_OBSERVER_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace slipway {

// One answered request, valid for the duration of the call only.
struct ObservedPrediction {
  std::string_view app;
  int version = 0;
  // The id the answer carries (X-Request-Id); a shadow's prediction has the
  // id of the answer it shadows.
  std::string_view request_id;
  int64_t answered_at_micros = 0;  // wall clock
  // Handler entry to answer; for a shadow's prediction, the time the
  // shadow's model took to predict the copy (on the shadow runner,
  // shadow_runner.h).
  int64_t latency_micros = 0;
  // The encoded rows the model saw: num_rows x the version's feature count,
  // row-major in signature order (models/features.h: NaN for a missing
  // cell, kUnseenCategory for a category the signature does not know).
  const float* rows = nullptr;
  size_t num_rows = 0;
  // The model's outputs: num_rows x width.
  const float* outputs = nullptr;
  size_t width = 0;

  // A shadow's prediction: `version` is the shadow's, and nothing of it
  // reached the client. The fields below are set for it only.
  bool shadow = false;
  // The version that answered the request, and its outputs for the same
  // rows (num_rows x primary_width), so agreement can be measured.
  int primary_version = 0;
  const float* primary_outputs = nullptr;
  size_t primary_width = 0;
};

class PredictionObserver {
 public:
  virtual ~PredictionObserver() = default;
  virtual void Observe(const ObservedPrediction& prediction) = 0;
  // A request routed to `version` of `app` that the version failed: the
  // model returned an error, or its queue refused the request (5xx).
  // Requests refused before a version took them (bad input) are not
  // reported. Called after the answer, like Observe.
  virtual void ObserveFailure(std::string_view app, int version) = 0;
};

}  // namespace slipway

#endif  // SLIPWAY_SERVING_PREDICTION_OBSERVER_H_
