#include "monitor/monitor_service.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>
#include <set>
#include <utility>

#include "absl/time/time.h"
#include "core/ids.h"
#include "core/logging.h"
#include "core/prometheus_text.h"
#include "core/status.h"
#include "models/features.h"
#include "monitor/kpis.h"

namespace slipway {
namespace {

using nlohmann::json;

constexpr size_t kLatencyBuckets = MonitorService::kLatencyBoundsMicros.size();

// How often the loop looks for windows to close; windows are at least 1 s.
constexpr absl::Duration kLoopInterval = absl::Milliseconds(200);

// Deleting old predictions once an hour is enough for a retention of days.
constexpr int64_t kRetentionEveryMicros = 3600LL * 1'000'000;

void AppendFloat(float value, std::string* out) {
  if (!std::isfinite(value)) {
    out->append("null");
    return;
  }
  char buffer[32];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  out->append(buffer, end);
}

// "[0.83]" or "[0.1,0.2,0.7]".
std::string PredictionJson(const float* outputs, size_t width) {
  std::string text = "[";
  for (size_t k = 0; k < width; ++k) {
    if (k > 0) text.push_back(',');
    AppendFloat(outputs[k], &text);
  }
  text.push_back(']');
  return text;
}

// The row as the model saw it: {"age": 41, "plan": "pro", "region": null}
// (null for a missing cell and for a category the model does not know).
std::string InputsJson(const Signature& signature, const float* cells) {
  json inputs = json::object();
  const std::vector<FeatureSpec>& features = signature.features();
  for (size_t f = 0; f < features.size(); ++f) {
    const FeatureSpec& spec = features[f];
    const float cell = cells[f];
    if (std::isnan(cell)) {
      inputs[spec.name] = nullptr;
    } else if (spec.is_categorical()) {
      const size_t code = static_cast<size_t>(cell);
      inputs[spec.name] = code < spec.categories.size()
                              ? json(spec.categories[code])
                              : json(nullptr);
    } else {
      inputs[spec.name] = static_cast<double>(cell);
    }
  }
  return inputs.dump();
}

// A label as the text the model's classes use: 1, 1.0 and "1" are "1".
std::optional<std::string> LabelText(const json& label) {
  if (label.is_string()) return label.get<std::string>();
  if (label.is_boolean()) return BoolCategoryText(label.get<bool>());
  if (label.is_number_integer()) return Int64CategoryText(label.get<int64_t>());
  if (label.is_number()) {
    const double value = label.get<double>();
    if (!std::isfinite(value)) return std::nullopt;
    if (value == std::floor(value) && std::fabs(value) < 9e15) {
      return Int64CategoryText(static_cast<int64_t>(value));
    }
    return Float64CategoryText(value);
  }
  return std::nullopt;
}

std::string Shown(const json& value) {
  std::string text = value.dump();
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return text;
}

std::string ClassList(const Signature& signature) {
  std::string list;
  for (const std::string& label : signature.class_labels()) {
    if (!list.empty()) list += ", ";
    list += label;
  }
  return list;
}

// One feedback item checked against the model: InvalidArgument naming the
// item and field otherwise.
absl::StatusOr<FeedbackRecord> ParseFeedbackItem(const json& item, size_t index,
                                                 const std::string& app,
                                                 const Signature& signature) {
  const std::string where = "feedback item " + std::to_string(index);
  if (!item.is_object()) {
    return absl::InvalidArgumentError(
        where +
        " must be an object such as {\"request_id\": \"req-...\", "
        "\"label\": 1}, got " +
        Shown(item));
  }
  FeedbackRecord record;
  record.app = app;
  auto id = item.find("request_id");
  if (id == item.end() || !id->is_string() || id->get<std::string>().empty()) {
    return absl::InvalidArgumentError(
        where +
        ": field 'request_id' (the request_id of a predict or infer "
        "answer) is required and must be a non-empty string");
  }
  record.request_id = id->get<std::string>();
  auto label = item.find("label");
  if (label == item.end() || label->is_null()) {
    return absl::InvalidArgumentError(where + " (request " + record.request_id +
                                      "): field 'label' is required");
  }
  if (signature.is_classification()) {
    std::optional<std::string> text = LabelText(*label);
    const std::vector<std::string>& classes = signature.class_labels();
    if (!text.has_value() ||
        std::find(classes.begin(), classes.end(), *text) == classes.end()) {
      return absl::InvalidArgumentError(
          where + " (request " + record.request_id + "): field 'label' " +
          Shown(*label) + " is not a class of app '" + app +
          "'s model; its classes are: " + ClassList(signature));
    }
    record.label = *text;
  } else {
    double value = 0;
    bool ok = label->is_number() && !label->is_boolean();
    if (ok) value = label->get<double>();
    if (!ok || !std::isfinite(value)) {
      return absl::InvalidArgumentError(
          where + " (request " + record.request_id + "): field 'label' " +
          "must be a number for app '" + app + "'s regression model, got " +
          Shown(*label));
    }
    record.label = Float64CategoryText(value);
  }
  auto kpis = item.find("kpis");
  if (kpis != item.end() && !kpis->is_null()) {
    if (!kpis->is_object()) {
      return absl::InvalidArgumentError(
          where + " (request " + record.request_id +
          "): field 'kpis' must be an object of numbers such as "
          "{\"revenue\": 12.5}, got " +
          Shown(*kpis));
    }
    for (const auto& [name, value] : kpis->items()) {
      if (!value.is_number() || value.is_boolean() ||
          !std::isfinite(value.get<double>())) {
        return absl::InvalidArgumentError(
            where + " (request " + record.request_id + "): field 'kpis." +
            name + "' must be a number, got " + Shown(value));
      }
    }
    record.kpis_json = kpis->dump();
  }
  for (const auto& [key, value] : item.items()) {
    if (key != "request_id" && key != "label" && key != "kpis") {
      return absl::InvalidArgumentError(
          where + ": unknown field '" + key +
          "'; an item has request_id, label and kpis");
    }
  }
  return record;
}

// Prometheus text of one family: HELP, TYPE, then its samples.
class Family {
 public:
  Family(std::string name, std::string type, std::string help)
      : name_(std::move(name)),
        type_(std::move(type)),
        help_(std::move(help)) {}

  void Add(const std::vector<std::pair<std::string, std::string>>& labels,
           double value) {
    std::string text;
    for (const auto& [name, label_value] : labels) {
      if (!text.empty()) text += ',';
      text += PrometheusLabel(name, label_value);
    }
    AppendPrometheusSample(&samples_, name_, text, PrometheusNumber(value));
  }

  void AppendTo(std::string* out) const {
    *out += PrometheusFamilyHeader(name_, help_, type_);
    *out += samples_;
  }

 private:
  std::string name_;
  std::string type_;
  std::string help_;
  std::string samples_;
};

}  // namespace

DriftPolicy DriftPolicyFor(const DriftSpec& spec) {
  DriftPolicy policy;
  auto thresholds = [&spec](const DriftRuleSpec& rule) {
    DriftThresholds t;
    t.psi_warn = spec.warn;
    t.psi_alert = spec.alert;
    if (rule.method == "psi") t.method = DriftMethod::kPsi;
    if (rule.method == "ks") t.method = DriftMethod::kKs;
    if (rule.method == "wasserstein") t.method = DriftMethod::kWasserstein;
    if (rule.method == "chi2") t.method = DriftMethod::kChiSquare;
    if (rule.method == "js") t.method = DriftMethod::kJensenShannon;
    if (rule.threshold.has_value()) {
      const double x = *rule.threshold;
      switch (t.method) {
        case DriftMethod::kPsi:
          t.psi_alert = x;
          break;
        case DriftMethod::kKs:
        case DriftMethod::kChiSquare:
          t.max_pvalue = x;
          break;
        case DriftMethod::kWasserstein:
          t.max_wasserstein = x;
          break;
        case DriftMethod::kJensenShannon:
          t.max_js = x;
          break;
        case DriftMethod::kAuto:
          t.max_wasserstein = x;
          t.max_js = x;
          break;
      }
    }
    return t;
  };
  policy.defaults = thresholds(spec.rule);
  for (const auto& [name, rule] : spec.features) {
    policy.features[name] = thresholds(rule);
  }
  return policy;
}

std::optional<double> BucketQuantile(const std::vector<int64_t>& bounds,
                                     const std::vector<int64_t>& counts,
                                     double q) {
  int64_t total = 0;
  for (int64_t c : counts) total += c;
  if (total == 0 || counts.size() != bounds.size() + 1) return std::nullopt;
  const double rank = q * static_cast<double>(total);
  int64_t below = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] == 0 || static_cast<double>(below + counts[i]) < rank) {
      below += counts[i];
      continue;
    }
    // The +Inf bucket has no upper bound: its lower bound is the answer.
    if (i == bounds.size()) return static_cast<double>(bounds.back());
    const double lower = i == 0 ? 0 : static_cast<double>(bounds[i - 1]);
    const double upper = static_cast<double>(bounds[i]);
    const double within =
        (rank - static_cast<double>(below)) / static_cast<double>(counts[i]);
    return lower + (upper - lower) * std::clamp(within, 0.0, 1.0);
  }
  return static_cast<double>(bounds.back());
}

struct MonitorService::VersionState {
  int version = 0;
  Signature signature;
  std::optional<ProfileSet> baseline;
  std::unique_ptr<WindowProfiler> profiler;  // null without a baseline
  std::atomic<int64_t> rows{0};              // rows observed in the window
  // A shadow's rows compared with the answer the client got, and those
  // whose predicted class was the same (ObserveAgreement).
  std::atomic<int64_t> compared{0};
  std::atomic<int64_t> agreed{0};
  // Requests answered, and requests the version failed (ObserveFailure).
  std::atomic<int64_t> requests{0};
  std::atomic<int64_t> failed{0};
  std::array<std::atomic<int64_t>, kLatencyBuckets + 1> latency{};
};

// What /metrics shows of a version's latest window.
struct MonitorService::Latest {
  bool stored = false;  // the window held something and was stored
  int64_t rows = 0;
  std::vector<FeatureDrift> drift;
  json kpis = json::object();
};

struct MonitorService::AppState {
  std::map<int, std::shared_ptr<VersionState>> versions;
  int serving_version = 0;
  // Versions served beside it (a canary, a shadow): followed even through
  // windows without traffic; `shadows` are the shadows among them.
  std::set<int> beside;
  std::set<int> shadows;
  bool enabled = true;
  double log_inputs = 0;
  int64_t window_micros = 300LL * 1'000'000;
  int64_t window_start = 0;
  int64_t retention_micros = 30LL * 86400 * 1'000'000;
  int64_t last_retention = 0;
  std::optional<AlertEngine> engine;
  std::string engine_key;  // the rules and features the engine was built on
  std::map<int, Latest> latest;
  std::map<std::string, std::string> alert_states;  // rule -> state
};

absl::StatusOr<std::unique_ptr<MonitorService>> MonitorService::Create(
    Options options) {
  if (options.store == nullptr || options.clock == nullptr ||
      !options.monitor_spec) {
    return absl::InvalidArgumentError(
        "MonitorService needs a store, a clock and a monitor_spec lookup");
  }
  if (options.log.clock == nullptr) options.log.clock = options.clock;
  std::unique_ptr<MonitorService> service(new MonitorService(options));
  ASSIGN_OR_RETURN(service->log_,
                   PredictionLog::Create(options.store, options.log));
  PredictionLog::Options shadow_log = options.log;
  shadow_log.writer_setup = options.shadow_writer_setup;
  ASSIGN_OR_RETURN(service->shadow_log_,
                   PredictionLog::Create(options.store, shadow_log));
  return service;
}

MonitorService::MonitorService(Options options)
    : options_(std::move(options)) {}

MonitorService::~MonitorService() { Stop(); }

absl::Status MonitorService::Track(const std::string& app, int version,
                                   const Signature& signature,
                                   std::optional<ProfileSet> baseline,
                                   const MonitorSpec& spec, TrackedAs as) {
  auto state = std::make_shared<VersionState>();
  state->version = version;
  state->signature = signature;
  if (baseline.has_value()) {
    ASSIGN_OR_RETURN(
        state->profiler, WindowProfiler::Create(*baseline, signature),
        "baseline of model " + app + " v" + std::to_string(version));
  }
  state->baseline = std::move(baseline);
  const int64_t now = options_.clock->NowMicros();
  absl::MutexLock lock(&mu_);
  std::unique_ptr<AppState>& slot = apps_[app];
  if (slot == nullptr) {
    slot = std::make_unique<AppState>();
    slot->window_micros = spec.window_seconds * 1'000'000;
    slot->window_start = now - now % slot->window_micros;
  }
  AppState& app_state = *slot;
  app_state.enabled = spec.enabled;
  app_state.log_inputs = spec.log_inputs;
  app_state.retention_micros = spec.retention_seconds * 1'000'000;
  // A version served again keeps the window it is in.
  auto it = app_state.versions.find(version);
  if (it == app_state.versions.end()) {
    app_state.versions.emplace(version, std::move(state));
  }
  if (as != TrackedAs::kServing) {
    app_state.beside.insert(version);
    if (as == TrackedAs::kShadow) app_state.shadows.insert(version);
    return absl::OkStatus();
  }
  app_state.beside.erase(version);
  app_state.shadows.erase(version);
  app_state.serving_version = version;
  return RefreshEngine(app, app_state, spec);
}

void MonitorService::Untrack(const std::string& app, int version) {
  absl::MutexLock lock(&mu_);
  auto it = apps_.find(app);
  if (it == apps_.end()) return;
  it->second->beside.erase(version);
  it->second->shadows.erase(version);
}

absl::Status MonitorService::RefreshEngine(const std::string& app,
                                           AppState& state,
                                           const MonitorSpec& spec) {
  auto serving = state.versions.find(state.serving_version);
  if (serving == state.versions.end()) return absl::OkStatus();
  AlertEngine::Options options;
  options.app = app;
  options.rules = spec.rules;
  for (const FeatureSpec& f : serving->second->signature.features()) {
    options.features.push_back(f.name);
  }
  json key = json::array();
  for (const AlertRuleSpec& r : options.rules) {
    key.push_back({r.name, r.metric, r.comparison == Comparison::kBelow,
                   r.threshold, r.for_windows,
                   r.fire.has_value() ? std::string(TriggerEventName(*r.fire))
                                      : std::string()});
  }
  key.push_back(options.features);
  const std::string engine_key = key.dump();
  if (state.engine.has_value() && state.engine_key == engine_key) {
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(AlertEngine engine, AlertEngine::Create(std::move(options)),
                   "monitor.rules of app '" + app + "'");
  if (state.engine.has_value()) {
    RETURN_IF_ERROR(engine.RestoreState(state.engine->SaveState()));
  } else {
    ASSIGN_OR_RETURN(std::optional<AlertEngineStateRecord> saved,
                     options_.store->GetAlertEngineState(app));
    if (saved.has_value()) {
      absl::Status restored =
          engine.RestoreState(json::parse(saved->state_json, nullptr, false));
      if (!restored.ok()) {
        LogWarning("monitor.alert_state_dropped",
                   {{"app", app}, {"error", std::string(restored.message())}});
      }
    }
  }
  state.engine = std::move(engine);
  state.engine_key = engine_key;
  return absl::OkStatus();
}

void MonitorService::ObserveFailure(std::string_view app, int version) {
  absl::ReaderMutexLock lock(&mu_);
  auto found = apps_.find(app);
  if (found == apps_.end() || !found->second->enabled) return;
  auto it = found->second->versions.find(version);
  if (it == found->second->versions.end()) return;
  it->second->failed.fetch_add(1, std::memory_order_relaxed);
}

void MonitorService::ObserveAgreement(std::string_view app, int version,
                                      size_t num_rows, const float* outputs,
                                      size_t width,
                                      const float* primary_outputs,
                                      size_t primary_width) {
  if (num_rows == 0 || width != primary_width || width == 0) return;
  absl::ReaderMutexLock lock(&mu_);
  auto found = apps_.find(app);
  if (found == apps_.end() || !found->second->enabled) return;
  auto it = found->second->versions.find(version);
  if (it == found->second->versions.end()) return;
  VersionState& state = *it->second;
  if (!state.signature.is_classification()) return;
  // The predicted class: P(class 1) > 0.5 for one output, else the arg max
  // (the lowest on a tie).
  auto predicted = [width](const float* row) -> size_t {
    if (width == 1) return row[0] > 0.5f ? 1 : 0;
    return static_cast<size_t>(std::max_element(row, row + width) - row);
  };
  int64_t agreed = 0;
  for (size_t r = 0; r < num_rows; ++r) {
    if (predicted(outputs + r * width) ==
        predicted(primary_outputs + r * width)) {
      ++agreed;
    }
  }
  state.compared.fetch_add(static_cast<int64_t>(num_rows),
                           std::memory_order_relaxed);
  state.agreed.fetch_add(agreed, std::memory_order_relaxed);
}

void MonitorService::Observe(std::string_view app, int version,
                             std::string_view request_id,
                             int64_t answered_at_micros, int64_t latency_micros,
                             const float* rows, size_t num_rows,
                             const float* outputs, size_t width) {
  absl::ReaderMutexLock lock(&mu_);
  auto found = apps_.find(app);
  if (found == apps_.end() || !found->second->enabled) return;
  const AppState& app_state = *found->second;
  auto it = app_state.versions.find(version);
  if (it == app_state.versions.end()) return;
  VersionState& state = *it->second;
  const size_t num_features = state.signature.features().size();

  if (state.profiler != nullptr) {
    state.profiler->Observe(rows, num_rows, outputs, width, nullptr);
  }
  state.rows.fetch_add(static_cast<int64_t>(num_rows),
                       std::memory_order_relaxed);
  state.requests.fetch_add(1, std::memory_order_relaxed);
  const auto* bound =
      std::lower_bound(kLatencyBoundsMicros.begin(), kLatencyBoundsMicros.end(),
                       std::max<int64_t>(latency_micros, 0));
  state.latency[bound - kLatencyBoundsMicros.begin()].fetch_add(
      1, std::memory_order_relaxed);

  PredictionLog* log =
      app_state.shadows.count(version) > 0 ? shadow_log_.get() : log_.get();
  const bool sampled = app_state.log_inputs > 0 &&
                       SampleInputs(std::hash<std::string_view>()(request_id),
                                    app_state.log_inputs);
  for (size_t row = 0; row < num_rows; ++row) {
    PredictionRecord record;
    record.request_id = std::string(request_id);
    if (num_rows > 1) {
      record.request_id += "/";
      record.request_id += std::to_string(row);
    }
    record.app = std::string(app);
    record.version = version;
    record.at = answered_at_micros;
    record.prediction_json = PredictionJson(outputs + row * width, width);
    if (sampled) {
      record.inputs_json =
          InputsJson(state.signature, rows + row * num_features);
    }
    log->Log(std::move(record));
  }
}

absl::Status MonitorService::FlushLog() {
  absl::Status status = log_->Flush();
  status.Update(shadow_log_->Flush());
  return status;
}

absl::StatusOr<json> MonitorService::AddFeedback(const std::string& app,
                                                 const json& body) {
  Signature signature;
  int64_t window_micros = 0;
  {
    absl::ReaderMutexLock lock(&mu_);
    auto found = apps_.find(app);
    const AppState* state =
        found == apps_.end() ? nullptr : found->second.get();
    auto it = state == nullptr ? decltype(state->versions)::const_iterator()
                               : state->versions.find(state->serving_version);
    if (state == nullptr || it == state->versions.end()) {
      RETURN_IF_ERROR(options_.store->GetApp(app).status());
      return absl::UnavailableError(
          "app '" + app +
          "' serves no model yet; feedback labels the predictions of a "
          "served model");
    }
    signature = it->second->signature;
    window_micros = state->window_micros;
  }
  std::vector<json> items;
  if (body.is_array()) {
    items.assign(body.begin(), body.end());
  } else if (body.is_object() && body.contains("feedback")) {
    const json& list = body["feedback"];
    if (!list.is_array()) {
      return absl::InvalidArgumentError(
          "field 'feedback' must be a list of items such as "
          "{\"request_id\": \"req-...\", \"label\": 1}");
    }
    items.assign(list.begin(), list.end());
  } else {
    items.push_back(body);
  }
  if (items.empty()) {
    return absl::InvalidArgumentError(
        "the feedback holds no item; send {\"request_id\", \"label\"}, a "
        "list of them, or {\"feedback\": [...]}");
  }
  const int64_t now = options_.clock->NowMicros();
  std::vector<FeedbackRecord> records;
  records.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    ASSIGN_OR_RETURN(FeedbackRecord record,
                     ParseFeedbackItem(items[i], i, app, signature));
    record.received_at = now;
    records.push_back(std::move(record));
  }
  // The same labels for the predictions of versions served beside the
  // champion as a shadow (logged under ShadowLoggedId): their KPIs come
  // from the same feedback. Their outcomes are not the client's.
  const size_t sent = records.size();
  bool shadowed = false;
  {
    absl::ReaderMutexLock lock(&mu_);
    auto found = apps_.find(app);
    shadowed = found != apps_.end() && !found->second->shadows.empty();
  }
  if (shadowed) {
    for (size_t i = 0; i < sent; ++i) {
      FeedbackRecord shadow = records[i];
      shadow.request_id = ShadowLoggedId(records[i].request_id);
      records.push_back(std::move(shadow));
    }
  }
  // The predictions just answered must be stored for the feedback to find
  // them.
  absl::Status flushed = FlushLog();
  if (!flushed.ok()) {
    LogWarning("monitor.prediction_log_flush_failed",
               {{"app", app}, {"error", std::string(flushed.message())}});
  }
  ASSIGN_OR_RETURN(std::vector<FeedbackOutcome> outcomes,
                   options_.store->AddFeedback(records));
  std::map<std::string, int64_t> counts = {{"accepted", 0},
                                           {"duplicate", 0},
                                           {"unknown_request", 0},
                                           {"wrong_app", 0}};
  json answer_items = json::array();
  // Accepted labels of predictions made in an earlier window than this one.
  int64_t late = 0;
  outcomes.resize(sent);
  records.resize(sent);
  for (size_t i = 0; i < outcomes.size(); ++i) {
    const std::string name = FeedbackOutcomeName(outcomes[i]);
    ++counts[name];
    const std::string& id = records[i].request_id;
    std::optional<int64_t> ms = IdMillis(LoggedRequestId(id));
    if (outcomes[i] == FeedbackOutcome::kAccepted && ms.has_value() &&
        *ms * 1000 / window_micros < now / window_micros) {
      ++late;
    }
    answer_items.push_back(
        {{"request_id", records[i].request_id}, {"outcome", name}});
  }
  {
    absl::MutexLock lock(&counters_mu_);
    for (const auto& [name, count] : counts) {
      feedback_counts_[{app, name}] += count;
    }
    feedback_late_[app] += late;
  }
  // A single item sent alone whose id is unknown (nothing was stored) is
  // an error of its own.
  if (outcomes.size() == 1 && !body.is_array() && !body.contains("feedback")) {
    if (outcomes[0] == FeedbackOutcome::kUnknownRequest) {
      return absl::NotFoundError(
          "no prediction with request id '" + records[0].request_id +
          "' was logged for app '" + app +
          "' (use the request_id of a predict or infer answer; a request of "
          "N rows logs row i as '<request_id>/<i>'; predictions older than "
          "monitor.retention are deleted)");
    }
    if (outcomes[0] == FeedbackOutcome::kWrongApp) {
      return absl::NotFoundError("request id '" + records[0].request_id +
                                 "' is a prediction of another app, not of '" +
                                 app + "'");
    }
  }
  json answer = {{"app", app}};
  for (const auto& [name, count] : counts) answer[name] = count;
  answer["late"] = late;
  answer["items"] = std::move(answer_items);
  return answer;
}

absl::Status MonitorService::Tick() {
  absl::MutexLock tick_lock(&tick_mu_);
  std::vector<std::string> apps;
  {
    absl::ReaderMutexLock lock(&mu_);
    for (const auto& [name, state] : apps_) apps.push_back(name);
  }
  absl::Status first;
  const int64_t now = options_.clock->NowMicros();
  for (const std::string& app : apps) {
    absl::Status s = TickApp(app, now);
    if (!s.ok()) {
      LogError("monitor.window_failed",
               {{"app", app}, {"error", std::string(s.message())}});
      if (first.ok()) first = s;
    }
  }
  return first;
}

absl::Status MonitorService::TickApp(const std::string& app, int64_t now) {
  {
    absl::ReaderMutexLock lock(&mu_);
    const AppState& state = *apps_.at(app);
    if (now < state.window_start + state.window_micros) return absl::OkStatus();
  }
  // The spec's settings as the window closes; they apply from the next one.
  absl::StatusOr<MonitorSpec> spec = options_.monitor_spec(app);
  int64_t start = 0;
  int64_t end = 0;
  int serving_version = 0;
  std::set<int> beside;
  std::vector<std::shared_ptr<VersionState>> versions;
  {
    absl::MutexLock lock(&mu_);
    AppState& state = *apps_.at(app);
    if (spec.ok()) {
      state.enabled = spec->enabled;
      state.log_inputs = spec->log_inputs;
      state.retention_micros = spec->retention_seconds * 1'000'000;
      RETURN_IF_ERROR(RefreshEngine(app, state, *spec));
    }
    if (now < state.window_start + state.window_micros) return absl::OkStatus();
    start = state.window_start;
    end = start + state.window_micros;
    // A changed window length starts at the next aligned window.
    if (spec.ok()) state.window_micros = spec->window_seconds * 1'000'000;
    state.window_start = std::max(end, now - now % state.window_micros);
    serving_version = state.serving_version;
    beside = state.beside;
    for (const auto& [version, v] : state.versions) versions.push_back(v);
  }
  if (!spec.ok()) {
    LogWarning("monitor.spec_unreadable",
               {{"app", app}, {"error", std::string(spec.status().message())}});
  }

  ASSIGN_OR_RETURN(std::vector<LabeledRecord> labeled,
                   options_.store->ListLabeled(app, start, end));
  const DriftPolicy policy =
      spec.ok() ? DriftPolicyFor(spec->drift) : DriftPolicy();
  WindowMetrics metrics;
  std::map<int, Latest> latest;
  std::vector<int> idle;
  for (const std::shared_ptr<VersionState>& v : versions) {
    std::vector<LabeledRecord> own;
    for (const LabeledRecord& r : labeled) {
      if (r.version == v->version) own.push_back(r);
    }
    Latest window;
    RETURN_IF_ERROR(CloseVersionWindow(
        app, *v, start, end, own, policy,
        v->version == serving_version ? &metrics : nullptr, &window));
    if (!window.stored) {
      if (v->version != serving_version && beside.count(v->version) == 0) {
        idle.push_back(v->version);
      }
      continue;
    }
    latest[v->version] = std::move(window);
  }

  std::vector<Alert> transitions;
  std::vector<Alert> active;
  json engine_state;
  {
    absl::MutexLock lock(&mu_);
    AppState& state = *apps_.at(app);
    for (int version : idle) {
      state.versions.erase(version);
      state.latest.erase(version);
    }
    for (auto& [version, window] : latest) {
      state.latest[version] = std::move(window);
    }
    if (state.engine.has_value()) {
      transitions = state.engine->Evaluate(metrics, end);
      active = state.engine->Active();
      engine_state = state.engine->SaveState();
    }
    // A rule no longer active has resolved (or cleared before firing).
    for (auto& [rule, rule_state] : state.alert_states) rule_state = "resolved";
    for (const Alert& a : active) {
      state.alert_states[a.rule] = std::string(AlertStateName(a.state));
    }
  }

  const int64_t stamp = options_.clock->NowMicros();
  auto put = [&](const Alert& alert) -> absl::Status {
    AlertRecord record;
    record.app = app;
    record.rule = alert.rule;
    record.state = std::string(AlertStateName(alert.state));
    record.since = alert.since_micros;
    record.updated_at = stamp;
    record.value = alert.value;
    record.alert_json = alert.ToJson().dump();
    return options_.store->PutAlert(record);
  };
  for (const Alert& alert : active) {
    if (alert.state == AlertState::kPending) RETURN_IF_ERROR(put(alert));
  }
  ASSIGN_OR_RETURN(std::vector<AlertRecord> stored,
                   options_.store->ListAlerts(app));
  for (const AlertRecord& record : stored) {
    // A pending alert whose rule stopped holding before it fired.
    if (record.state != "pending") continue;
    const bool still = std::any_of(
        active.begin(), active.end(),
        [&record](const Alert& a) { return a.rule == record.rule; });
    if (still) continue;
    AlertRecord cleared = record;
    cleared.state = "resolved";
    cleared.since = end;
    cleared.updated_at = stamp;
    json alert = json::parse(record.alert_json, nullptr, false);
    if (alert.is_object()) {
      alert["state"] = "resolved";
      alert["since"] = FormatTimestamp(end);
      cleared.alert_json = alert.dump();
    }
    RETURN_IF_ERROR(options_.store->PutAlert(cleared));
  }
  for (const Alert& alert : transitions) {
    RETURN_IF_ERROR(put(alert));
    LogInfo(
        alert.state == AlertState::kFiring ? "alert.firing" : "alert.resolved",
        {{"app", app},
         {"rule", alert.rule},
         {"metric", alert.metric},
         {"value", PrometheusNumber(alert.value)}});
    if (options_.on_alert) options_.on_alert(alert);
  }
  if (!engine_state.is_null()) {
    RETURN_IF_ERROR(options_.store->PutAlertEngineState(
        AlertEngineStateRecord{app, engine_state.dump(), stamp}));
  }

  if (options_.on_window_closed) options_.on_window_closed(app);

  int64_t retention = 0;
  bool due = false;
  {
    absl::MutexLock lock(&mu_);
    AppState& state = *apps_.at(app);
    due = now - state.last_retention >= kRetentionEveryMicros;
    if (due) state.last_retention = now;
    retention = state.retention_micros;
  }
  if (due) {
    ASSIGN_OR_RETURN(int64_t deleted, options_.store->DeletePredictionsBefore(
                                          app, now - retention));
    if (deleted > 0) {
      LogInfo("monitor.retention",
              {{"app", app}, {"deleted", std::to_string(deleted)}});
    }
  }
  return absl::OkStatus();
}

absl::Status MonitorService::CloseVersionWindow(
    const std::string& app, VersionState& state, int64_t start, int64_t end,
    const std::vector<LabeledRecord>& labeled, const DriftPolicy& policy,
    WindowMetrics* metrics, Latest* latest) {
  const std::string model = app + " v" + std::to_string(state.version);
  std::optional<ProfileSet> window;
  if (state.profiler != nullptr) window = state.profiler->Collect();
  const int64_t rows = state.rows.exchange(0, std::memory_order_relaxed);
  const int64_t compared = state.compared.exchange(0, std::memory_order_relaxed);
  const int64_t agreed = state.agreed.exchange(0, std::memory_order_relaxed);
  const int64_t requests =
      state.requests.exchange(0, std::memory_order_relaxed);
  const int64_t failed = state.failed.exchange(0, std::memory_order_relaxed);
  std::vector<int64_t> latency(kLatencyBuckets + 1);
  for (size_t i = 0; i < latency.size(); ++i) {
    latency[i] = state.latency[i].exchange(0, std::memory_order_relaxed);
  }
  latest->rows = rows;
  if (rows == 0 && labeled.empty() && failed == 0 && compared == 0) {
    return absl::OkStatus();
  }

  json drift_json = json::object();
  if (window.has_value() && rows > 0) {
    ASSIGN_OR_RETURN(latest->drift,
                     CompareProfiles(*state.baseline, *window, policy),
                     "drift of model " + model);
    // CompareProfiles lists the features, then the prediction.
    const size_t num_features = state.baseline->features.size();
    json features = json::object();
    for (size_t i = 0; i < latest->drift.size(); ++i) {
      const FeatureDrift& d = latest->drift[i];
      if (i < num_features) {
        features[d.name] = ToJson(d);
      } else {
        drift_json["prediction"] = ToJson(d);
      }
    }
    drift_json["features"] = std::move(features);
  }

  std::vector<LabeledPrediction> joined;
  joined.reserve(labeled.size());
  for (const LabeledRecord& r : labeled) {
    LabeledPrediction p;
    json prediction = json::parse(r.prediction_json, nullptr, false);
    if (prediction.is_array()) {
      for (const json& x : prediction) {
        p.prediction.push_back(x.is_number() ? x.get<float>() : std::nanf(""));
      }
    }
    p.label = r.label;
    json kpis = json::parse(r.kpis_json, nullptr, false);
    if (kpis.is_object()) {
      for (const auto& [name, value] : kpis.items()) {
        if (value.is_number()) p.kpis[name] = value.get<double>();
      }
    }
    joined.push_back(std::move(p));
  }
  if (!joined.empty()) {
    ASSIGN_OR_RETURN(latest->kpis, ComputeKpis(joined, state.signature),
                     "KPIs of model " + model);
  }
  if (compared > 0) {
    // A shadow's: how often it predicted the class the client was given.
    latest->kpis["agreement"] =
        static_cast<double>(agreed) / static_cast<double>(compared);
    latest->kpis["agreement_rows"] = compared;
  }

  MonitorWindowRecord record;
  record.app = app;
  record.version = state.version;
  record.start_at = start;
  record.end_at = end;
  record.rows = rows;
  record.profile_json = window.has_value() ? window->ToJson().dump() : "{}";
  std::optional<double> p50 = BucketQuantile(
      {kLatencyBoundsMicros.begin(), kLatencyBoundsMicros.end()}, latency, 0.5);
  std::optional<double> p99 =
      BucketQuantile({kLatencyBoundsMicros.begin(), kLatencyBoundsMicros.end()},
                     latency, 0.99);
  if (requests + failed > 0) {
    drift_json["errors"] = {
        {"requests", requests + failed},
        {"failed", failed},
        {"rate", static_cast<double>(failed) /
                     static_cast<double>(requests + failed)}};
  }
  if (p50.has_value()) drift_json["latency_p50_ms"] = *p50 / 1000;
  if (p99.has_value()) drift_json["latency_p99_ms"] = *p99 / 1000;
  record.drift_json = drift_json.dump();
  record.kpis_json = latest->kpis.dump();
  RETURN_IF_ERROR(options_.store->PutMonitorWindow(record));
  latest->stored = true;

  if (metrics != nullptr) {
    (*metrics)["rows"] = static_cast<double>(rows);
    if (p50.has_value()) (*metrics)["latency.p50_ms"] = *p50 / 1000;
    if (p99.has_value()) (*metrics)["latency.p99_ms"] = *p99 / 1000;
    AddDriftMetrics(latest->drift, metrics);
    AddKpiMetrics(latest->kpis, metrics);
  }
  return absl::OkStatus();
}

void MonitorService::Start() {
  loop_ = std::thread([this] { Loop(); });
}

void MonitorService::Loop() {
  absl::MutexLock lock(&loop_mu_);
  while (!stopping_) {
    loop_cv_.WaitWithTimeout(&loop_mu_, kLoopInterval);
    if (stopping_) break;
    loop_mu_.Unlock();
    Tick().IgnoreError();  // logged per app by Tick
    loop_mu_.Lock();
  }
}

void MonitorService::Stop() {
  {
    absl::MutexLock lock(&loop_mu_);
    stopping_ = true;
    loop_cv_.Signal();
  }
  if (loop_.joinable()) loop_.join();
  if (log_ != nullptr) log_->Stop();
  if (shadow_log_ != nullptr) shadow_log_->Stop();
}

std::string MonitorService::RenderMetrics() const {
  Family score("slipway_drift_score", "gauge",
               "Drift decision statistic of the latest window (a p-value for "
               "ks and chi2, a distance otherwise).");
  Family psi("slipway_drift_psi", "gauge",
             "Population stability index of the latest window.");
  Family detected("slipway_drift_detected", "gauge",
                  "1 when the feature drifted in the latest window.");
  Family rows("slipway_monitor_window_rows", "gauge",
              "Rows predicted in the latest window.");
  Family kpi("slipway_kpi", "gauge",
             "KPIs of the latest window, from feedback received in it.");
  Family firing("slipway_alert_firing", "gauge",
                "1 while the alert rule fires, 0 otherwise.");
  Family feedback("slipway_feedback_total", "counter",
                  "Feedback items received, by outcome.");
  Family late("slipway_feedback_late_total", "counter",
              "Accepted feedback on predictions of an earlier window.");
  {
    absl::ReaderMutexLock lock(&mu_);
    for (const auto& [app, state] : apps_) {
      for (const auto& [version, window] : state->latest) {
        const std::string v = std::to_string(version);
        rows.Add({{"app", app}, {"version", v}},
                 static_cast<double>(window.rows));
        for (const FeatureDrift& d : window.drift) {
          const std::vector<std::pair<std::string, std::string>> labels = {
              {"app", app}, {"version", v}, {"feature", d.name}};
          // Too few values to decide: no statistic is worth showing.
          if (d.insufficient) continue;
          if (d.score.has_value()) score.Add(labels, *d.score);
          if (d.psi.has_value()) psi.Add(labels, *d.psi);
          detected.Add(labels, d.drift ? 1 : 0);
        }
        for (const auto& [name, value] : window.kpis.items()) {
          if (value.is_number() && name != "rows") {
            kpi.Add({{"app", app}, {"version", v}, {"kpi", name}},
                    value.get<double>());
          }
        }
        if (window.kpis.contains("kpis")) {
          for (const auto& [name, agg] : window.kpis["kpis"].items()) {
            for (const char* part : {"sum", "mean"}) {
              if (agg.contains(part) && agg[part].is_number()) {
                kpi.Add(
                    {{"app", app}, {"version", v}, {"kpi", name + "." + part}},
                    agg[part].get<double>());
              }
            }
          }
        }
      }
      for (const auto& [rule, alert_state] : state->alert_states) {
        firing.Add({{"app", app}, {"rule", rule}},
                   alert_state == "firing" ? 1 : 0);
      }
    }
  }
  {
    absl::MutexLock lock(&counters_mu_);
    for (const auto& [key, count] : feedback_counts_) {
      feedback.Add({{"app", key.first}, {"outcome", key.second}},
                   static_cast<double>(count));
    }
    for (const auto& [app, count] : feedback_late_) {
      late.Add({{"app", app}}, static_cast<double>(count));
    }
  }
  std::string text;
  for (const Family* f :
       {&score, &psi, &detected, &rows, &kpi, &firing, &feedback, &late}) {
    f->AppendTo(&text);
  }
  text += PrometheusFamilyHeader(
      "slipway_prediction_log_queued",
      "Predictions logged and not yet stored (the log stores within a "
      "second).",
      "gauge");
  AppendPrometheusSample(&text, "slipway_prediction_log_queued", "",
                         std::to_string(log_->queued() + shadow_log_->queued()));
  text += PrometheusFamilyHeader(
      "slipway_prediction_log_dropped_total",
      "Predictions the log dropped because its queue was full.", "counter");
  AppendPrometheusSample(&text, "slipway_prediction_log_dropped_total", "",
                         std::to_string(log_->dropped() +
                                        shadow_log_->dropped()));
  return text;
}

}  // namespace slipway
