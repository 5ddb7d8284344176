// The data plane's HTTP handlers: health and readiness probes, the simple
// predict endpoint, and the Open Inference Protocol v2 (KServe/Triton JSON)
// metadata, readiness and inference endpoints. Each request is parsed
// straight into the row-major float matrix a Model takes, following the
// served version's Signature, predicted, and answered as JSON.
//
// Routes registered by AddInferenceRoutes:
//   GET  /healthz, /readyz, /v2/health/live, /v2/health/ready, /v2
//   POST /v1/apps/{app}/predict        {"records": [{feature: value, ...}]},
//        {"columns": [...], "data": [[...]]} (pandas "split"), or CSV with
//        Content-Type text/csv (header row; extra columns are ignored)
//   GET  /v2/models/{app}[/versions/{version}][/ready]
//   POST /v2/models/{app}[/versions/{version}]/infer
// {app} without a version is routed by ModelManager::Route: the app's
// canary answers its percent of the requests, the serving (champion)
// version the rest; the header X-Routing-Key keeps one key on one version
// (without it requests are spread evenly). When the app has a shadow other
// than the version that answered, a copy of the request (body and the
// headers the encoders read) goes to the shadow once the answer has been
// handed to the HTTP layer: it is encoded again for the shadow's signature
// and queued on the shadow's scheduler, its outputs go to the observer
// (ObservedPrediction::shadow) and never to the client, and its outcome is
// counted (ServingMetrics::RecordShadowPrediction: ok, error, or dropped
// when the shadow's queue is full). On an HTTP I/O thread the copy waits
// for the end of the event-loop pass, so the answer is written first.
// {app}/versions/{version} is answered by that version alone, unshadowed.
// Infer also takes Triton's binary tensor data extension: with the header
// Inference-Header-Content-Length: N the body's first N bytes are the JSON
// request and the rest the binary data of the inputs whose parameters carry
// binary_data_size, in input order (see README.md). Answers are JSON.
//
// Values: null (JSON) or an empty/NA cell (CSV) is a missing value; a
// categorical value the model never saw is treated as missing and counted
// in the response ("unseen_categories" in /v1, parameters.unseen_categories
// in /v2) when there is any. Every answer to a prediction carries the
// headers X-Request-Id and X-Model-Version.
//
// Errors use the one JSON error body ({"error": "..."}) and name what is
// wrong: the feature, the record or row, the input tensor, the app or the
// version (400 for a bad request, 404 for an unknown app or version, 503 when
// the app has no model loaded yet).
//
// Predict and infer are asynchronous handlers: a request is parsed and
// validated on the server thread, then handed to the version's
// BatchScheduler (the handle's `scheduler`: a DynamicBatcher, or direct
// prediction when batching is off) and answered from the batch's callback,
// which builds the JSON answer on the batcher's worker thread.
// A full queue is answered 503 with `Retry-After: 1` and the error naming
// the app and the limit. Each such request is recorded in `metrics`
// (RequestStarted / RequestFinished, and RecordRequest with endpoint
// "predict" or "infer", the version that answered, canary or serving, the
// HTTP status and the latency).
//
// Ownership: `models`, `clock` and `metrics` are borrowed and must outlive
// the router; `metrics` may be null (nothing recorded).
// Thread safety: the handlers hold no state of their own and may run
// concurrently; each request holds a ServableHandle until it is queued, and
// its answer the model, so a version swapped out mid-request finishes the
// request.
#ifndef SLIPWAY_SERVING_INFERENCE_H_
#define SLIPWAY_SERVING_INFERENCE_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/clock.h"
#include "serving/http.h"
#include "serving/metrics.h"
#include "serving/model_manager.h"
#include "serving/prediction_observer.h"
#include "serving/shadow_runner.h"

namespace slipway {

// The server name and version reported by GET /v2.
inline constexpr char kInferenceServerName[] = "slipway";
inline constexpr char kInferenceServerVersion[] = "0.1.0";

// Decides whether a predict or infer request for `app` may go on (an app
// whose endpoint requires a token): nullopt, or the refusal to answer.
using PredictionGuard = std::function<std::optional<HttpResponse>(
    const std::string& app, const HttpRequest&)>;

// `guard` (may be empty: every request goes on) runs before predict and
// infer handlers parse anything. `observer` (may be null; borrowed, must
// outlive the router) is told of every request the model answered
// (prediction_observer.h).
//
// Shadow copies are predicted by `shadow_runner` (serving/shadow_runner.h:
// idle CPU priority, a bounded queue; copies beyond it are dropped and
// counted), which the routes share; null: a runner with the defaults.
void AddInferenceRoutes(Router* router, ModelManager* models, Clock* clock,
                        ServingMetrics* metrics, PredictionGuard guard = {},
                        PredictionObserver* observer = nullptr,
                        std::shared_ptr<ShadowRunner> shadow_runner = nullptr);

}  // namespace slipway

#endif  // SLIPWAY_SERVING_INFERENCE_H_
