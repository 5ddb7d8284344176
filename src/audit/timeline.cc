#include "audit/timeline.h"

#include <cstdio>
#include <string_view>

#include "core/clock.h"

namespace slipway {
namespace {

using nlohmann::json;

json Parsed(const std::string& text) {
  json parsed = json::parse(text, nullptr, false);
  return parsed.is_discarded() ? json() : parsed;
}

std::string Number(const json& value) {
  if (value.is_number_integer()) return value.dump();
  if (!value.is_number()) return value.is_string() ? value.get<std::string>()
                                                   : value.dump();
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.4g", value.get<double>());
  return buffer;
}

std::string Text(const json& object, const char* key) {
  if (!object.is_object() || !object.contains(key)) return "";
  const json& value = object[key];
  return value.is_string() ? value.get<std::string>() : Number(value);
}

// "run run-0a1b" -> "run-0a1b"; "model churn v3" -> "v3": the object's last
// word.
std::string LastWord(const std::string& object) {
  const size_t space = object.rfind(' ');
  return space == std::string::npos ? object : object.substr(space + 1);
}

std::string RunSummary(const std::string& verb, const AuditRecord& r,
                       const json& after) {
  std::string s = Text(after, "pipeline");
  if (s.empty()) s = "pipeline";
  s += " run " + LastWord(r.object) + " " + verb;
  return s;
}

std::string RegisterSummary(const AuditRecord& r, const json& after) {
  std::string s = LastWord(r.object) + " registered by " + r.actor;
  const json metrics =
      after.is_object() ? after.value("metrics", json::object()) : json();
  std::string listed;
  if (metrics.is_object()) {
    for (const auto& [name, value] : metrics.items()) {
      if (name == "rows") continue;
      listed += (listed.empty() ? "" : " ") + name + "=" + Number(value);
    }
  }
  if (!listed.empty()) {
    s += ": " + listed;
    if (metrics.contains("rows")) {
      s += " on " + Number(metrics["rows"]) + " test rows";
    }
  }
  return s;
}

std::string EvaluationSummary(const AuditRecord& r, const json& after) {
  const std::string challenger = "v" + Text(after, "challenger");
  const std::string champion = "champion v" + Text(after, "champion");
  const std::string decision = Text(after, "decision");
  std::string s;
  if (decision == "promote") {
    s = challenger + " beats " + champion;
  } else if (decision == "inconclusive") {
    s = challenger + " not promoted (inconclusive), " + champion + " kept";
  } else {
    s = challenger + " discarded, " + champion + " kept";
  }
  const std::string reason = Text(after, "reason");
  if (!reason.empty()) s += ": " + reason;
  if (Text(after, "challenger").empty()) {
    return LastWord(r.object) + " evaluated by " + r.actor;
  }
  return s;
}

std::string AliasSummary(const AuditRecord& r, const json& before,
                         const json& after) {
  std::string s;
  if (after.is_object()) {
    for (const auto& [alias, version] : after.items()) {
      if (!s.empty()) s += ", ";
      s += alias + " -> v" + Number(version);
      if (before.is_object() && before.contains(alias) &&
          before[alias].is_number_integer() && before[alias] != 0) {
        s += " (was v" + Number(before[alias]) + ")";
      }
    }
  }
  if (s.empty()) s = r.object + " moved";
  return s + " by " + r.actor;
}

std::string AlertSummary(const AuditRecord& r, const json& after,
                         bool firing) {
  std::string rule = Text(after, "rule");
  if (rule.empty()) rule = LastWord(r.object);
  std::string s = "alert " + rule + (firing ? " firing" : " resolved");
  const std::string metric = Text(after, "metric");
  if (!metric.empty()) {
    s += ": " + metric + " = " + Text(after, "value");
    const std::string threshold = Text(after, "threshold");
    if (!threshold.empty()) {
      s += " (" + Text(after, "comparison") + " " + threshold + ")";
    }
  }
  const std::string fire = Text(after, "fire");
  if (firing && !fire.empty() && fire != "null") s += ", fires " + fire;
  return s;
}

std::string ApprovalSummary(const AuditRecord& r, const json& after,
                            std::string_view verb) {
  std::string s = "approval " + LastWord(r.object);
  const std::string kind = Text(after, "kind");
  if (!kind.empty()) s += " (" + kind + ")";
  s.push_back(' ');
  s.append(verb);
  if (verb != "expired") s += " by " + r.actor;
  const std::string comment = Text(after, "decision_comment");
  if (!comment.empty()) s += ": " + comment;
  return s;
}

// canary.start/end/decide, shadow.start/end (control plane and
// control/optimizer.h).
std::string TrafficSummary(const AuditRecord& r, const json& after) {
  const std::string& a = r.action;
  const std::string version = LastWord(r.object);
  const std::string champion = "champion v" + Text(after, "champion");
  const std::string alias = Text(after, "alias");
  const std::string named = alias.empty() ? version : version + " (" + alias + ")";
  if (a == "canary.start") {
    return "canary " + named + " takes " + Text(after, "percent") +
           "% of traffic beside " + champion + ", by " + r.actor;
  }
  if (a == "shadow.start") {
    return "shadow " + named + " gets a copy of the traffic of " + champion +
           ", by " + r.actor;
  }
  if (a == "canary.end" || a == "shadow.end") {
    std::string s = (a == "canary.end" ? "canary " : "shadow ") + version +
                    " ended";
    if (after.is_object() && after.value("promoted", false)) {
      s += ", promoted";
    }
    return s + ", by " + r.actor;
  }
  // canary.decide
  std::string s = "canary " + version + " vs champion v" +
                  Text(after, "champion") + ": " + Text(after, "decision");
  const std::string reason = Text(after, "reason");
  if (!reason.empty()) s += " (" + reason + ")";
  return s;
}

// model.rollback and rollback.check (control/optimizer.h).
std::string RollbackSummary(const AuditRecord& r, const json& after) {
  const std::string champion = "v" + Text(after, "champion");
  const std::string previous = "v" + Text(after, "previous");
  std::string s =
      r.action == "model.rollback"
          ? "champion " + champion + " rolled back to " + previous
          : "promotion of " + champion + " over " + previous + " " +
                Text(after, "decision");
  const std::string reason = Text(after, "reason");
  if (!reason.empty()) s += ": " + reason;
  return s;
}

std::string Summary(const AuditRecord& r) {
  const json before = Parsed(r.before_json);
  const json after = Parsed(r.after_json);
  const std::string& a = r.action;
  if (a == "app.apply" || a == "app.rollback") {
    return "spec revision " + Text(after, "revision") +
           (a == "app.apply" ? " applied by " : " restored by ") + r.actor;
  }
  if (a == "run.start") {
    return RunSummary("started by " + r.actor, r, after);
  }
  if (a == "run.finish") {
    std::string s = RunSummary(Text(after, "state"), r, after);
    const std::string reason = Text(after, "reason");
    if (!reason.empty()) s += ": " + reason;
    return s;
  }
  if (a == "run.cancel") return RunSummary("cancelled by " + r.actor, r, after);
  if (a == "model.register") return RegisterSummary(r, after);
  if (a == "model.evaluate") return EvaluationSummary(r, after);
  if (a == "alias.move") return AliasSummary(r, before, after);
  if (a == "alert.fire") return AlertSummary(r, after, true);
  if (a == "alert.resolve") return AlertSummary(r, after, false);
  if (a == "canary.start" || a == "canary.end" || a == "canary.decide" ||
      a == "shadow.start" || a == "shadow.end") {
    return TrafficSummary(r, after);
  }
  if (a == "model.rollback" || a == "rollback.check") {
    return RollbackSummary(r, after);
  }
  if (a == "approval.request") return ApprovalSummary(r, after, "requested");
  if (a == "approval.approve") return ApprovalSummary(r, after, "approved");
  if (a == "approval.reject") return ApprovalSummary(r, after, "rejected");
  if (a == "approval.expire") return ApprovalSummary(r, after, "expired");
  return a + " " + r.object + " by " + r.actor;
}

}  // namespace

json TimelineEntry::ToJson() const {
  return {{"seq", seq},         {"at", FormatTimestamp(at)},
          {"actor", actor},     {"action", action},
          {"object", object},   {"summary", summary}};
}

TimelineEntry ToTimelineEntry(const AuditRecord& record) {
  TimelineEntry entry;
  entry.seq = record.seq;
  entry.at = record.at;
  entry.actor = record.actor;
  entry.action = record.action;
  entry.object = record.object;
  entry.summary = Summary(record);
  return entry;
}

}  // namespace slipway
