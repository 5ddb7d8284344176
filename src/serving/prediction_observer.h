// PredictionObserver: where the data plane reports each prediction it
// answered, so monitoring (the prediction log and the window profiles) can
// follow serving without serving knowing about it.
//
// The predict and infer handlers call Observe once per answered request
// that the model predicted, after the answer has been handed to the HTTP
// layer, on the thread that ran the batch (a batcher worker or an HTTP I/O
// thread). Requests refused before or by the model are not observed.
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
  // The id the answer carries (X-Request-Id).
  std::string_view request_id;
  int64_t answered_at_micros = 0;  // wall clock
  int64_t latency_micros = 0;      // handler entry to answer
  // The encoded rows the model saw: num_rows x the version's feature count,
  // row-major in signature order (models/features.h: NaN for a missing
  // cell, kUnseenCategory for a category the signature does not know).
  const float* rows = nullptr;
  size_t num_rows = 0;
  // The model's outputs: num_rows x width.
  const float* outputs = nullptr;
  size_t width = 0;
};

class PredictionObserver {
 public:
  virtual ~PredictionObserver() = default;
  virtual void Observe(const ObservedPrediction& prediction) = 0;
};

}  // namespace slipway

#endif  // SLIPWAY_SERVING_PREDICTION_OBSERVER_H_
