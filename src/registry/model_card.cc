#include "registry/model_card.h"

#include "core/clock.h"
#include "nlohmann/json.hpp"

namespace slipway {
namespace {

using nlohmann::json;

json Parsed(const std::string& text, json fallback) {
  if (text.empty()) return fallback;
  json parsed = json::parse(text, nullptr, false);
  return parsed.is_discarded() ? json(text) : parsed;
}

std::string Cell(const json& value) {
  std::string text;
  if (value.is_null()) {
    text = "-";
  } else if (value.is_string()) {
    text = value.get<std::string>();
  } else {
    text = value.dump();
  }
  std::string out;
  for (char c : text) {
    if (c == '|') {
      out += "\\|";
    } else if (c == '\n' || c == '\r') {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out.empty() ? "-" : out;
}

std::string Row(const std::vector<std::string>& cells) {
  std::string line = "|";
  for (const std::string& cell : cells) line += " " + cell + " |";
  return line + "\n";
}

std::string Table(const std::vector<std::string>& header,
                  const std::vector<std::vector<std::string>>& rows) {
  std::string out = Row(header);
  std::vector<std::string> rule(header.size(), "---");
  out += Row(rule);
  for (const auto& row : rows) out += Row(row);
  return out;
}

std::string ObjectTable(const json& object, const std::string& key_header,
                        const std::string& empty) {
  if (!object.is_object() || object.empty()) return empty + "\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& [key, value] : object.items()) {
    rows.push_back({Cell(key), Cell(value)});
  }
  return Table({key_header, "value"}, rows);
}

std::string UseCase(const ModelCardInput& input) {
  std::string out = "## Use case\n\n";
  if (input.use_case.empty()) {
    return out + "The app spec has no `use_case` block.\n\n";
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& [field, value] : input.use_case) {
    rows.push_back({Cell(field), Cell(value)});
  }
  return out + Table({"field", "value"}, rows) + "\n";
}

std::string Data(const ModelVersionRecord& v) {
  std::string out = "## Data\n\n";
  json sources = Parsed(v.data_sources_json, json::array());
  if (sources.is_array() && !sources.empty()) {
    std::vector<std::vector<std::string>> rows;
    for (const json& s : sources) {
      if (!s.is_object()) continue;
      rows.push_back({Cell(s.value("name", json())),
                      Cell(s.value("step", json())),
                      Cell(s.value("fingerprint", json())),
                      Cell(s.value("rows", json()))});
    }
    out += Table({"source", "step", "SHA-256 as read", "rows"}, rows);
  } else if (!v.data_fingerprint.empty()) {
    out += Table({"SHA-256 as read", "rows"},
                 {{v.data_fingerprint, std::to_string(v.row_count)}});
  } else {
    out += "No training data is recorded (";
    out += v.created_by.empty() ? std::string("unknown origin")
                                : std::string("created by ") + v.created_by;
    out += ").\n";
  }
  return out + "\n";
}

std::string Lineage(const ModelVersionRecord& v) {
  std::vector<std::vector<std::string>> rows = {
      {"created",
       Cell(v.created_at == 0 ? json() : json(FormatTimestamp(v.created_at)))},
      {"created by", Cell(v.created_by)},
      {"run", Cell(v.run_id)},
      {"app revision", v.revision == 0 ? "-" : std::to_string(v.revision)},
      {"code SHA-256", Cell(v.code_sha256)},
      {"parent version",
       v.parent_version == 0
           ? std::string("none")
           : std::string("v") + std::to_string(v.parent_version)},
      {"format", Cell(v.format)},
      {"artifact SHA-256", Cell(v.artifact_sha256)},
  };
  json runtime = Parsed(v.runtime_json, json::object());
  if (runtime.is_object()) {
    for (const auto& [name, version] : runtime.items()) {
      rows.push_back({std::string("runtime: ") + Cell(name), Cell(version)});
    }
  }
  return std::string("## Lineage\n\n") + Table({"", "value"}, rows) + "\n";
}

std::string SignatureSection(const ModelVersionRecord& v) {
  std::string out = "## Signature\n\n";
  json signature = Parsed(v.signature_json, json::object());
  if (!signature.is_object()) return out + Cell(signature) + "\n\n";
  out += "- task: " + Cell(signature.value("task", json())) + "\n";
  out += "- target: " + Cell(signature.value("target", json())) + "\n";
  json labels = signature.value("class_labels", json::array());
  if (labels.is_array() && !labels.empty()) {
    out += "- classes: " + Cell(labels) + "\n";
  }
  if (!v.transform_json.empty()) {
    out += "- a fitted transform runs before the model (transform.json)\n";
  }
  out += "\n";
  std::vector<std::vector<std::string>> rows;
  json features = signature.value("features", json::array());
  for (const json& f : features) {
    if (!f.is_object()) continue;
    json categories = f.value("categories", json());
    rows.push_back({Cell(f.value("name", json())),
                    Cell(f.value("type", json())),
                    categories.is_null() ? "" : Cell(categories)});
  }
  return out + Table({"feature", "type", "categories"}, rows) + "\n";
}

std::string Aliases(const ModelCardInput& input) {
  std::string names;
  for (const AliasRecord& a : input.aliases) {
    if (a.version != input.version.version) continue;
    names += (names.empty() ? "" : ", ") + a.alias;
  }
  return std::string("## Aliases\n\n") +
         (names.empty() ? std::string("none") : names) + "\n";
}

std::string Approvals(const ModelCardInput& input) {
  std::vector<std::vector<std::string>> rows;
  for (const ApprovalRecord& a : input.approvals) {
    if (a.kind != "promote") continue;
    const json change = Parsed(a.change_json, json::object());
    std::string aliases;
    if (change.contains("moves") && change["moves"].is_array()) {
      for (const json& m : change["moves"]) {
        if (m.value("version", 0) != input.version.version) continue;
        aliases += (aliases.empty() ? "" : ", ") + m.value("alias", "");
      }
    }
    if (aliases.empty()) continue;
    const bool decided = a.decided_at != 0;
    rows.push_back(
        {std::to_string(a.id), Cell(aliases), Cell(a.state),
         Cell(a.requested_by + " at " + FormatTimestamp(a.requested_at)),
         Cell(a.request_comment),
         decided ? Cell(a.decided_by + " at " + FormatTimestamp(a.decided_at))
                 : "-",
         Cell(a.decision_comment)});
  }
  std::string out = "## Approvals\n\n";
  if (rows.empty()) return out + "No approval requests name this version.\n";
  return out + Table({"approval", "alias", "state", "requested",
                      "request comment", "decided", "decision comment"},
                     rows);
}

}  // namespace

std::string RenderModelCard(const ModelCardInput& input) {
  const ModelVersionRecord& v = input.version;
  std::string out = std::string("# Model card: ") + v.app + " v" +
                    std::to_string(v.version) + "\n\n";
  out += UseCase(input);
  out += Data(v);
  out += std::string("## Metrics\n\n") +
         ObjectTable(Parsed(v.metrics_json, json::object()), "metric",
                     "No metrics are recorded.") +
         "\n";
  out += std::string("## Parameters\n\n") +
         ObjectTable(Parsed(v.params_json, json::object()), "parameter",
                     "No parameters are recorded.") +
         "\n";
  out += Lineage(v);
  out += SignatureSection(v);
  out += Aliases(input);
  out += "\n" + Approvals(input);
  return out;
}

}  // namespace slipway
