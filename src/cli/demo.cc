#include "cli/demo.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "cli/api_client.h"
#include "cli/demo_loop.h"
#include "cli/server_process.h"
#include "cli/commands.h"
#include "cli/monitor_commands.h"
#include "core/filesystem.h"
#include "core/status.h"
#include "nlohmann/json.hpp"
#include "pipeline/app_spec.h"
#include "pipeline/steps.h"

namespace slipway {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr char kDefaultExample[] = "examples/breast-cancer/slipway.yaml";
constexpr int kSampleRows = 8;

absl::StatusOr<std::string> FindExample(const DemoFlags& flags,
                                        const std::string& self) {
  if (!flags.example.empty()) return flags.example;
  std::vector<std::string> candidates = {kDefaultExample};
  std::error_code ec;
  fs::path exe = fs::canonical("/proc/self/exe", ec);
  if (!ec) {
    candidates.push_back(
        (exe.parent_path().parent_path() / kDefaultExample).string());
  }
  for (const std::string& c : candidates) {
    if (fs::exists(c, ec)) return c;
  }
  return absl::NotFoundError(
      std::string("cannot find ") + kDefaultExample +
      "; run the demo from the repository root or pass --example FILE");
}

std::string FormatCell(const Column& column, size_t row) {
  if (column.IsMissing(row)) return "NA";
  char buffer[32];
  switch (column.type()) {
    case DataType::kString:
      return std::string(column.StringAt(row));
    case DataType::kInt64:
      return std::to_string(column.Int64At(row));
    case DataType::kBool:
      return column.BoolAt(row) ? "true" : "false";
    case DataType::kFloat64:
      std::snprintf(buffer, sizeof(buffer), "%.4g", column.Float64At(row));
      return buffer;
  }
  return "";
}

void PrintStep(const std::string& text) {
  std::cout << "\n==> " << text << std::endl;
}

// The features the demo's drifted stream shifts: the size measurements, as
// if a new scanner measured every nucleus a quarter larger.
constexpr const char* kShiftedFeatures[] = {"mean_radius", "mean_perimeter",
                                            "mean_area"};
constexpr double kShiftFactor = 1.25;
constexpr int kTrafficBatchRows = 50;

// Sends every row of `table` to predict (in requests of kTrafficBatchRows
// records, size features scaled by `scale`), then each row's true label as
// feedback. Returns the rows sent.
absl::StatusOr<int> ReplayTraffic(const ApiClient& client, const AppSpec& spec,
                                  const Table& table, double scale) {
  const std::string& app = spec.app;
  const Column* target = table.FindColumn(spec.schema.target);
  if (target == nullptr) {
    return absl::InvalidArgumentError("the demo data has no target column '" +
                                      spec.schema.target + "'");
  }
  json feedback = json::array();
  for (size_t start = 0; start < table.num_rows();
       start += kTrafficBatchRows) {
    const size_t end =
        std::min(table.num_rows(), start + size_t{kTrafficBatchRows});
    json records = json::array();
    for (size_t row = start; row < end; ++row) {
      json record = json::object();
      for (const Column& column : table.columns()) {
        if (column.name() == spec.schema.target ||
            column.name() == spec.schema.id) {
          continue;
        }
        json cell = CellJson(column, row);
        for (const char* shifted : kShiftedFeatures) {
          if (column.name() == shifted && cell.is_number()) {
            cell = cell.get<double>() * scale;
          }
        }
        record[column.name()] = cell;
      }
      records.push_back(std::move(record));
    }
    ASSIGN_OR_RETURN(json answer, client.Post("/v1/apps/" + app + "/predict",
                                              {{"records", records}}));
    const std::string id = answer["request_id"].get<std::string>();
    for (size_t row = start; row < end; ++row) {
      feedback.push_back(
          {{"request_id", id + "/" + std::to_string(row - start)},
           {"label", CellJson(*target, row)}});
    }
  }
  RETURN_IF_ERROR(client
                      .Post("/v1/apps/" + app + "/feedback",
                            {{"feedback", feedback}})
                      .status());
  return static_cast<int>(table.num_rows());
}

// Waits for the first window that ends after `after` (an RFC 3339 time
// from the server's answers) and holds rows; returns it.
absl::StatusOr<json> WaitForWindow(const ApiClient& client,
                                   const std::string& app,
                                   const std::string& after) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    ASSIGN_OR_RETURN(json answer,
                     client.Get("/api/v1/apps/" + app + "/monitor?limit=1"));
    const json& windows = answer["windows"];
    if (!windows.empty() && windows.back()["end"].is_string() &&
        windows.back()["end"].get<std::string>() > after &&
        windows.back().value("rows", 0) > 0) {
      return windows.back();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return absl::DeadlineExceededError(
      "no monitoring window of app '" + app +
      "' closed within 60 s; see the server log for monitor.* errors");
}

// Replays the data set as traffic with its labels as feedback, then a
// drifted copy of it, and shows each window's drift table and the alerts.
absl::Status ShowMonitoring(const ApiClient& client, const AppSpec& spec,
                            const Table& table) {
  const std::string& app = spec.app;
  std::string shifted;
  for (const char* f : kShiftedFeatures) {
    shifted += (shifted.empty() ? "" : ", ") + std::string(f);
  }
  PrintStep("monitoring: " + std::to_string(table.num_rows()) +
            " requests as they came, with their true labels as feedback "
            "(POST /v1/apps/" + app + "/feedback)");
  ASSIGN_OR_RETURN(json start,
                   client.Get("/api/v1/apps/" + app + "/monitor?limit=1"));
  std::string after = start["windows"].empty()
                          ? std::string()
                          : start["windows"].back()["end"].get<std::string>();
  RETURN_IF_ERROR(ReplayTraffic(client, spec, table, 1.0).status());
  ASSIGN_OR_RETURN(json window, WaitForWindow(client, app, after));
  std::cout << FormatMonitorWindow(app, window);

  PrintStep("monitoring: a drifted stream (" + shifted + " x" +
            std::to_string(kShiftFactor).substr(0, 4) + ", a new scanner)");
  RETURN_IF_ERROR(ReplayTraffic(client, spec, table, kShiftFactor).status());
  ASSIGN_OR_RETURN(json drifted,
                   WaitForWindow(client, app, window["end"].get<std::string>()));
  std::cout << FormatMonitorWindow(app, drifted);

  PrintStep("slipway alerts list --app " + app);
  ASSIGN_OR_RETURN(json alerts, client.Get("/api/v1/alerts?app=" + app));
  std::cout << FormatAlerts(alerts);
  return absl::OkStatus();
}

absl::Status RunDemo(const DemoFlags& flags, const std::string& self,
                     ServerProcess* server) {
  auto started = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(std::string example, FindExample(flags, self));
  Filesystem* files = LocalFilesystem();
  ASSIGN_OR_RETURN(std::string yaml, files->ReadFile(example));
  ASSIGN_OR_RETURN(AppSpec spec, ParseAppSpec(yaml, BaseName(example)));
  std::error_code ec;
  std::string source_dir =
      fs::absolute(example, ec).parent_path().lexically_normal().string();

  // The rows the demo will send come from the app's first data source,
  // which also tells the user where the data lives.
  if (spec.data.empty()) {
    return absl::InvalidArgumentError(example + " declares no data source");
  }
  const DataSourceSpec& source = spec.data.front();
  std::string data_path = ResolvePath(source_dir, source.path);
  absl::StatusOr<CsvData> data = ReadDataSource(source, source_dir, files);
  if (!data.ok()) {
    return Annotate(data.status(),
                    "reading the demo data set (install it with "
                    "scripts/install-deps)");
  }

  std::string data_dir = flags.data_dir;
  if (data_dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern =
        std::string(tmp != nullptr ? tmp : "/tmp") + "/slipway-demo-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      return absl::InternalError("cannot create " + pattern);
    }
    data_dir = pattern;
  }
  RETURN_IF_ERROR(files->CreateDirs(data_dir));
  std::cout << "Slipway demo: app '" << spec.app << "'";
  if (!spec.description.empty()) std::cout << " — " << spec.description;
  std::cout << "\n  data set: " << data_path << " (" << data->rows << " rows, "
            << data->table.num_columns() << " columns)"
            << "\n  data directory: " << data_dir << "\n";

  PrintStep("starting slipway server");
  ASSIGN_OR_RETURN(std::string binary, [&]() -> absl::StatusOr<std::string> {
    fs::path exe = fs::canonical("/proc/self/exe", ec);
    if (ec) return absl::InternalError("cannot locate the slipway binary");
    return exe.string();
  }());
  RETURN_IF_ERROR(server->Start(binary, data_dir));
  std::cout << "  listening on " << server->url() << " (pid " << server->pid()
            << ", log " << JoinPath(data_dir, "server.log") << ")\n";
  // The server wrote its admin token before it started listening.
  const std::string admin_token_file = JoinPath(data_dir, "admin.token");
  ASSIGN_OR_RETURN(std::string admin_token,
                   LocalFilesystem()->ReadFile(admin_token_file),
                   "reading the demo server's admin token");
  admin_token = admin_token.substr(0, admin_token.find('\n'));
  std::cout << "  admin token in " << admin_token_file << "\n";
  ApiClient client(server->url(), admin_token);

  PrintStep("slipway apply " + example);
  ASSIGN_OR_RETURN(json applied,
                   client.Post("/api/v1/apps", {{"spec", yaml},
                                                {"file", BaseName(example)},
                                                {"source_dir", source_dir}}));
  std::cout << "  app " << spec.app << " revision "
            << applied["revision"].get<int>() << "\n";

  PrintStep("slipway run " + spec.app + " train --wait");
  ASSIGN_OR_RETURN(json run, client.Post("/api/v1/apps/" + spec.app + "/runs",
                                         {{"pipeline", "train"}}));
  ASSIGN_OR_RETURN(json final_run,
                   FollowRun(client, run["id"].get<std::string>(), &std::cout));
  if (final_run["state"] != "succeeded") {
    return absl::InternalError("run " + run["id"].get<std::string>() + " " +
                               final_run["state"].get<std::string>() + ": " +
                               final_run["reason"].get<std::string>());
  }

  ASSIGN_OR_RETURN(json models,
                   client.Get("/api/v1/apps/" + spec.app + "/models"));
  const json& latest = models["models"].back();
  int version = latest["version"];
  PrintStep("slipway models promote " + spec.app + " " +
            std::to_string(version));
  ASSIGN_OR_RETURN(json promoted,
                   client.Put("/api/v1/apps/" + spec.app + "/aliases/champion",
                              {{"version", version}, {"actor", "cli"}}));
  std::cout << "  champion -> v" << version << ", serving\n";
  std::cout << "  metrics on the held-out test rows:";
  for (const auto& [name, value] : latest["metrics"].items()) {
    if (name == "rows") continue;
    char buffer[64];
    std::snprintf(buffer, sizeof(buffer), " %s=%.4f", name.c_str(),
                  value.get<double>());
    std::cout << buffer;
  }
  std::cout << " (" << latest["metrics"].value("rows", 0) << " rows)\n";

  // Sample rows spread over the file, sent as JSON records.
  const Table& table = data->table;
  const std::string& target = spec.schema.target;
  const Column* target_column = table.FindColumn(target);
  json records = json::array();
  std::vector<size_t> rows;
  for (int i = 0; i < kSampleRows; ++i) {
    size_t row = table.num_rows() * i / kSampleRows;
    rows.push_back(row);
    json record = json::object();
    for (const Column& column : table.columns()) {
      if (column.name() == target || column.name() == spec.schema.id) continue;
      record[column.name()] = CellJson(column, row);
    }
    records.push_back(std::move(record));
  }
  std::string predict_path = "/v1/apps/" + spec.app + "/predict";
  PrintStep("POST " + server->url() + predict_path + " (" +
            std::to_string(kSampleRows) + " records)");
  ASSIGN_OR_RETURN(json answer,
                   client.Post(predict_path, {{"records", records}}));
  const json& predictions = answer["predictions"];
  std::printf("  %-6s", "row");
  int shown = 0;
  std::vector<const Column*> shown_columns;
  for (const Column& column : table.columns()) {
    if (column.name() == target || shown == 3) continue;
    shown_columns.push_back(&column);
    ++shown;
  }
  for (const Column* c : shown_columns) std::printf("%-16s", c->name().c_str());
  std::printf("%-10s%-12s%s\n", "true", "predicted", "probabilities");
  for (size_t i = 0; i < rows.size(); ++i) {
    std::printf("  %-6zu", rows[i] + 1);
    for (const Column* c : shown_columns) {
      std::printf("%-16s", FormatCell(*c, rows[i]).c_str());
    }
    std::string truth =
        target_column != nullptr ? FormatCell(*target_column, rows[i]) : "-";
    const json& p = predictions[i];
    std::string predicted, probabilities;
    if (p.is_object()) {
      predicted = p["label"].is_string() ? p["label"].get<std::string>()
                                         : p["label"].dump();
      for (const auto& [label, prob] : p["probabilities"].items()) {
        char buffer[48];
        std::snprintf(buffer, sizeof(buffer), "%s%s: %.3f",
                      probabilities.empty() ? "" : ", ", label.c_str(),
                      prob.get<double>());
        probabilities += buffer;
      }
    } else {
      char buffer[32];
      std::snprintf(buffer, sizeof(buffer), "%.4g", p.get<double>());
      predicted = buffer;
    }
    std::printf("%-10s%-12s%s\n", truth.c_str(), predicted.c_str(),
                probabilities.c_str());
  }
  std::cout << "  model_version " << answer["model_version"] << ", request_id "
            << answer["request_id"].get<std::string>() << "\n";

  RETURN_IF_ERROR(ShowMonitoring(client, spec, table));

  RETURN_IF_ERROR(
      RunImprovementLoopDemo(binary, JoinPath(data_dir, "improvement-loop")));

  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started)
          .count();
  PrintStep("done in " + std::to_string(static_cast<int>(seconds + 0.5)) +
            " s");
  json one = {{"records", json::array({records[0]})}};
  std::cout << "  predict URL: " << server->url() << predict_path << "\n"
            << "  OIP v2:      " << server->url() << "/v2/models/" << spec.app
            << "\n"
            << "  try:\n    curl -s " << server->url() << predict_path
            << " -H 'Content-Type: application/json' -d '" << one.dump()
            << "'\n";
  return absl::OkStatus();
}

}  // namespace

int DemoCommand(const DemoFlags& flags, const std::string& self) {
  ServerProcess server;
  absl::Status s = RunDemo(flags, self, &server);
  if (!s.ok()) {
    std::cerr << "error: " << s.message() << "\n";
    return 1;
  }
  if (flags.serve) {
    std::cout << "\nserver running at " << server.url() << " (pid "
              << server.pid() << "); press Ctrl-C to stop it\n";
    std::cout.flush();
    // Ctrl-C reaches the server (same process group); it drains and exits.
    signal(SIGINT, SIG_IGN);
    server.WaitForExit();
    return 0;
  }
  server.Stop();
  std::cout << "server stopped (run `slipway demo --serve` to keep it)\n";
  return 0;
}

}  // namespace slipway
