#include "cli/commands.h"

#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <thread>

#include "absl/strings/escaping.h"
#include "cli/table.h"
#include "core/filesystem.h"
#include "core/status.h"
#include "data/secrets.h"
#include "models/import.h"
#include "models/model.h"
#include "models/model_bundle.h"

namespace slipway {
namespace {

using nlohmann::json;

std::string Text(const json& value) {
  if (value.is_null()) return "-";
  if (value.is_string()) return value.get<std::string>();
  return value.dump();
}

std::string FormatMetrics(const json& metrics) {
  std::string out;
  if (!metrics.is_object()) return out;
  for (const auto& [name, value] : metrics.items()) {
    // "rows" counts the evaluation rows; the ROWS column shows training data.
    if (!value.is_number() || name == "rows") continue;
    if (!out.empty()) out += " ";
    char buffer[64];
    if (value.is_number_integer()) {
      std::snprintf(buffer, sizeof(buffer), "%s=%lld", name.c_str(),
                    static_cast<long long>(value.get<int64_t>()));
    } else {
      std::snprintf(buffer, sizeof(buffer), "%s=%.4f", name.c_str(),
                    value.get<double>());
    }
    out += buffer;
  }
  return out;
}

bool IsFinal(const std::string& state) {
  return state == "succeeded" || state == "failed" || state == "cancelled";
}

// A change filed for approval (HTTP 202) instead of made: says so and how
// to decide it.
bool PrintIfPending(const json& answer) {
  if (!answer.value("pending", false)) return false;
  const json& approval = answer["approval"];
  std::cout << "approval " << Text(approval["id"]) << " requested ("
            << Text(approval["kind"]) << " of app " << Text(approval["app"])
            << ", expires "
            << (approval["expires_at"].is_null() ? "never"
                                                 : Text(approval["expires_at"]))
            << ")\n"
            << Text(answer["next"]) << "\n";
  return true;
}

}  // namespace

int Fail(const absl::Status& status) {
  std::cerr << "error: " << status.message() << "\n";
  return 1;
}

int ApplyCommand(const CliContext& ctx, const std::string& file) {
  absl::StatusOr<std::string> yaml = LocalFilesystem()->ReadFile(file);
  if (!yaml.ok()) return Fail(yaml.status());
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(file, ec);
  std::string source_dir =
      ec ? DirName(file) : absolute.parent_path().lexically_normal().string();
  json body = {{"spec", *yaml},
               {"file", BaseName(file)},
               {"source_dir", source_dir},
               {"actor", "cli"}};
  absl::StatusOr<json> answer = ctx.client->Post("/api/v1/apps", body);
  if (!answer.ok()) return Fail(answer.status());
  if (ctx.json) {
    std::cout << answer->dump(2) << "\n";
    return 0;
  }
  if (PrintIfPending(*answer)) return 0;
  std::string app = (*answer)["app"];
  int revision = (*answer)["revision"];
  if (!(*answer)["changed"].get<bool>()) {
    std::cout << "app " << app << " unchanged (revision " << revision << ")\n";
    return 0;
  }
  std::cout << "app " << app << " revision " << revision << "\n";
  std::cout << (*answer)["diff"].get<std::string>();
  return 0;
}

int AppsListCommand(const CliContext& ctx) {
  absl::StatusOr<json> answer = ctx.client->Get("/api/v1/apps");
  if (!answer.ok()) return Fail(answer.status());
  if (ctx.json) {
    std::cout << answer->dump(2) << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const json& app : (*answer)["apps"]) {
    rows.push_back(
        {Text(app["app"]), Text(app["revision"]), Text(app["created_at"])});
  }
  PrintTable({"APP", "REVISION", "CREATED"}, rows);
  return 0;
}

int AppsShowCommand(const CliContext& ctx, const std::string& app) {
  absl::StatusOr<json> answer = ctx.client->Get("/api/v1/apps/" + app);
  if (!answer.ok()) return Fail(answer.status());
  if (ctx.json) {
    std::cout << answer->dump(2) << "\n";
    return 0;
  }
  std::cout << "app " << Text((*answer)["app"]) << ", current revision "
            << Text((*answer)["revision"]) << "\n";
  for (const json& alias : (*answer)["aliases"]) {
    std::cout << "  " << Text(alias["alias"]) << " -> v"
              << Text(alias["version"]) << "\n";
  }
  std::vector<std::vector<std::string>> rows;
  for (const json& r : (*answer)["revisions"]) {
    rows.push_back({Text(r["revision"]), Text(r["created_at"]),
                    Text(r["spec_sha256"]).substr(0, 12)});
  }
  PrintTable({"REVISION", "CREATED", "SHA256"}, rows);
  std::cout << "\n" << Text((*answer)["spec"]);
  return 0;
}

int AppsRollbackCommand(const CliContext& ctx, const std::string& app,
                        int revision) {
  absl::StatusOr<json> answer =
      ctx.client->Post("/api/v1/apps/" + app + "/rollback",
                       {{"revision", revision}, {"actor", "cli"}});
  if (!answer.ok()) return Fail(answer.status());
  if (ctx.json) {
    std::cout << answer->dump(2) << "\n";
    return 0;
  }
  if (PrintIfPending(*answer)) return 0;
  std::cout << "app " << app << " rolled back to the spec of revision "
            << revision << ", now revision " << Text((*answer)["revision"])
            << "\n"
            << Text((*answer)["diff"]);
  return 0;
}

// "rows 120000", "round 40/200": what a running step reports.
std::string ProgressText(const json& progress) {
  if (!progress.is_object() || progress.empty()) return "";
  std::string text;
  if (progress.contains("round")) {
    text = "round " + Text(progress["round"]);
    if (progress.contains("rounds")) text += "/" + Text(progress["rounds"]);
  }
  if (progress.contains("rows")) {
    if (!text.empty()) text += ", ";
    text += Text(progress["rows"]) + " rows";
  }
  return text;
}

absl::StatusOr<json> FollowRun(const ApiClient& client,
                               const std::string& run_id,
                               std::ostream* progress) {
  std::map<std::string, std::string> step_states;
  std::map<std::string, std::string> step_progress;
  while (true) {
    ASSIGN_OR_RETURN(json run, client.Get("/api/v1/runs/" + run_id));
    for (const json& step : run["steps"]) {
      std::string name = step["name"];
      std::string state = step["state"];
      std::string done =
          state == "running" ? ProgressText(step["progress"]) : std::string();
      if (step_states[name] == state && step_progress[name] == done) continue;
      const bool state_changed = step_states[name] != state;
      step_states[name] = state;
      step_progress[name] = done;
      if (progress == nullptr || state == "pending") continue;
      *progress << "  " << name << ": " << state;
      if (!done.empty()) *progress << " [" << done << "]";
      std::string message = Text(step["message"]);
      if (state_changed && !message.empty() && message != "-") {
        *progress << " — " << message;
      }
      std::string cached = Text(step["cached_from_run"]);
      if (state == "succeeded" && !cached.empty() && cached != "-") {
        *progress << " (reused from run " << cached << ")";
      }
      *progress << "\n";
      progress->flush();
    }
    if (IsFinal(run["state"])) return run;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

int RunCommand(const CliContext& ctx, const std::string& app,
               const std::string& pipeline, bool wait) {
  absl::StatusOr<json> run = ctx.client->Post("/api/v1/apps/" + app + "/runs",
                                              {{"pipeline", pipeline}});
  if (!run.ok()) return Fail(run.status());
  std::string run_id = (*run)["id"];
  if (!wait) {
    if (ctx.json) {
      std::cout << run->dump(2) << "\n";
    } else {
      std::cout << "run " << run_id << " " << Text((*run)["state"]) << "\n";
    }
    return 0;
  }
  if (!ctx.json)
    std::cout << "run " << run_id << " (" << app << "/" << pipeline << ")\n";
  absl::StatusOr<json> final_run =
      FollowRun(*ctx.client, run_id, ctx.json ? nullptr : &std::cout);
  if (!final_run.ok()) return Fail(final_run.status());
  if (ctx.json) std::cout << final_run->dump(2) << "\n";
  std::string state = (*final_run)["state"];
  if (state == "succeeded") {
    if (!ctx.json) std::cout << "run " << run_id << " succeeded\n";
    return 0;
  }
  std::string failed_step;
  for (const json& step : (*final_run)["steps"]) {
    if (step["state"] == "failed") failed_step = step["name"];
  }
  std::cerr << "error: run " << run_id << " " << state;
  if (!failed_step.empty()) std::cerr << " at step '" << failed_step << "'";
  std::cerr << ": " << Text((*final_run)["reason"]) << "\n";
  return 1;
}

int RunsListCommand(const CliContext& ctx, const std::string& app) {
  absl::StatusOr<json> answer =
      ctx.client->Get("/api/v1/apps/" + app + "/runs");
  if (!answer.ok()) return Fail(answer.status());
  if (ctx.json) {
    std::cout << answer->dump(2) << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const json& r : (*answer)["runs"]) {
    rows.push_back({Text(r["id"]), Text(r["pipeline"]), Text(r["state"]),
                    Text(r["created_at"]), Text(r["reason"])});
  }
  PrintTable({"RUN", "PIPELINE", "STATE", "CREATED", "REASON"}, rows);
  return 0;
}

// "1.25s" from seconds; "-" for none.
std::string Seconds(const json& value) {
  if (!value.is_number() || value.get<double>() <= 0) return "-";
  char text[32];
  std::snprintf(text, sizeof(text), "%.2fs", value.get<double>());
  return text;
}

int RunsShowCommand(const CliContext& ctx, const std::string& run_id) {
  absl::StatusOr<json> run = ctx.client->Get("/api/v1/runs/" + run_id);
  if (!run.ok()) return Fail(run.status());
  if (ctx.json) {
    std::cout << run->dump(2) << "\n";
    return 0;
  }
  std::cout << "run " << Text((*run)["id"]) << " of " << Text((*run)["app"])
            << "/" << Text((*run)["pipeline"]) << " (revision "
            << Text((*run)["revision"]) << "): " << Text((*run)["state"]);
  std::string reason = Text((*run)["reason"]);
  if (!reason.empty() && reason != "-") std::cout << " — " << reason;
  std::cout << "\n";
  std::vector<std::vector<std::string>> rows;
  for (const json& s : (*run)["steps"]) {
    std::string cached = Text(s["cached_from_run"]);
    double cpu =
        s.value("cpu_user_seconds", 0.0) + s.value("cpu_system_seconds", 0.0);
    int64_t rss_kb = s.value("peak_rss_kb", int64_t{0});
    rows.push_back({Text(s["name"]), Text(s["kind"]), Text(s["state"]),
                    Text(s["attempts"]), Text(s["started_at"]),
                    Text(s["finished_at"]), Seconds(cpu),
                    rss_kb > 0 ? std::to_string(rss_kb / 1024) + " MiB" : "-",
                    cached.empty() ? "-" : "reused from " + cached,
                    Text(s["message"])});
  }
  PrintTable({"STEP", "KIND", "STATE", "ATTEMPTS", "STARTED", "FINISHED", "CPU",
              "PEAK RSS", "CACHE", "MESSAGE"},
             rows);
  const json& events = (*run)["events"];
  if (events.is_array() && !events.empty()) {
    std::cout << "\nevents:\n";
    rows.clear();
    for (const json& e : events) {
      rows.push_back({Text(e["step"]), Text(e["type"]), Text(e["name"]),
                      e["value"].is_null() ? "-" : e["value"].dump(),
                      Text(e["message"])});
    }
    PrintTable({"STEP", "TYPE", "NAME", "VALUE", "MESSAGE"}, rows);
  }
  return 0;
}

namespace {

// Prints step `step`'s log from `*offset` on, advancing it; true when the
// step has finished and everything was printed.
absl::StatusOr<bool> PrintLogChunk(const ApiClient& client,
                                   const std::string& run_id,
                                   const std::string& step, uint64_t* offset) {
  while (true) {
    ASSIGN_OR_RETURN(json chunk,
                     client.Get("/api/v1/runs/" + run_id + "/steps/" + step +
                                "/log?offset=" + std::to_string(*offset)));
    std::string text = chunk.value("text", "");
    std::cout << text;
    std::cout.flush();
    *offset = chunk.value("next_offset", *offset);
    if (chunk.value("done", false)) return true;
    if (text.empty()) return false;
  }
}

}  // namespace

int RunsLogsCommand(const CliContext& ctx, const std::string& run_id,
                    const std::string& step, bool follow) {
  std::map<std::string, uint64_t> offsets;
  std::map<std::string, bool> finished;
  while (true) {
    absl::StatusOr<json> run = ctx.client->Get("/api/v1/runs/" + run_id);
    if (!run.ok()) return Fail(run.status());
    bool found = step.empty();
    for (const json& s : (*run)["steps"]) {
      std::string name = s["name"];
      if (!step.empty() && name != step) continue;
      found = true;
      if (finished[name] || s["state"] == "pending") continue;
      if (offsets.find(name) == offsets.end()) {
        std::cout << "==> " << name << " (" << Text(s["kind"]) << ") <==\n";
        offsets[name] = 0;
      }
      absl::StatusOr<bool> done =
          PrintLogChunk(*ctx.client, run_id, name, &offsets[name]);
      if (!done.ok()) return Fail(done.status());
      finished[name] = *done;
    }
    if (!found) {
      std::cerr << "error: run " << run_id << " has no step '" << step
                << "'; `slipway runs show " << run_id << "` lists its steps\n";
      return 1;
    }
    if (!follow || IsFinal((*run)["state"])) return 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
}

int EventsFireCommand(const CliContext& ctx, const std::string& app,
                      const std::string& event) {
  absl::StatusOr<json> answer =
      ctx.client->Post("/api/v1/apps/" + app + "/events", {{"event", event}});
  if (!answer.ok()) return Fail(answer.status());
  if (ctx.json) {
    std::cout << answer->dump(2) << "\n";
    return 0;
  }
  for (const json& run : (*answer)["started"]) {
    std::cout << "started run " << Text(run["id"]) << " of pipeline "
              << Text(run["pipeline"]) << "\n";
  }
  for (const json& skipped : (*answer)["skipped"]) {
    std::cout << "skipped pipeline " << Text(skipped["pipeline"]) << ": "
              << Text(skipped["reason"]) << "\n";
  }
  if ((*answer)["started"].empty() && (*answer)["skipped"].empty()) {
    std::cout << "no pipeline of " << app << " is triggered by " << event
              << "\n";
  }
  return 0;
}

int RunsCancelCommand(const CliContext& ctx, const std::string& run_id) {
  absl::StatusOr<json> run =
      ctx.client->Post("/api/v1/runs/" + run_id + "/cancel", json::object());
  if (!run.ok()) return Fail(run.status());
  std::cout << "run " << run_id << " cancelling\n";
  return 0;
}

int ModelsListCommand(const CliContext& ctx, const std::string& app) {
  absl::StatusOr<json> answer =
      ctx.client->Get("/api/v1/apps/" + app + "/models");
  if (!answer.ok()) return Fail(answer.status());
  if (ctx.json) {
    std::cout << answer->dump(2) << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const json& v : (*answer)["models"]) {
    std::string aliases;
    for (const json& a : v["aliases"]) {
      if (!aliases.empty()) aliases += ",";
      aliases += a.get<std::string>();
    }
    std::string version = "v";
    version += Text(v["version"]);
    rows.push_back({version, aliases.empty() ? "-" : aliases,
                    Text(v["created_at"]), Text(v["row_count"]),
                    FormatMetrics(v["metrics"])});
  }
  PrintTable({"VERSION", "ALIASES", "CREATED", "ROWS", "METRICS"}, rows);
  return 0;
}

namespace {

// "v3", "-" for none.
std::string VersionText(const json& value) {
  if (!value.is_number_integer() || value.get<int>() == 0) return "-";
  return "v" + std::to_string(value.get<int>());
}

std::string Or(const std::string& text, const std::string& fallback) {
  return text.empty() || text == "-" ? fallback : text;
}

void PrintModelVersion(json v) {
  std::cout << Text(v["app"]) << " v" << Text(v["version"]) << " ("
            << Text(v["format"]) << "), created " << Text(v["created_at"])
            << "\n";
  std::string aliases;
  for (const json& a : v["aliases"]) {
    aliases += (aliases.empty() ? "" : ", ") + Text(a);
  }
  std::cout << "  aliases:      " << Or(aliases, "none") << "\n"
            << "  artifact:     " << Text(v["artifact_sha256"]) << "\n";
  json lineage = v["lineage"];
  std::cout << "lineage:\n"
            << "  created by:   " << Or(Text(lineage["created_by"]), "-")
            << "\n"
            << "  run:          " << Or(Text(lineage["run_id"]), "-") << "\n"
            << "  app revision: " << Text(lineage["revision"]) << "\n"
            << "  parent:       "
            << Or(VersionText(lineage["parent_version"]), "none") << "\n"
            << "  code sha256:  " << Or(Text(lineage["code_sha256"]), "-")
            << "\n"
            << "  data sha256:  " << Or(Text(lineage["data_fingerprint"]), "-")
            << " (" << Text(lineage["row_count"]) << " rows)\n"
            << "  baseline:     "
            << Or(Text(lineage.value("baseline_sha256", json())), "none")
            << "\n";
  if (lineage["runtime"].is_object()) {
    for (const auto& [name, version] : lineage["runtime"].items()) {
      if (name == "python" && version.is_object()) {
        // {"version", "executable", "packages": {...}} of a Python step.
        std::cout << "  runtime:      python "
                  << Text(version.value("version", json())) << " ("
                  << Text(version.value("executable", json())) << ")";
        if (version.contains("error"))
          std::cout << " " << Text(version["error"]);
        std::cout << "\n";
        if (version.contains("packages") && version["packages"].is_object()) {
          for (const auto& [package, v] : version["packages"].items()) {
            std::cout << "                  " << package << " " << Text(v)
                      << "\n";
          }
        }
        continue;
      }
      std::cout << "  runtime:      " << name << " " << Text(version) << "\n";
    }
  }
  const json sources = lineage["data_sources"];
  if (sources.is_array() && !sources.empty()) {
    std::cout << "data sources:\n";
    std::vector<std::vector<std::string>> rows;
    for (const json& d : sources) {
      rows.push_back({"  " + Text(d.value("name", json())),
                      Text(d.value("step", json())),
                      Text(d.value("fingerprint", json())),
                      Text(d.value("rows", json()))});
    }
    PrintTable({"  SOURCE", "STEP", "SHA256", "ROWS"}, rows);
  }
  std::cout << "metrics: " << Or(FormatMetrics(v["metrics"]), "none") << "\n"
            << "params:  " << v["params"].dump() << "\n";
  const json signature =
      v["signature"].is_object() ? v["signature"] : json::object();
  std::cout << "signature: " << Text(signature.value("task", json()))
            << ", target " << Text(signature.value("target", json()));
  const json labels = signature.value("class_labels", json::array());
  if (labels.is_array() && !labels.empty()) {
    std::cout << ", classes " << labels.dump();
  }
  std::cout << "\n";
  std::vector<std::vector<std::string>> rows;
  for (const json& f : signature.value("features", json::array())) {
    const json categories = f.value("categories", json());
    rows.push_back({"  " + Text(f.value("name", json())),
                    Text(f.value("type", json())),
                    categories.is_null() ? "" : categories.dump()});
  }
  PrintTable({"  FEATURE", "TYPE", "CATEGORIES"}, rows);
  if (v["transform"].is_object()) {
    std::cout << "a fitted transform runs before the model\n";
  }
}

}  // namespace

int ModelsShowCommand(const CliContext& ctx, const std::string& app,
                      int version) {
  absl::StatusOr<json> answer = ctx.client->Get(
      "/api/v1/apps/" + app + "/models/" + std::to_string(version));
  if (!answer.ok()) return Fail(answer.status());
  if (ctx.json) {
    std::cout << answer->dump(2) << "\n";
    return 0;
  }
  PrintModelVersion(*answer);
  return 0;
}

int ModelsDiffCommand(const CliContext& ctx, const std::string& app, int from,
                      int to) {
  absl::StatusOr<json> answer =
      ctx.client->Get("/api/v1/apps/" + app + "/models/" +
                      std::to_string(from) + "/diff/" + std::to_string(to));
  if (!answer.ok()) return Fail(answer.status());
  if (ctx.json) {
    std::cout << answer->dump(2) << "\n";
    return 0;
  }
  json d = *answer;
  std::cout << app << " v" << from << " -> v" << to << "\n\nparams:\n";
  if (d["params"].empty()) std::cout << "  (no changes)\n";
  for (const json& p : d["params"]) {
    std::cout << "  " << Text(p["name"]) << ": " << Text(p["from"]) << " -> "
              << Text(p["to"]) << "\n";
  }
  std::cout << "\nmetrics:\n";
  std::vector<std::vector<std::string>> rows;
  for (const json& m : d["metrics"]) {
    std::string difference = "-";
    if (m["difference"].is_number()) {
      char buffer[64];
      std::snprintf(buffer, sizeof(buffer), "%+.6g",
                    m["difference"].get<double>());
      difference = buffer;
    }
    rows.push_back(
        {"  " + Text(m["name"]), Text(m["from"]), Text(m["to"]), difference});
  }
  if (rows.empty()) {
    std::cout << "  (none)\n";
  } else {
    PrintTable({"  METRIC", "V" + std::to_string(from),
                "V" + std::to_string(to), "DIFFERENCE"},
               rows);
  }
  json s = d["signature"];
  std::cout << "\nsignature:\n";
  bool changed = false;
  for (const char* field : {"task", "target", "class_labels"}) {
    if (s[field].is_null()) continue;
    changed = true;
    std::cout << "  " << field << ": " << Text(s[field]["from"]) << " -> "
              << Text(s[field]["to"]) << "\n";
  }
  for (const json& f : s["features_added"]) {
    changed = true;
    std::cout << "  + " << Text(f["name"]) << " (" << Text(f["type"]) << ")\n";
  }
  for (const json& f : s["features_removed"]) {
    changed = true;
    std::cout << "  - " << Text(f["name"]) << " (" << Text(f["type"]) << ")\n";
  }
  for (const json& f : s["features_retyped"]) {
    changed = true;
    std::cout << "  ~ " << Text(f["name"]) << ": " << Text(f["from"]) << " -> "
              << Text(f["to"]) << "\n";
  }
  for (const json& c : s["categories_changed"]) {
    changed = true;
    std::cout << "  ~ " << Text(c["name"]) << " categories: added "
              << c["added"].dump() << ", removed " << c["removed"].dump();
    if (c.value("reordered", false)) std::cout << " (same values, new order)";
    std::cout << "\n";
  }
  if (s.value("order_changed", false)) {
    changed = true;
    std::cout << "  the features are in a different order\n";
  }
  if (!changed) std::cout << "  (no changes)\n";
  return 0;
}

int ModelsHistoryCommand(const CliContext& ctx, const std::string& app) {
  absl::StatusOr<json> answer =
      ctx.client->Get("/api/v1/apps/" + app + "/aliases/history");
  if (!answer.ok()) return Fail(answer.status());
  if (ctx.json) {
    std::cout << answer->dump(2) << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const json& h : (*answer)["history"]) {
    rows.push_back({Text(h["at"]), Text(h["alias"]),
                    VersionText(h["from_version"]),
                    VersionText(h["to_version"]), Text(h["actor"])});
  }
  PrintTable({"AT", "ALIAS", "FROM", "TO", "ACTOR"}, rows);
  return 0;
}

namespace {

// A python or torchscript model as a model bundle: the folder `path`, or
// the one file `path` packed as a folder holding only it (copied into a
// scratch folder under $TMPDIR, removed afterwards).
absl::StatusOr<std::string> PackModelPath(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec)) return PackModelFolder(path);
  if (!fs::is_regular_file(path, ec)) {
    return absl::InvalidArgumentError(
        "model path '" + path +
        "' is neither a file nor a folder; give the model folder, or its "
        "one model file (.joblib/.pkl, .pt)");
  }
  std::string scratch = (fs::temp_directory_path(ec) / "slipway-import-XXXXXX")
                            .string();
  if (ec || ::mkdtemp(scratch.data()) == nullptr) {
    return absl::InternalError("cannot create a scratch folder to pack '" +
                               path + "'");
  }
  fs::copy_file(path, fs::path(scratch) / fs::path(path).filename(), ec);
  absl::StatusOr<std::string> bundle =
      ec ? absl::StatusOr<std::string>(absl::InternalError(
               "cannot copy '" + path + "' to pack it: " + ec.message()))
         : PackModelFolder(scratch);
  fs::remove_all(scratch, ec);
  return bundle;
}

}  // namespace

int ModelsImportCommand(const CliContext& ctx, const std::string& app,
                        const std::string& path, const std::string& format,
                        const std::string& sample_csv,
                        const std::string& signature_file) {
  Filesystem* fs = LocalFilesystem();
  std::error_code ec;
  std::string model_path = path;
  const bool folder_format =
      format == kPythonFormat || format == kTorchScriptFormat;
  json body = {{"format", format}};
  if (folder_format) {
    absl::StatusOr<std::string> bundle = PackModelPath(path);
    if (!bundle.ok()) return Fail(bundle.status());
    // "models/churn/" is named "churn".
    std::filesystem::path named = std::filesystem::path(path).lexically_normal();
    if (!named.has_filename()) named = named.parent_path();
    body["source"] = named.filename().string();
    body["model_base64"] = absl::Base64Escape(*bundle);
    body["bundle"] = true;
  } else if (std::filesystem::is_directory(path, ec)) {
    const std::string mlmodel_path = JoinPath(path, "MLmodel");
    if (!fs->Exists(mlmodel_path)) {
      return Fail(absl::InvalidArgumentError(
          "directory '" + path +
          "' has no MLmodel file; give an XGBoost model file or an MLflow "
          "model directory"));
    }
    absl::StatusOr<std::string> mlmodel = fs->ReadFile(mlmodel_path);
    if (!mlmodel.ok()) return Fail(mlmodel.status());
    absl::StatusOr<std::string> data =
        MlflowXgboostDataPath(*mlmodel, mlmodel_path);
    if (!data.ok()) return Fail(data.status());
    model_path = JoinPath(path, *data);
  }
  if (!folder_format) {
    absl::StatusOr<std::string> bytes = fs->ReadFile(model_path);
    if (!bytes.ok()) return Fail(bytes.status());
    body["source"] = BaseName(model_path);
    body["model_base64"] = absl::Base64Escape(*bytes);
  }
  if (!signature_file.empty()) {
    absl::StatusOr<std::string> text = fs->ReadFile(signature_file);
    if (!text.ok()) return Fail(text.status());
    json signature = json::parse(*text, nullptr, false);
    if (signature.is_discarded()) {
      return Fail(absl::InvalidArgumentError(
          "signature file '" + signature_file +
          "' is not JSON; give a signature as `slipway models export` "
          "writes it (signature.json)"));
    }
    body["signature"] = std::move(signature);
  }
  if (!sample_csv.empty()) {
    absl::StatusOr<std::string> text = fs->ReadFile(sample_csv);
    if (!text.ok()) return Fail(text.status());
    body["sample_csv"] = *std::move(text);
  }
  absl::StatusOr<json> answer =
      ctx.client->Post("/api/v1/apps/" + app + "/models", body);
  if (!answer.ok()) {
    if (absl::IsResourceExhausted(answer.status()) ||
        answer.status().message().find("exceeds the limit") !=
            std::string::npos) {
      return Fail(absl::ResourceExhaustedError(
          std::string(answer.status().message()) + " (the model file " +
          model_path +
          " travels base64-encoded; raise the server's "
          "--max-body-mb)"));
    }
    return Fail(answer.status());
  }
  if (ctx.json) {
    std::cout << answer->dump(2) << "\n";
    return 0;
  }
  std::cout << "imported " << model_path << " as " << app << " v"
            << Text((*answer)["version"]) << "\n";
  return 0;
}

int ModelsPromoteCommand(const CliContext& ctx, const std::string& app,
                         int version, const std::string& alias) {
  absl::StatusOr<json> answer =
      ctx.client->Put("/api/v1/apps/" + app + "/aliases/" + alias,
                      {{"version", version}, {"actor", "cli"}});
  if (!answer.ok()) return Fail(answer.status());
  if (ctx.json) {
    std::cout << answer->dump(2) << "\n";
    return 0;
  }
  if (PrintIfPending(*answer)) return 0;
  std::cout << app << " " << alias << " -> v" << version;
  if ((*answer)["serving"].get<bool>()) std::cout << " (now serving)";
  std::cout << "\n";
  return 0;
}

namespace {

// OK when writing into `dir` stays where the user pointed: a relative
// directory must stay inside the current directory after normalisation and
// after resolving symlinks, and none of `files` in it may be a symlink
// (writing would leave the folder through it).
absl::Status CheckExportDir(const std::string& dir,
                            const std::vector<std::string>& files) {
  namespace fs = std::filesystem;
  const fs::path normal = fs::path(dir).lexically_normal();
  if (normal.is_relative()) {
    if (!normal.empty() && *normal.begin() == "..") {
      return absl::InvalidArgumentError(
          "export path '" + dir +
          "' leaves the current directory ('..' after normalisation); give "
          "a directory inside it or an absolute path");
    }
    std::error_code ec;
    const fs::path base = fs::canonical(fs::current_path(ec), ec);
    const fs::path resolved = fs::weakly_canonical(base / normal, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          "export path '" + dir + "' cannot be resolved: " + ec.message());
    }
    const std::string prefix = base.string();
    const std::string target = resolved.string();
    if (target != prefix && target.rfind(prefix + "/", 0) != 0) {
      return absl::InvalidArgumentError(
          "export path '" + dir + "' leads to '" + target +
          "' through a symlink, outside the current directory; give that "
          "directory directly");
    }
  }
  for (const std::string& file : files) {
    std::error_code ec;
    const std::string path = JoinPath(dir, file);
    if (fs::is_symlink(fs::symlink_status(path, ec))) {
      return absl::InvalidArgumentError(
          "'" + path +
          "' is a symlink; export refuses to write through it (remove it or "
          "choose another directory)");
    }
  }
  return absl::OkStatus();
}

}  // namespace

int ModelsExportCommand(const CliContext& ctx, const std::string& app,
                        int version, const std::string& dir) {
  std::vector<std::string> files = {"model.json", "signature.json",
                                    "transform.json", "MODEL_CARD.md"};
  std::string base =
      "/api/v1/apps/" + app + "/models/" + std::to_string(version);
  absl::StatusOr<json> info = ctx.client->Get(base);
  if (!info.ok()) return Fail(info.status());
  absl::StatusOr<std::string> bytes = ctx.client->Download(base + "/artifact");
  if (!bytes.ok()) return Fail(bytes.status());
  // A Python or TorchScript version is a model folder: its files are
  // written as they were registered (model.yaml, the model file, ...).
  const std::string format = Text((*info)["format"]);
  std::map<std::string, std::string> folder;
  if (format == kPythonFormat || format == kTorchScriptFormat) {
    absl::StatusOr<std::map<std::string, std::string>> read =
        ReadModelBundle(*bytes);
    if (!read.ok()) return Fail(read.status());
    folder = *std::move(read);
    files.erase(files.begin());
    for (const auto& [path, unused] : folder) files.push_back(path);
  }
  absl::Status checked = CheckExportDir(dir, files);
  if (!checked.ok()) return Fail(checked);
  absl::StatusOr<std::string> card = ctx.client->Download(base + "/card");
  if (!card.ok()) return Fail(card.status());
  Filesystem* fs = LocalFilesystem();
  absl::Status s = fs->CreateDirs(dir);
  std::string model_path = JoinPath(dir, "model.json");
  std::string signature_path = JoinPath(dir, "signature.json");
  std::string card_path = JoinPath(dir, "MODEL_CARD.md");
  if (folder.empty()) {
    if (s.ok()) s = fs->WriteFileAtomic(model_path, *bytes);
  } else {
    model_path = dir;
    for (const auto& [path, content] : folder) {
      const std::string target = JoinPath(dir, path);
      if (s.ok()) s = fs->CreateDirs(DirName(target));
      if (s.ok()) s = fs->WriteFileAtomic(target, content);
    }
  }
  if (s.ok()) {
    s = fs->WriteFileAtomic(signature_path,
                            (*info)["signature"].dump(2) + "\n");
  }
  // The fitted transform callers' raw rows go through before the model.
  const json& transform = (*info)["transform"];
  std::string transform_path = JoinPath(dir, "transform.json");
  if (s.ok() && transform.is_object()) {
    s = fs->WriteFileAtomic(transform_path, transform.dump(2) + "\n");
  }
  if (s.ok()) s = fs->WriteFileAtomic(card_path, *card);
  if (!s.ok()) return Fail(s);
  std::cout << "wrote " << model_path << " (" << Text((*info)["format"])
            << "), " << signature_path;
  if (transform.is_object()) std::cout << ", " << transform_path;
  std::cout << " and " << card_path << "\n";
  return 0;
}

int TokensCreateCommand(const CliContext& ctx, const std::string& name,
                        const std::string& role, const std::string& expires) {
  json body = {{"name", name}, {"role", role}, {"actor", "cli"}};
  if (!expires.empty()) body["expires_in"] = expires;
  absl::StatusOr<json> answer = ctx.client->Post("/api/v1/tokens", body);
  if (!answer.ok()) return Fail(answer.status());
  if (ctx.json) {
    std::cout << answer->dump(2) << "\n";
    return 0;
  }
  std::cout << "token " << Text((*answer)["id"]) << " (" << name << ", role "
            << role << ", expires "
            << Or(Text((*answer)["expires_at"]), "never") << ")\n"
            << Text((*answer)["token"]) << "\n"
            << "Store it now: it is not shown again. Use it as "
               "SLIPWAY_TOKEN or 'Authorization: Bearer <token>'.\n";
  return 0;
}

int TokensListCommand(const CliContext& ctx) {
  absl::StatusOr<json> answer = ctx.client->Get("/api/v1/tokens");
  if (!answer.ok()) return Fail(answer.status());
  if (ctx.json) {
    std::cout << answer->dump(2) << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const json& t : (*answer)["tokens"]) {
    rows.push_back({Text(t["id"]), Text(t["name"]), Text(t["role"]),
                    Text(t["state"]), Text(t["created_at"]),
                    Or(Text(t["expires_at"]), "never"),
                    Or(Text(t["revoked_at"]), "-"), Text(t["created_by"])});
  }
  PrintTable({"ID", "NAME", "ROLE", "STATE", "CREATED", "EXPIRES", "REVOKED",
              "CREATED BY"},
             rows);
  return 0;
}

int TokensRevokeCommand(const CliContext& ctx, const std::string& id) {
  absl::StatusOr<json> answer = ctx.client->Delete("/api/v1/tokens/" + id);
  if (!answer.ok()) return Fail(answer.status());
  if (ctx.json) {
    std::cout << answer->dump(2) << "\n";
    return 0;
  }
  std::cout << "token " << Text((*answer)["id"]) << " ("
            << Text((*answer)["name"]) << ") revoked at "
            << Text((*answer)["revoked_at"]) << "\n";
  return 0;
}

int ApprovalsListCommand(const CliContext& ctx, const std::string& app,
                         const std::string& state) {
  std::string path = "/api/v1/approvals";
  std::string query;
  if (!app.empty()) query += "app=" + app;
  if (!state.empty()) query += (query.empty() ? "" : "&") + ("state=" + state);
  if (!query.empty()) path += "?" + query;
  absl::StatusOr<json> answer = ctx.client->Get(path);
  if (!answer.ok()) return Fail(answer.status());
  if (ctx.json) {
    std::cout << answer->dump(2) << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const json& a : (*answer)["approvals"]) {
    std::string change;
    if (a["kind"] == "promote") {
      for (const json& m : a["change"]["moves"]) {
        change += (change.empty() ? "" : ", ") + Text(m["alias"]) + " -> v" +
                  Text(m["version"]);
      }
    } else {
      change = "spec " + Text(a["change"]["spec_sha256"]).substr(0, 12);
    }
    rows.push_back(
        {Text(a["id"]), Text(a["app"]), Text(a["kind"]), change,
         Text(a["state"]), Text(a["requested_by"]), Text(a["requested_at"]),
         a.contains("decided_by") ? Text(a["decided_by"]) : "-",
         a.contains("decision_comment") ? Text(a["decision_comment"])
                                        : Text(a["request_comment"])});
  }
  PrintTable({"ID", "APP", "KIND", "CHANGE", "STATE", "REQUESTED BY",
              "REQUESTED", "DECIDED BY", "COMMENT"},
             rows);
  return 0;
}

int ApprovalsDecideCommand(const CliContext& ctx, int64_t id, bool approve,
                           const std::string& comment) {
  const std::string verb = approve ? "approve" : "reject";
  absl::StatusOr<json> answer =
      ctx.client->Post("/api/v1/approvals/" + std::to_string(id) + "/" + verb,
                       {{"comment", comment}, {"actor", "cli"}});
  if (!answer.ok()) return Fail(answer.status());
  if (ctx.json) {
    std::cout << answer->dump(2) << "\n";
    return 0;
  }
  std::cout << "approval " << id << " " << Text((*answer)["state"]) << " ("
            << Text((*answer)["kind"]) << " of app " << Text((*answer)["app"])
            << ")";
  if (approve && (*answer)["kind"] == "promote") {
    for (const json& m : (*answer)["change"]["moves"]) {
      std::cout << "; " << Text(m["alias"]) << " -> v" << Text(m["version"]);
    }
  }
  std::cout << "\n";
  return 0;
}

int AuditListCommand(const CliContext& ctx, const AuditQuery& query) {
  std::string params;
  auto add = [&params](const std::string& name, const std::string& value) {
    if (value.empty()) return;
    params += (params.empty() ? "?" : "&") + name + "=" + PercentEncode(value);
  };
  add("app", query.app);
  add("object", query.object);
  add("actor", query.actor);
  add("action", query.action);
  if (query.limit > 0) add("limit", std::to_string(query.limit));
  absl::StatusOr<json> answer = ctx.client->Get("/api/v1/audit" + params);
  if (!answer.ok()) return Fail(answer.status());
  if (ctx.json) {
    std::cout << answer->dump(2) << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const json& r : (*answer)["records"]) {
    std::string change = Text(r["before"]) + " -> " + Text(r["after"]);
    if (change.size() > 120) change = change.substr(0, 117) + "...";
    rows.push_back({Text(r["seq"]), Text(r["at"]), Text(r["actor"]),
                    Text(r["action"]), Text(r["object"]), change});
  }
  PrintTable({"SEQ", "AT", "ACTOR", "ACTION", "OBJECT", "BEFORE -> AFTER"},
             rows);
  return 0;
}

int HistoryCommand(const CliContext& ctx, const std::string& app, int limit) {
  absl::StatusOr<json> answer = ctx.client->Get(
      "/api/v1/apps/" + PercentEncode(app) + "/history?limit=100000");
  if (!answer.ok()) return Fail(answer.status());
  json& events = (*answer)["events"];
  if (limit > 0 && events.size() > static_cast<size_t>(limit)) {
    events.erase(events.begin(), events.end() - limit);
  }
  if (ctx.json) {
    std::cout << answer->dump(2) << "\n";
    return 0;
  }
  if (events.empty()) {
    std::cout << "no events for app '" << app << "' yet\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const json& e : events) {
    rows.push_back({Text(e["at"]), Text(e["action"]), Text(e["summary"])});
  }
  PrintTable({"AT", "EVENT", "WHAT HAPPENED"}, rows);
  return 0;
}

int AuditVerifyCommand(const CliContext& ctx) {
  absl::StatusOr<json> answer = ctx.client->Get("/api/v1/audit/verify");
  if (!answer.ok()) return Fail(answer.status());
  const bool ok = (*answer)["ok"].get<bool>();
  if (ctx.json) {
    std::cout << answer->dump(2) << "\n";
    return ok ? 0 : 1;
  }
  if (ok) {
    std::cout << "audit log intact: " << Text((*answer)["records"])
              << " records, head " << Text((*answer)["head_hash"]) << "\n";
    return 0;
  }
  std::cerr << "audit log FAILED verification: " << Text((*answer)["problem"])
            << "\n";
  return 1;
}

}  // namespace slipway
