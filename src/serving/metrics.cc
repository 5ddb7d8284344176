#include "serving/metrics.h"

#include <algorithm>
#include <map>
#include <tuple>
#include <utility>

#include "core/prometheus_text.h"
#include "serving/inference.h"

namespace slipway {
namespace {

constexpr double kMicrosPerSecond = 1e6;

constexpr VersionStateKind kAllStates[] = {
    VersionStateKind::kLoading, VersionStateKind::kReady,
    VersionStateKind::kDraining, VersionStateKind::kUnloaded,
    VersionStateKind::kFailed};

// Index of the bucket `value` falls in: the first bound >= value (a bucket's
// bound is inclusive, `le`), or bounds.size() for +Inf.
template <size_t N>
size_t BucketIndex(const std::array<int64_t, N>& bounds, int64_t value) {
  return static_cast<size_t>(
      std::lower_bound(bounds.begin(), bounds.end(), value) - bounds.begin());
}

// In the order of their names, as the series come out.
constexpr ShadowOutcome kAllShadowOutcomes[] = {
    ShadowOutcome::kDropped, ShadowOutcome::kError, ShadowOutcome::kOk};

// The roles a version may hold, as VersionState::role names them, sorted.
constexpr std::string_view kAllRoles[] = {"canary", "serving", "shadow"};

}  // namespace

std::string_view ShadowOutcomeName(ShadowOutcome outcome) {
  switch (outcome) {
    case ShadowOutcome::kOk:
      return "ok";
    case ShadowOutcome::kError:
      return "error";
    case ShadowOutcome::kDropped:
      return "dropped";
  }
  return "unknown";
}

size_t ServingMetrics::RequestKeyHash::operator()(
    const RequestKeyView& key) const {
  // boost::hash_combine's mixing over the four fields.
  size_t h = std::hash<std::string_view>()(key.app);
  auto combine = [&h](size_t v) {
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  };
  combine(std::hash<std::string_view>()(key.endpoint));
  combine(std::hash<int>()(key.version));
  combine(std::hash<int>()(key.status));
  return h;
}

ServingMetrics::ServingMetrics() = default;

ServingMetrics::Shard& ServingMetrics::ThreadShard() {
  // Round robin rather than a hash of the thread id: the first kShards
  // threads are guaranteed distinct stripes. The stripe number is process
  // wide and indexes any ServingMetrics, so no thread holds a reference to
  // an object that could be destroyed before it.
  static std::atomic<size_t> next_stripe{0};
  thread_local const size_t stripe =
      next_stripe.fetch_add(1, std::memory_order_relaxed) % kShards;
  return shards_[stripe];
}

ServingMetrics::BatchCell& ServingMetrics::BatchCellFor(
    Shard& shard, const std::string& app) {
  auto it = shard.batches.find(std::string_view(app));
  if (it == shard.batches.end()) {
    it = shard.batches.emplace(app, BatchCell{}).first;
  }
  return it->second;
}

void ServingMetrics::RecordRequest(const std::string& app, int version,
                                   std::string_view endpoint, int status,
                                   int64_t latency_us) {
  latency_us = std::max<int64_t>(latency_us, 0);
  size_t bucket = BucketIndex(kLatencyBoundsMicros, latency_us);
  Shard& shard = ThreadShard();
  absl::MutexLock lock(&shard.mu);
  auto it = shard.requests.find(RequestKeyView{app, version, endpoint, status});
  if (it == shard.requests.end()) {
    it = shard.requests
             .emplace(RequestKey{app, version, std::string(endpoint), status},
                      RequestCell{})
             .first;
  }
  RequestCell& cell = it->second;
  ++cell.count;
  ++cell.latency.buckets[bucket];
  ++cell.latency.count;
  cell.latency.sum += latency_us;
}

void ServingMetrics::RecordBatch(const std::string& app, int /*version*/,
                                 int rows, int requests, int64_t backend_us) {
  backend_us = std::max<int64_t>(backend_us, 0);
  Shard& shard = ThreadShard();
  absl::MutexLock lock(&shard.mu);
  BatchCell& cell = BatchCellFor(shard, app);
  ++cell.backend.buckets[BucketIndex(kLatencyBoundsMicros, backend_us)];
  ++cell.backend.count;
  cell.backend.sum += backend_us;
  ++cell.rows.buckets[BucketIndex(kBatchSizeBounds, rows)];
  ++cell.rows.count;
  cell.rows.sum += rows;
  ++cell.requests.buckets[BucketIndex(kBatchSizeBounds, requests)];
  ++cell.requests.count;
  cell.requests.sum += requests;
}

void ServingMetrics::RecordQueueWait(const std::string& app, int /*version*/,
                                     int64_t queue_us) {
  queue_us = std::max<int64_t>(queue_us, 0);
  Shard& shard = ThreadShard();
  absl::MutexLock lock(&shard.mu);
  BatchCell& cell = BatchCellFor(shard, app);
  ++cell.queue_wait.buckets[BucketIndex(kLatencyBoundsMicros, queue_us)];
  ++cell.queue_wait.count;
  cell.queue_wait.sum += queue_us;
}

void ServingMetrics::RecordShadowPrediction(const std::string& app, int version,
                                            ShadowOutcome outcome) {
  Shard& shard = ThreadShard();
  absl::MutexLock lock(&shard.mu);
  auto it = shard.shadows.find(std::string_view(app));
  if (it == shard.shadows.end()) {
    it = shard.shadows.emplace(app, ShadowCounts{}).first;
  }
  ++it->second[version][static_cast<size_t>(outcome)];
}

void ServingMetrics::RequestStarted() {
  in_flight_.fetch_add(1, std::memory_order_relaxed);
}

void ServingMetrics::RequestFinished() {
  in_flight_.fetch_sub(1, std::memory_order_relaxed);
}

namespace {

// Adds `from` into `*into`, bucket by bucket.
template <typename H>
void MergeHistogram(const H& from, H* into) {
  for (size_t i = 0; i < from.buckets.size(); ++i) {
    into->buckets[i] += from.buckets[i];
  }
  into->count += from.count;
  into->sum += from.sum;
}

// The _bucket (cumulative, +Inf last), _sum and _count lines of one series.
// `sum_divisor` turns the stored sum into the family's unit (microseconds ->
// seconds, or 1 for sizes); `le` holds the bucket bounds already formatted.
template <typename H>
void AppendHistogram(std::string* out, const std::string& name,
                     const std::string& labels,
                     const std::vector<std::string>& le, const H& histogram,
                     double sum_divisor) {
  const std::string prefix = labels.empty() ? "" : labels + ",";
  int64_t cumulative = 0;
  for (size_t i = 0; i < histogram.buckets.size(); ++i) {
    cumulative += histogram.buckets[i];
    std::string bound = i < le.size() ? le[i] : "+Inf";
    AppendPrometheusSample(out, name + "_bucket",
                           prefix + PrometheusLabel("le", bound),
                           std::to_string(cumulative));
  }
  std::string sum =
      sum_divisor == 1
          ? std::to_string(histogram.sum)
          : PrometheusNumber(static_cast<double>(histogram.sum) / sum_divisor);
  AppendPrometheusSample(out, name + "_sum", labels, sum);
  AppendPrometheusSample(out, name + "_count", labels,
                         std::to_string(histogram.count));
}

template <size_t N>
std::vector<std::string> FormatBounds(const std::array<int64_t, N>& bounds,
                                      double divisor) {
  std::vector<std::string> le;
  for (int64_t bound : bounds) {
    le.push_back(PrometheusNumber(static_cast<double>(bound) / divisor));
  }
  return le;
}

}  // namespace

std::string ServingMetrics::Render(
    const std::vector<VersionState>& model_states) const {
  // Merge every stripe into sorted maps, so series come out in label order.
  std::map<std::tuple<std::string, int, std::string, int>, int64_t> requests;
  std::map<std::pair<std::string, std::string>, LatencyHistogram> durations;
  std::map<std::string, BatchCell> batches;
  std::map<std::pair<std::string, int>, std::array<int64_t, 3>> shadows;
  for (const Shard& shard : shards_) {
    absl::MutexLock lock(&shard.mu);
    for (const auto& [app, versions] : shard.shadows) {
      for (const auto& [version, counts] : versions) {
        std::array<int64_t, 3>& merged = shadows[{app, version}];
        for (size_t i = 0; i < counts.size(); ++i) merged[i] += counts[i];
      }
    }
    for (const auto& [key, cell] : shard.requests) {
      requests[{key.app, key.version, key.endpoint, key.status}] += cell.count;
      MergeHistogram(cell.latency, &durations[{key.app, key.endpoint}]);
    }
    for (const auto& [app, cell] : shard.batches) {
      BatchCell& merged = batches[app];
      MergeHistogram(cell.queue_wait, &merged.queue_wait);
      MergeHistogram(cell.backend, &merged.backend);
      MergeHistogram(cell.rows, &merged.rows);
      MergeHistogram(cell.requests, &merged.requests);
    }
  }

  // Family name -> its text; the map sorts the families by name.
  std::map<std::string, std::string> families;
  auto family = [&families](const std::string& name, std::string_view help,
                            std::string_view type) {
    std::string* text = &families[name];
    *text = PrometheusFamilyHeader(name, help, type);
    return text;
  };

  {
    const std::string total = "slipway_requests_total";
    const std::string failures = "slipway_request_failures_total";
    std::string* total_text =
        family(total, "Finished data-plane HTTP requests.", "counter");
    std::string* failures_text =
        family(failures,
               "Finished data-plane HTTP requests answered with status >= 400.",
               "counter");
    for (const auto& [key, count] : requests) {
      const auto& [app, version, endpoint, status] = key;
      std::string labels = PrometheusLabel("app", app) + "," +
                           PrometheusLabel("version", std::to_string(version)) +
                           "," + PrometheusLabel("endpoint", endpoint) + "," +
                           PrometheusLabel("status", std::to_string(status));
      AppendPrometheusSample(total_text, total, labels, std::to_string(count));
      if (status >= 400) {
        AppendPrometheusSample(failures_text, failures, labels,
                               std::to_string(count));
      }
    }
  }

  const std::vector<std::string> latency_le =
      FormatBounds(kLatencyBoundsMicros, kMicrosPerSecond);
  const std::vector<std::string> size_le = FormatBounds(kBatchSizeBounds, 1);
  {
    const std::string name = "slipway_request_duration_seconds";
    std::string* text = family(
        name, "Latency of data-plane HTTP requests, from parse to response.",
        "histogram");
    for (const auto& [key, histogram] : durations) {
      AppendHistogram(text, name,
                      PrometheusLabel("app", key.first) + "," +
                          PrometheusLabel("endpoint", key.second),
                      latency_le, histogram, kMicrosPerSecond);
    }
  }
  {
    const std::string queue = "slipway_queue_wait_seconds";
    const std::string backend = "slipway_backend_duration_seconds";
    const std::string rows = "slipway_batch_rows";
    const std::string batch_requests = "slipway_batch_requests";
    std::string* queue_text = family(
        queue,
        "Time a request waited in the batch queue before its batch started.",
        "histogram");
    std::string* backend_text =
        family(backend, "Duration of one backend predict call on a batch.",
               "histogram");
    std::string* rows_text =
        family(rows, "Rows in one batch sent to the backend.", "histogram");
    std::string* requests_text = family(
        batch_requests, "Requests merged into one batch sent to the backend.",
        "histogram");
    for (const auto& [app, cell] : batches) {
      const std::string labels = PrometheusLabel("app", app);
      if (cell.queue_wait.count > 0) {
        AppendHistogram(queue_text, queue, labels, latency_le, cell.queue_wait,
                        kMicrosPerSecond);
      }
      if (cell.backend.count > 0) {
        AppendHistogram(backend_text, backend, labels, latency_le, cell.backend,
                        kMicrosPerSecond);
        AppendHistogram(rows_text, rows, labels, size_le, cell.rows, 1);
        AppendHistogram(requests_text, batch_requests, labels, size_le,
                        cell.requests, 1);
      }
    }
  }

  AppendPrometheusSample(
      family("slipway_requests_in_flight",
             "Requests currently inside a data-plane handler.", "gauge"),
      "slipway_requests_in_flight", "",
      std::to_string(in_flight_.load(std::memory_order_relaxed)));

  {
    // The last entry of a version is its current state (States() lists
    // loads in order).
    std::map<std::pair<std::string, int>, VersionStateKind> current;
    for (const VersionState& state : model_states) {
      current[{state.app, state.version}] = state.state;
    }
    const std::string name = "slipway_model_version_state";
    std::string* text = family(
        name,
        "1 for the current lifecycle state of a loaded model version, 0 for "
        "its other states.",
        "gauge");
    for (const auto& [key, state] : current) {
      const std::string prefix =
          PrometheusLabel("app", key.first) + "," +
          PrometheusLabel("version", std::to_string(key.second)) + ",";
      for (VersionStateKind kind : kAllStates) {
        AppendPrometheusSample(
            text, name,
            prefix + PrometheusLabel("state", VersionStateName(kind)),
            kind == state ? "1" : "0");
      }
    }
  }

  {
    // The last entry of a version is its current role, as for states.
    std::map<std::pair<std::string, int>, std::string_view> current;
    for (const VersionState& state : model_states) {
      current[{state.app, state.version}] = state.role;
    }
    const std::string name = "slipway_model_version_role";
    std::string* text = family(
        name,
        "1 for the traffic role (serving, canary, shadow) a model version "
        "holds, 0 for the others.",
        "gauge");
    for (const auto& [key, role] : current) {
      const std::string prefix =
          PrometheusLabel("app", key.first) + "," +
          PrometheusLabel("version", std::to_string(key.second)) + ",";
      for (std::string_view each : kAllRoles) {
        AppendPrometheusSample(text, name,
                               prefix + PrometheusLabel("role", each),
                               each == role ? "1" : "0");
      }
    }
  }

  {
    const std::string name = "slipway_shadow_predictions_total";
    std::string* text = family(
        name,
        "Copies of answered requests sent to the app's shadow version, by "
        "outcome.",
        "counter");
    for (const auto& [key, counts] : shadows) {
      const std::string prefix =
          PrometheusLabel("app", key.first) + "," +
          PrometheusLabel("version", std::to_string(key.second)) + ",";
      for (ShadowOutcome outcome : kAllShadowOutcomes) {
        AppendPrometheusSample(
            text, name,
            prefix + PrometheusLabel("outcome", ShadowOutcomeName(outcome)),
            std::to_string(counts[static_cast<size_t>(outcome)]));
      }
    }
  }

  AppendPrometheusSample(
      family("slipway_build_info",
             "Always 1; the version label is the Slipway version.", "gauge"),
      "slipway_build_info", PrometheusLabel("version", kInferenceServerVersion),
      "1");

  std::string out;
  for (const auto& [name, text] : families) out += text;
  return out;
}

std::string ServingMetrics::RenderWorkers(
    const std::vector<ModelManager::VersionWorkers>& versions) {
  if (versions.empty()) return "";
  struct Family {
    const char* name;
    const char* help;
    const char* type;
    int64_t ModelWorker::*value;
  };
  const Family families[] = {
      {"slipway_model_worker_resident_bytes",
       "Resident memory of a model's worker process (VmRSS).", "gauge",
       &ModelWorker::rss_bytes},
      {"slipway_model_worker_requests",
       "Model calls the worker slot's current process answered.", "gauge",
       &ModelWorker::requests},
      {"slipway_model_worker_restarts_total",
       "Times the worker slot's process was replaced (crash, hang, "
       "recycling).",
       "counter", &ModelWorker::restarts},
  };
  std::string text;
  for (const Family& family : families) {
    text += std::string("# HELP ") + family.name + " " + family.help + "\n";
    text += std::string("# TYPE ") + family.name + " " + family.type + "\n";
    for (const ModelManager::VersionWorkers& version : versions) {
      for (size_t i = 0; i < version.workers.size(); ++i) {
        AppendPrometheusSample(
            &text, family.name,
            PrometheusLabel("app", version.app) + "," +
                PrometheusLabel("version", std::to_string(version.version)) +
                "," + PrometheusLabel("worker", std::to_string(i)),
            std::to_string(version.workers[i].*family.value));
      }
    }
  }
  return text;
}

void AddMetricsRoute(Router* router, const ServingMetrics* metrics,
                     const ModelManager* models,
                     std::function<std::string()> more) {
  router->Add("GET", "/metrics",
              [metrics, models, more = std::move(more)](const HttpRequest&,
                                                        const PathParams&) {
                std::string text = metrics->Render(models->States());
                text += ServingMetrics::RenderWorkers(models->Workers());
                if (more) text += more();
                return HttpResponse::Text(200, std::move(text),
                                          kMetricsContentType);
              });
}

}  // namespace slipway
