// ServingMetrics: counters and histograms of the data plane, exposed in
// Prometheus text format 0.0.4 on GET /metrics. Recording is lock-free or
// per-thread on the hot path (STYLE.md rule 11); exposition merges.
//
// Families (HELP and TYPE once each, sorted by name):
//   slipway_requests_total{app,version,endpoint,status}          counter
//   slipway_request_failures_total{app,version,endpoint,status}  counter
//       (status >= 400)
//   slipway_request_duration_seconds{app,endpoint}               histogram
//   slipway_queue_wait_seconds{app}                              histogram
//   slipway_backend_duration_seconds{app}                        histogram
//       (buckets 50us 100us 250us 500us 1ms 2.5ms 5ms 10ms 25ms 50ms 100ms
//        250ms 1s +Inf)
//   slipway_batch_rows{app}, slipway_batch_requests{app}         histogram
//       (buckets 1 2 4 8 ... 1024 +Inf)
//   slipway_requests_in_flight                                   gauge
//   slipway_model_version_state{app,version,state}               gauge
//       (one series per state of each listed version: 1 for its current
//        state, 0 for the others, so a transition never leaves a stale 1)
//   slipway_model_version_role{app,version,role}                 gauge
//       (the same for the roles serving, canary and shadow; all 0 for a
//        version that holds none)
//   slipway_shadow_predictions_total{app,version,outcome}        counter
//       (copies of answered requests sent to the app's shadow `version`:
//        outcome "ok", "error" (the copy did not encode for the shadow's
//        signature, or its prediction failed) or "dropped" (the shadow's
//        queue refused it); all three series once any was counted)
//   slipway_build_info{version}                                  gauge 1
// and, from RenderWorkers, for versions whose backend runs worker
// processes (Python models), per worker slot 0, 1, ...:
//   slipway_model_worker_resident_bytes{app,version,worker}      gauge
//   slipway_model_worker_requests{app,version,worker}            gauge
//       (calls the slot's current process answered)
//   slipway_model_worker_restarts_total{app,version,worker}      counter
//
// Hot path: the Record* calls are made by every handler thread on every
// request. The object owns a fixed array of striped shards, each with its
// own mutex and its own maps keyed by the label tuple; a thread always
// records into the shard picked for it on its first call (round robin over
// the stripes, so the first kShards recording threads never share one), and
// a stripe's lock is otherwise contended only by Render. Threads keep no
// pointer to the object, so a thread exiting or a ServingMetrics destroyed
// first needs no cleanup. Durations are kept as integer microseconds (exact
// sums) and rendered as seconds.
//
// Thread safety: every method may be called concurrently, except that the
// object must not be destroyed while a call is in progress.
#ifndef SLIPWAY_SERVING_METRICS_H_
#define SLIPWAY_SERVING_METRICS_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "serving/http.h"
#include "serving/model_manager.h"

namespace slipway {

// The Content-Type of GET /metrics.
inline constexpr char kMetricsContentType[] =
    "text/plain; version=0.0.4; charset=utf-8";

// What became of a request's copy sent to the app's shadow.
enum class ShadowOutcome { kOk, kError, kDropped };

// "ok", "error", "dropped".
std::string_view ShadowOutcomeName(ShadowOutcome outcome);

class ServingMetrics {
 public:
  // Upper bounds of the latency buckets, in microseconds (+Inf implied).
  static constexpr std::array<int64_t, 13> kLatencyBoundsMicros = {
      50,     100,    250,    500,     1'000,   2'500,    5'000,
      10'000, 25'000, 50'000, 100'000, 250'000, 1'000'000};
  // Upper bounds of the batch size buckets (rows, requests; +Inf implied).
  static constexpr std::array<int64_t, 11> kBatchSizeBounds = {
      1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
  // Number of lock stripes recording is spread over.
  static constexpr size_t kShards = 16;

  // Durations are measured by the callers, who pass microseconds.
  ServingMetrics();
  ServingMetrics(const ServingMetrics&) = delete;
  ServingMetrics& operator=(const ServingMetrics&) = delete;

  // One finished HTTP request on a data-plane route. `endpoint` is
  // "predict" (/v1/apps/{app}/predict) or "infer" (OIP v2 infer); `version`
  // 0 when no model answered (unknown app, bad request before a model was
  // chosen); `status` the HTTP status code. A negative latency (a clock
  // stepping back) counts as 0.
  void RecordRequest(const std::string& app, int version,
                     std::string_view endpoint, int status, int64_t latency_us);
  // One backend call of the batcher: rows in the batch, requests in it, and
  // the backend call's duration in microseconds. The histograms are labelled
  // by app only; `version` is accepted so callers pass what they have.
  void RecordBatch(const std::string& app, int version, int rows, int requests,
                   int64_t backend_us);
  // One request's queue wait (enqueue -> batch start) in microseconds.
  void RecordQueueWait(const std::string& app, int version, int64_t queue_us);

  // One request copy for the shadow `version` of `app` and what became of
  // it.
  void RecordShadowPrediction(const std::string& app, int version,
                              ShadowOutcome outcome);

  // Requests currently inside a data-plane handler (incremented at entry,
  // decremented when the response is produced).
  void RequestStarted();
  void RequestFinished();

  // The whole exposition text; `model_states` lists loaded versions, their
  // states and roles (from ModelManager::States()). When a version appears
  // more than once (reloaded after an unload), its last entry is its state
  // and role.
  std::string Render(const std::vector<VersionState>& model_states) const;
  // The worker families above; "" when no version has workers.
  static std::string RenderWorkers(
      const std::vector<ModelManager::VersionWorkers>& versions);

 private:
  template <size_t N>
  struct Histogram {
    std::array<int64_t, N + 1> buckets{};  // per bucket, the last is +Inf
    int64_t count = 0;
    int64_t sum = 0;  // microseconds for durations, units otherwise
  };
  using LatencyHistogram = Histogram<kLatencyBoundsMicros.size()>;
  using SizeHistogram = Histogram<kBatchSizeBounds.size()>;

  // The label tuple of slipway_requests_total; the request duration
  // histogram is kept per tuple too and summed over version and status when
  // rendered, so the hot path does one map lookup.
  struct RequestKey {
    std::string app;
    int version;
    std::string endpoint;
    int status;
  };
  struct RequestKeyView {
    std::string_view app;
    int version;
    std::string_view endpoint;
    int status;
  };
  struct RequestKeyHash {
    using is_transparent = void;
    size_t operator()(const RequestKeyView& key) const;
    size_t operator()(const RequestKey& key) const {
      return (*this)(
          RequestKeyView{key.app, key.version, key.endpoint, key.status});
    }
  };
  struct RequestKeyEq {
    using is_transparent = void;
    static RequestKeyView View(const RequestKey& key) {
      return {key.app, key.version, key.endpoint, key.status};
    }
    static RequestKeyView View(const RequestKeyView& key) { return key; }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      RequestKeyView x = View(a);
      RequestKeyView y = View(b);
      return x.app == y.app && x.version == y.version &&
             x.endpoint == y.endpoint && x.status == y.status;
    }
  };
  struct RequestCell {
    int64_t count = 0;
    LatencyHistogram latency;
  };

  // Per app: the batcher's histograms.
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const {
      return std::hash<std::string_view>()(s);
    }
  };
  struct BatchCell {
    LatencyHistogram queue_wait;
    LatencyHistogram backend;
    SizeHistogram rows;
    SizeHistogram requests;
  };
  // Per app: per shadow version, the count of each ShadowOutcome.
  using ShadowCounts = std::map<int, std::array<int64_t, 3>>;

  // One lock stripe; aligned so neighbouring stripes never share a cache
  // line.
  struct alignas(64) Shard {
    mutable absl::Mutex mu;
    std::unordered_map<RequestKey, RequestCell, RequestKeyHash, RequestKeyEq>
        requests ABSL_GUARDED_BY(mu);
    std::unordered_map<std::string, BatchCell, StringHash, std::equal_to<>>
        batches ABSL_GUARDED_BY(mu);
    std::unordered_map<std::string, ShadowCounts, StringHash, std::equal_to<>>
        shadows ABSL_GUARDED_BY(mu);
  };

  // The calling thread's stripe.
  Shard& ThreadShard();
  // The batch cell of `app` in `shard`, created on first use.
  static BatchCell& BatchCellFor(Shard& shard, const std::string& app)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);

  std::array<Shard, kShards> shards_;
  std::atomic<int64_t> in_flight_{0};
};

// Registers GET /metrics (Content-Type kMetricsContentType), rendering
// `metrics` with the states of `models`, followed by what `more` renders
// (may be empty; families of its own, e.g. the monitor's gauges). Both are
// borrowed and must outlive the router.
void AddMetricsRoute(Router* router, const ServingMetrics* metrics,
                     const ModelManager* models,
                     std::function<std::string()> more = {});

}  // namespace slipway

#endif  // SLIPWAY_SERVING_METRICS_H_
