#include "registry/registry.h"

#include <algorithm>

#include "core/hash.h"
#include "core/ids.h"
#include "core/status.h"
#include "nlohmann/json.hpp"

namespace slipway {
namespace {

absl::Status CheckAppName(const std::string& app) {
  if (IsValidName(app)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      "'" + app +
      "' is not a valid app name: use 1 to 63 letters, digits, '_', '-' or "
      "'.', starting with a letter or digit");
}

}  // namespace

Registry::Registry(Store* store, ArtifactStore* artifacts, AuditLog* audit)
    : store_(store), artifacts_(artifacts), audit_(audit) {}

absl::StatusOr<ApplyOutcome> Registry::Apply(const std::string& app,
                                             const std::string& spec_yaml,
                                             const std::string& source_dir) {
  RETURN_IF_ERROR(CheckAppName(app));
  ApplyOutcome outcome;
  absl::StatusOr<AppRevisionRecord> current = CurrentRevision(app);
  if (current.ok()) {
    outcome.previous_yaml = current->spec_yaml;
    if (current->spec_yaml == spec_yaml) {
      outcome.revision = *std::move(current);
      return outcome;
    }
  } else if (!absl::IsNotFound(current.status())) {
    return current.status();
  }
  AppRevisionRecord revision;
  revision.app = app;
  revision.spec_yaml = spec_yaml;
  revision.spec_sha256 = Sha256Hex(spec_yaml);
  revision.source_dir = source_dir;
  ASSIGN_OR_RETURN(outcome.revision, store_->AddAppRevision(revision));
  outcome.changed = true;
  return outcome;
}

absl::StatusOr<ApplyOutcome> Registry::Rollback(const std::string& app,
                                                int revision) {
  ASSIGN_OR_RETURN(AppRevisionRecord target,
                   store_->GetAppRevision(app, revision));
  return Apply(app, target.spec_yaml, target.source_dir);
}

absl::StatusOr<AppRevisionRecord> Registry::CurrentRevision(
    const std::string& app) {
  ASSIGN_OR_RETURN(AppRecord record, store_->GetApp(app));
  if (record.current_revision == 0) {
    return absl::NotFoundError("app '" + app + "' has no revision");
  }
  return store_->GetAppRevision(app, record.current_revision);
}

absl::StatusOr<ModelVersionRecord> Registry::Register(
    const NewModelVersion& version) {
  RETURN_IF_ERROR(CheckAppName(version.app));
  if (version.model_bytes.empty()) {
    return absl::InvalidArgumentError("model for app '" + version.app +
                                      "' is empty; nothing to register");
  }
  ASSIGN_OR_RETURN(std::string sha256, artifacts_->Put(version.model_bytes),
                   "storing the model file of app '" + version.app + "'");
  ModelVersionRecord record;
  record.app = version.app;
  record.artifact_sha256 = sha256;
  record.format = version.format;
  record.signature_json = version.signature_json;
  record.transform_json = version.transform_json;
  record.params_json = version.params_json;
  record.metrics_json = version.metrics_json;
  record.data_fingerprint = version.data_fingerprint;
  record.row_count = version.row_count;
  record.run_id = version.run_id;
  record.revision = version.revision;
  record.code_sha256 = version.code_sha256;
  record.runtime_json = version.runtime_json;
  record.created_by = version.created_by;
  record.data_sources_json = version.data_sources_json;
  if (!version.baseline_json.empty()) {
    ASSIGN_OR_RETURN(
        record.baseline_sha256, artifacts_->Put(version.baseline_json),
        "storing the baseline profile of app '" + version.app + "'");
  }
  ASSIGN_OR_RETURN(std::optional<int> champion,
                   ResolveAlias(version.app, kChampionAlias));
  record.parent_version = champion.value_or(0);
  ASSIGN_OR_RETURN(ModelVersionRecord stored, store_->AddModelVersion(record));
  if (audit_ != nullptr) {
    AuditEntry entry;
    entry.actor = stored.created_by.empty() ? "unknown" : stored.created_by;
    entry.action = "model.register";
    entry.app = stored.app;
    entry.object =
        "model " + stored.app + " v" + std::to_string(stored.version);
    entry.after_json =
        nlohmann::json{{"version", stored.version},
                       {"artifact_sha256", stored.artifact_sha256},
                       {"format", stored.format},
                       {"run_id", stored.run_id},
                       {"revision", stored.revision},
                       {"parent_version", stored.parent_version},
                       {"data_fingerprint", stored.data_fingerprint},
                       {"baseline_sha256", stored.baseline_sha256},
                       {"metrics", nlohmann::json::parse(stored.metrics_json,
                                                         nullptr, false)}}
            .dump();
    RETURN_IF_ERROR(audit_->Record(entry).status(),
                    "auditing the registration of " + entry.object);
  }
  return stored;
}

absl::StatusOr<ModelVersionRecord> Registry::GetVersion(const std::string& app,
                                                        int version) {
  return store_->GetModelVersion(app, version);
}

absl::StatusOr<std::vector<ModelVersionRecord>> Registry::ListVersions(
    const std::string& app) {
  RETURN_IF_ERROR(store_->GetApp(app).status());
  return store_->ListModelVersions(app);
}

absl::StatusOr<std::string> Registry::ReadModelBytes(
    const ModelVersionRecord& version) {
  return artifacts_->Get(version.artifact_sha256);
}

absl::StatusOr<std::string> Registry::ReadBaseline(
    const ModelVersionRecord& version) {
  if (version.baseline_sha256.empty()) {
    return absl::NotFoundError(
        "model " + version.app + " v" + std::to_string(version.version) +
        " has no baseline profile (it was imported, or registered without "
        "training rows); retrain it with a pipeline whose register step "
        "sees the training table");
  }
  return artifacts_->Get(version.baseline_sha256);
}

absl::Status Registry::MoveAlias(const std::string& app,
                                 const std::string& alias, int version,
                                 const std::string& actor) {
  return MoveAliases(app, {AliasMove{alias, version}}, actor);
}

absl::Status Registry::MoveAliases(const std::string& app,
                                   const std::vector<AliasMove>& moves,
                                   const std::string& actor) {
  for (const AliasMove& move : moves) {
    if (!IsValidName(move.alias)) {
      return absl::InvalidArgumentError(
          "'" + move.alias +
          "' is not a valid alias name: use letters, digits, '_', '-' or '.'");
    }
  }
  RETURN_IF_ERROR(store_->SetAliases(app, moves, actor));
  if (audit_ == nullptr) return absl::OkStatus();
  // The history rows SetAliases just wrote say where each alias was.
  ASSIGN_OR_RETURN(std::vector<AliasHistoryRecord> history,
                   store_->ListAliasHistory(app));
  nlohmann::json before = nlohmann::json::object();
  nlohmann::json after = nlohmann::json::object();
  std::string names;
  const size_t first = history.size() - std::min(history.size(), moves.size());
  for (size_t i = first; i < history.size(); ++i) {
    const AliasHistoryRecord& move = history[i];
    before[move.alias] = move.from_version == 0
                             ? nlohmann::json(nullptr)
                             : nlohmann::json(move.from_version);
    after[move.alias] = move.to_version;
    names += (names.empty() ? "" : ",") + move.alias;
  }
  AuditEntry entry;
  entry.actor = actor;
  entry.action = "alias.move";
  entry.app = app;
  entry.object = "alias " + app + "/" + names;
  entry.before_json = before.dump();
  entry.after_json = after.dump();
  return audit_->Record(entry).status();
}

absl::StatusOr<std::vector<AliasHistoryRecord>> Registry::AliasHistory(
    const std::string& app) {
  return store_->ListAliasHistory(app);
}

absl::StatusOr<std::string> Registry::StepCodeSha256(const std::string& run_id,
                                                     const std::string& step) {
  ASSIGN_OR_RETURN(std::vector<StepRecord> steps, store_->ListSteps(run_id));
  for (const StepRecord& s : steps) {
    if (s.name != step) continue;
    nlohmann::json outputs =
        nlohmann::json::parse(s.outputs_json, nullptr, false);
    if (!outputs.is_object()) return std::string();
    return outputs.value("code_sha256", std::string());
  }
  return absl::NotFoundError("run '" + run_id + "' has no step '" + step + "'");
}

absl::StatusOr<std::optional<int>> Registry::ResolveAlias(
    const std::string& app, const std::string& alias) {
  ASSIGN_OR_RETURN(std::optional<AliasRecord> record,
                   store_->GetAlias(app, alias));
  if (!record.has_value()) return std::optional<int>();
  return std::optional<int>(record->version);
}

absl::StatusOr<std::vector<AliasRecord>> Registry::ListAliases(
    const std::string& app) {
  return store_->ListAliases(app);
}

absl::Status Registry::RecordEvaluation(const std::string& app, int version,
                                        const nlohmann::json& evaluation,
                                        const std::string& actor) {
  AuditEntry entry;
  entry.actor = actor;
  entry.action = "model.evaluate";
  entry.app = app;
  entry.object = "model " + app + " v" + std::to_string(version);
  entry.after_json = evaluation.dump();
  return audit_->Record(entry).status();
}

}  // namespace slipway
