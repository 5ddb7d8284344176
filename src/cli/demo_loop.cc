#include "cli/demo_loop.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <map>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "cli/api_client.h"
#include "cli/commands.h"
#include "cli/server_process.h"
#include "cli/table.h"
#include "core/filesystem.h"
#include "core/status.h"
#include "data/drift_stream.h"

namespace slipway {
namespace {

using nlohmann::json;

constexpr char kApp[] = "churn-loop";
constexpr int64_t kHourSeconds = 3600;
constexpr uint64_t kSeed = 21;
// The global row of the stream where the customers change.
constexpr int64_t kDriftAt = 3000;
constexpr int kRequestRows = 4;

constexpr char kSpec[] = R"(# The improvement loop of `slipway demo`: written here by the demo.
app: churn-loop
description: "Which customers will leave? A model that keeps itself current."
data:
  customers: {connector: csv, path: customers.csv}
schema: {target: churned, id: customer_id, task: binary_classification}
pipelines:
  train:
    trigger: {on: [kpi_decay]}
    steps:
      - ingest:   {source: customers, last_rows: 2000}
      - split:    {test_fraction: 0.3, seed: 7, stratify: true}
      - train:    {objective: "binary:logistic", rounds: 40, max_depth: 4, eta: 0.2, seed: 3}
      - evaluate: {metrics: [auc, accuracy]}
      - register: {alias: challenger}
  # The same training with a bug: the training rows' labels shuffled.
  train-shuffled:
    kind: train
    steps:
      - ingest:   {source: customers, last_rows: 2000}
      - split:    {test_fraction: 0.3, seed: 7, stratify: true}
      - command:  {run: [/usr/bin/python3, shuffle_labels.py]}
        name: shuffle
        inputs: [split.train]
        outputs: [train]
      - train:    {objective: "binary:logistic", rounds: 40, max_depth: 4, eta: 0.2, seed: 3}
        inputs: [shuffle.train]
      - evaluate: {metrics: [auc, accuracy]}
        inputs: [train, split.test]
      - register: {alias: challenger}
        inputs: [train, split.test]
endpoint:
  model: champion
  canary: {model: challenger, percent: 30, min_rows: 150}
monitor:
  window: 1h
  rules:
    - {name: accuracy-low, metric: kpi.accuracy, below: 0.68, for: 1, fire: kpi_decay}
policy:
  promote: {metric: auc, min_gain: 0.01, confidence: 0.95}
  rollback: {kpi_drop: 0.05, windows: 2, min_rows: 150}
)";

constexpr char kShuffle[] = R"(import csv, os, random
path = os.path.join(os.environ["SLIPWAY_INPUT_DIR"], "split", "train.csv")
with open(path, newline="") as f:
    rows = list(csv.DictReader(f))
labels = [r["churned"] for r in rows]
random.Random(7).shuffle(labels)
with open(os.path.join(os.environ["SLIPWAY_OUTPUT_DIR"], "train.csv"), "w",
          newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0]))
    w.writeheader()
    for r, label in zip(rows, labels):
        r["churned"] = label
        w.writerow(r)
)";

void Step(const std::string& text) {
  std::cout << "\n==> " << text << std::endl;
}

DriftStreamOptions Rows(int64_t start, int64_t rows, bool drifted) {
  DriftStreamOptions options;
  options.seed = kSeed;
  options.start = start;
  options.rows = rows;
  if (drifted) {
    options.covariate_shift_at = kDriftAt;
    options.concept_drift_at = kDriftAt;
  }
  return options;
}

// Rows answered by each model version.
using Answers = std::map<int, int>;

class LoopDemo {
 public:
  LoopDemo(const ApiClient& client, std::string dir)
      : client_(client), dir_(std::move(dir)) {}

  // The training source: the stream's first `rows` rows.
  absl::Status WriteCustomers(int64_t rows, bool drifted) {
    std::string text;
    RETURN_IF_ERROR(WriteDriftCsv(Rows(0, rows, drifted),
                                  [&text](std::string_view piece) {
                                    text.append(piece);
                                    return absl::OkStatus();
                                  }));
    return LocalFilesystem()->WriteFileAtomic(JoinPath(dir_, "customers.csv"),
                                              text);
  }

  // Predicts `rows` live rows in requests of kRequestRows and sends their
  // labels back; returns the rows each version answered.
  absl::StatusOr<Answers> Traffic(int64_t rows, bool drifted) {
    ASSIGN_OR_RETURN(Table table,
                     GenerateDriftTable(Rows(next_row_, rows, drifted)));
    next_row_ += rows;
    const Column* label = table.FindColumn("churned");
    Answers answered;
    json feedback = json::array();
    for (size_t start = 0; start < table.num_rows(); start += kRequestRows) {
      const size_t end = std::min(table.num_rows(), start + kRequestRows);
      json records = json::array();
      for (size_t row = start; row < end; ++row) {
        json record = json::object();
        for (const Column& column : table.columns()) {
          if (column.name() == "churned" || column.name() == "customer_id") {
            continue;
          }
          record[column.name()] = CellJson(column, row);
        }
        records.push_back(std::move(record));
      }
      ASSIGN_OR_RETURN(json answer,
                       client_.Post(std::string("/v1/apps/") + kApp + "/predict",
                                    {{"records", records}}));
      answered[answer["model_version"].get<int>()] +=
          static_cast<int>(end - start);
      const std::string id = answer["request_id"].get<std::string>();
      for (size_t row = start; row < end; ++row) {
        feedback.push_back(
            {{"request_id", id + "/" + std::to_string(row - start)},
             {"label", CellJson(*label, row)}});
      }
    }
    RETURN_IF_ERROR(client_
                        .Post(std::string("/v1/apps/") + kApp + "/feedback",
                              {{"feedback", feedback}})
                        .status());
    return answered;
  }

  // Moves the clock on an hour and returns the window of `version` that
  // closed.
  absl::StatusOr<json> NextHour(int version) {
    ASSIGN_OR_RETURN(json now, client_.Post("/api/v1/admin/clock",
                                            {{"advance_seconds", kHourSeconds}}));
    const int64_t micros = now["now_micros"].get<int64_t>();
    const int64_t boundary = micros - micros % (kHourSeconds * 1'000'000);
    ++hour_;
    return Poll("the window ending at the hour", [&]() -> absl::StatusOr<json> {
      ASSIGN_OR_RETURN(json answer, client_.Get(std::string("/api/v1/apps/") +
                                                kApp + "/monitor?limit=10"));
      for (const json& w : answer["windows"]) {
        if (w["model_version"] == version && w["end"].is_string() &&
            EndMicros(w["end"].get<std::string>()) >= boundary) {
          return w;
        }
      }
      return json();
    });
  }

  // The first timeline event `action` whose object ends with `suffix`
  // (waited for).
  absl::StatusOr<json> Event(const std::string& action,
                             const std::string& suffix) {
    return Poll(action + " " + suffix, [&]() -> absl::StatusOr<json> {
      ASSIGN_OR_RETURN(json answer,
                       client_.Get(std::string("/api/v1/apps/") + kApp +
                                   "/history?limit=100000"));
      for (const json& e : answer["events"]) {
        const std::string object = e["object"].get<std::string>();
        if (e["action"] == action && object.size() >= suffix.size() &&
            object.compare(object.size() - suffix.size(), suffix.size(),
                           suffix) == 0) {
          return e;
        }
      }
      return json();
    });
  }

  int hour() const { return hour_; }

 private:
  // Calls `f` every 50 ms until it returns something other than null, for
  // at most 5 minutes.
  template <typename F>
  absl::StatusOr<json> Poll(const std::string& what, F f) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::minutes(5);
    while (std::chrono::steady_clock::now() < deadline) {
      ASSIGN_OR_RETURN(json found, f());
      if (!found.is_null()) return found;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return absl::DeadlineExceededError(
        "the demo waited 5 minutes for " + what + " of app '" + kApp +
        "'; see the server log in " + dir_);
  }

  static int64_t EndMicros(const std::string& rfc3339) {
    std::tm tm{};
    int millis = 0;
    std::sscanf(rfc3339.c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year,
                &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec,
                &millis);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return static_cast<int64_t>(timegm(&tm)) * 1'000'000 + millis * 1000;
  }

  const ApiClient& client_;
  const std::string dir_;
  int64_t next_row_ = 10'000;  // live rows come after the training rows
  int hour_ = 0;
};

std::string Accuracy(const json& window) {
  const json& kpis = window["kpis"];
  if (!kpis.is_object() || !kpis.contains("accuracy")) return "n/a";
  return absl::StrFormat("%.2f on %d labelled predictions",
                         kpis["accuracy"].get<double>(),
                         kpis.value("rows", 0));
}

std::string Answered(const Answers& answered) {
  std::string s;
  for (const auto& [version, rows] : answered) {
    s += (s.empty() ? "" : ", ") + std::string("v") + std::to_string(version) +
         " answered " + std::to_string(rows);
  }
  return s;
}

absl::Status Run(const ApiClient& client, const std::string& dir) {
  LoopDemo demo(client, dir);
  RETURN_IF_ERROR(LocalFilesystem()->WriteFileAtomic(
      JoinPath(dir, "shuffle_labels.py"), kShuffle));
  RETURN_IF_ERROR(LocalFilesystem()->WriteFileAtomic(
      JoinPath(dir, "slipway.yaml"), kSpec));
  RETURN_IF_ERROR(demo.WriteCustomers(2000, /*drifted=*/false));
  std::cout << "  spec: " << JoinPath(dir, "slipway.yaml") << "\n";
  RETURN_IF_ERROR(client
                      .Post("/api/v1/apps", {{"spec", std::string(kSpec)},
                                             {"file", "slipway.yaml"},
                                             {"source_dir", dir}})
                      .status());
  const std::string app = kApp;
  ASSIGN_OR_RETURN(json run, client.Post("/api/v1/apps/" + app + "/runs",
                                         {{"pipeline", "train"}}));
  ASSIGN_OR_RETURN(json finished,
                   FollowRun(client, run["id"].get<std::string>(), nullptr));
  if (finished["state"] != "succeeded") {
    return absl::InternalError("the first training run " +
                               finished["state"].get<std::string>());
  }
  RETURN_IF_ERROR(
      client.Put("/api/v1/apps/" + app + "/aliases/champion", {{"version", 1}})
          .status());
  std::cout << "  v1 trained on 2,000 rows of the customer stream and made "
               "champion by hand\n";

  Step("hour 1: 600 requests, their true labels sent back as feedback");
  ASSIGN_OR_RETURN(Answers answered, demo.Traffic(600, false));
  ASSIGN_OR_RETURN(json window, demo.NextHour(1));
  std::cout << "  accuracy " << Accuracy(window) << "\n";

  Step("hour 2: the customers change (new behaviour and a shifted income "
       "and region mix); the warehouse receives their labelled rows");
  RETURN_IF_ERROR(demo.WriteCustomers(5000, /*drifted=*/true));
  ASSIGN_OR_RETURN(answered, demo.Traffic(600, true));
  ASSIGN_OR_RETURN(window, demo.NextHour(1));
  std::cout << "  accuracy " << Accuracy(window) << "\n";
  ASSIGN_OR_RETURN(json event, demo.Event("alert.fire", "accuracy-low"));
  std::cout << "  " << event["summary"].get<std::string>() << "\n";
  ASSIGN_OR_RETURN(event, demo.Event("run.start", ""));
  ASSIGN_OR_RETURN(event, demo.Event("model.evaluate", "v2"));
  std::cout << "  retrained on the last 2,000 rows: "
            << event["summary"].get<std::string>() << "\n";
  ASSIGN_OR_RETURN(event, demo.Event("canary.start", "v2"));
  std::cout << "  " << event["summary"].get<std::string>() << "\n";

  Step("hour 3: 1,200 requests, split between champion and canary");
  ASSIGN_OR_RETURN(answered, demo.Traffic(1200, true));
  std::cout << "  " << Answered(answered) << "\n";
  ASSIGN_OR_RETURN(window, demo.NextHour(1));
  ASSIGN_OR_RETURN(event, demo.Event("canary.decide", "v2"));
  std::cout << "  " << event["summary"].get<std::string>() << "\n";
  ASSIGN_OR_RETURN(event, demo.Event("canary.end", "v2"));
  std::cout << "  " << event["summary"].get<std::string>() << "\n";

  Step("hour 4: 600 requests on the new champion");
  ASSIGN_OR_RETURN(answered, demo.Traffic(600, true));
  ASSIGN_OR_RETURN(window, demo.NextHour(2));
  std::cout << "  accuracy " << Accuracy(window) << "\n";
  ASSIGN_OR_RETURN(event, demo.Event("alert.resolve", "accuracy-low"));
  std::cout << "  " << event["summary"].get<std::string>() << "\n";

  Step("hour 5: the promotion's watch (policy.rollback, 2 windows) ends");
  ASSIGN_OR_RETURN(answered, demo.Traffic(400, true));
  ASSIGN_OR_RETURN(window, demo.NextHour(2));
  ASSIGN_OR_RETURN(event, demo.Event("rollback.check", "v2"));
  std::cout << "  " << event["summary"].get<std::string>() << "\n";

  Step("a challenger trained with a bug (its training labels shuffled)");
  ASSIGN_OR_RETURN(run, client.Post("/api/v1/apps/" + app + "/runs",
                                    {{"pipeline", "train-shuffled"}}));
  ASSIGN_OR_RETURN(finished,
                   FollowRun(client, run["id"].get<std::string>(), nullptr));
  ASSIGN_OR_RETURN(event, demo.Event("model.evaluate", "v3"));
  std::cout << "  " << event["summary"].get<std::string>() << "\n";

  Step("hour 6: someone moves champion back to v1 by hand");
  ASSIGN_OR_RETURN(answered, demo.Traffic(400, true));
  RETURN_IF_ERROR(client
                      .Post("/api/v1/apps/" + app + "/aliases",
                            {{"moves", {{{"alias", "champion"}, {"version", 1}},
                                        {{"alias", "challenger"},
                                         {"version", 1}}}}})
                      .status());
  ASSIGN_OR_RETURN(answered, demo.Traffic(600, true));
  ASSIGN_OR_RETURN(window, demo.NextHour(1));
  std::cout << "  accuracy " << Accuracy(window) << "\n";
  ASSIGN_OR_RETURN(event, demo.Event("model.rollback", "v1"));
  std::cout << "  " << event["summary"].get<std::string>() << "\n";
  ASSIGN_OR_RETURN(event, demo.Event("alert.fire", "rollback"));
  std::cout << "  " << event["summary"].get<std::string>() << "\n";

  Step("slipway history " + app);
  ASSIGN_OR_RETURN(json history,
                   client.Get("/api/v1/apps/" + app + "/history?limit=100000"));
  std::vector<std::vector<std::string>> rows;
  for (const json& e : history["events"]) {
    const std::string action = e["action"].get<std::string>();
    if (action == "run.finish" || action == "app.apply") continue;
    rows.push_back({e["at"].get<std::string>().substr(11, 5), action,
                    e["summary"].get<std::string>()});
  }
  PrintTable({"TIME", "EVENT", "WHAT HAPPENED"}, rows);
  return absl::OkStatus();
}

}  // namespace

nlohmann::json CellJson(const Column& column, size_t row) {
  if (column.IsMissing(row)) return nullptr;
  switch (column.type()) {
    case DataType::kString:
      return std::string(column.StringAt(row));
    case DataType::kInt64:
      return column.Int64At(row);
    case DataType::kBool:
      return column.BoolAt(row);
    case DataType::kFloat64:
      return column.Float64At(row);
  }
  return nullptr;
}

absl::Status RunImprovementLoopDemo(const std::string& binary,
                                    const std::string& work_dir) {
  Step("the improvement loop: app '" + std::string(kApp) +
       "' on a simulated clock (monitoring windows of an hour; the demo "
       "moves the server's clock instead of waiting, slipway server "
       "--test-clock)");
  const std::string data_dir = JoinPath(work_dir, "data");
  RETURN_IF_ERROR(LocalFilesystem()->CreateDirs(data_dir));
  // The clock starts at the next whole hour, so windows line up with it.
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  const int64_t start = (now / kHourSeconds + 1) * kHourSeconds;
  char start_text[32];
  std::tm tm{};
  const std::time_t start_time = static_cast<std::time_t>(start);
  gmtime_r(&start_time, &tm);
  std::strftime(start_text, sizeof(start_text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  ServerProcess server;
  RETURN_IF_ERROR(server.Start(binary, data_dir, {"--test-clock", start_text}));
  std::cout << "  server " << server.url() << " (pid " << server.pid()
            << ", log " << JoinPath(data_dir, "server.log") << ")\n";
  ASSIGN_OR_RETURN(std::string token,
                   LocalFilesystem()->ReadFile(JoinPath(data_dir, "admin.token")),
                   "reading the loop server's admin token");
  token = token.substr(0, token.find('\n'));
  ApiClient client(server.url(), token);
  absl::Status s = Run(client, work_dir);
  server.Stop();
  return s;
}

}  // namespace slipway
