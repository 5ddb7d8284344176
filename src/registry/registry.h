// Registry: the apps Slipway knows (with every applied revision of their
// spec), the immutable model versions trained for them, and the aliases
// (`champion`, `challenger`, user-defined) that point at versions.
//
// A model version's bytes live in the artifact store under their SHA-256;
// its metadata (signature, params, metrics, data fingerprint, row count,
// run, revision) in the metadata store. Nothing here changes a stored
// version: registering always makes a new one.
//
// Serving is not the registry's business: moving `champion` here only
// records the move; the server then swaps the served model (api/).
//
// Registering a version and moving aliases are audited ("model.register",
// "alias.move": one record per call, however many aliases it moves).
// Thread safety: safe for concurrent use (Store and ArtifactStore are).
#ifndef SLIPWAY_REGISTRY_REGISTRY_H_
#define SLIPWAY_REGISTRY_REGISTRY_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "artifacts/artifact_store.h"
#include "audit/audit_log.h"
#include "nlohmann/json.hpp"
#include "store/store.h"

namespace slipway {

// What `slipway apply` did.
struct ApplyOutcome {
  AppRevisionRecord revision;  // the current revision after the apply
  bool changed = false;        // false: same content as the current one
  std::string previous_yaml;   // "" for a new app
};

// The alias whose version an app serves; a new version's parent is the
// version it points at when the new one is registered.
inline constexpr char kChampionAlias[] = "champion";

// A model version about to be registered.
struct NewModelVersion {
  std::string app;
  std::string format;  // "xgboost-json"
  std::string model_bytes;
  std::string signature_json;  // the request signature
  std::string transform_json;  // models/transform.h; empty: none
  std::string params_json;
  std::string metrics_json;
  std::string data_fingerprint;
  int64_t row_count = 0;
  std::string run_id;
  int revision = 0;
  // Lineage (store.h ModelVersionRecord): the producing program's code
  // hash, runtime versions, who registers it, the ingested inputs. The
  // parent version is the champion at registration, found by Register.
  std::string code_sha256;
  std::string runtime_json = "{}";
  std::string created_by;
  std::string data_sources_json = "[]";
  // The training baseline profile (stats/profile.h ProfileSet JSON), stored
  // in the artifact store beside the model; empty: none.
  std::string baseline_json;
};

class Registry {
 public:
  // REQUIRES: `store`, `artifacts` and `audit` outlive the registry.
  // `audit` may be null: then nothing is audited (tests of other parts).
  Registry(Store* store, ArtifactStore* artifacts, AuditLog* audit = nullptr);

  // Stores `spec_yaml` as a new revision of `app` unless it equals the
  // current revision's text.
  absl::StatusOr<ApplyOutcome> Apply(const std::string& app,
                                     const std::string& spec_yaml,
                                     const std::string& source_dir);
  // Makes revision `revision` current again by storing its text as a new
  // revision (history only grows).
  absl::StatusOr<ApplyOutcome> Rollback(const std::string& app, int revision);
  // The app's current revision (NotFound for an unknown app).
  absl::StatusOr<AppRevisionRecord> CurrentRevision(const std::string& app);

  // Writes the model bytes to the artifact store, then the version record,
  // whose parent_version is the app's champion at that moment (0: none).
  absl::StatusOr<ModelVersionRecord> Register(const NewModelVersion& version);
  absl::StatusOr<ModelVersionRecord> GetVersion(const std::string& app,
                                                int version);
  absl::StatusOr<std::vector<ModelVersionRecord>> ListVersions(
      const std::string& app);
  // The model file of a version, verified against its content address.
  absl::StatusOr<std::string> ReadModelBytes(const ModelVersionRecord& version);
  // The baseline profile JSON of a version, verified against its content
  // address; NotFound when the version has none.
  absl::StatusOr<std::string> ReadBaseline(const ModelVersionRecord& version);

  // Points `alias` at `version` of `app`, recording the move in the alias
  // history with `actor` ("cli", "api"; a pipeline's register step when not
  // given). InvalidArgument for a bad alias name; NotFound for an unknown
  // version.
  absl::Status MoveAlias(const std::string& app, const std::string& alias,
                         int version, const std::string& actor = "pipeline");
  // Moves every alias of `moves` in one transaction (champion -> v7 and
  // previous -> v6 together), one history row each; nothing moves when
  // one of them cannot.
  absl::Status MoveAliases(const std::string& app,
                           const std::vector<AliasMove>& moves,
                           const std::string& actor);
  // Every alias move of `app`, oldest first.
  absl::StatusOr<std::vector<AliasHistoryRecord>> AliasHistory(
      const std::string& app);

  // The code hash (`code_sha256` of its outputs) step `step` of run
  // `run_id` recorded: a command or notebook step's; "" for a built-in step
  // or one that recorded none. NotFound for an unknown run or step.
  absl::StatusOr<std::string> StepCodeSha256(const std::string& run_id,
                                             const std::string& step);
  // Records in the audit log, by `actor`, that `version` of `app` was
  // evaluated against the champion: `evaluation` holds the comparison, the
  // decision and its reason (action "model.evaluate", object "model APP
  // vN"). The decision's consequence (an alias move, an approval request)
  // is recorded by what carries it out.
  absl::Status RecordEvaluation(const std::string& app, int version,
                                const nlohmann::json& evaluation,
                                const std::string& actor);

  // The version `alias` points at, or nullopt when it is not set.
  absl::StatusOr<std::optional<int>> ResolveAlias(const std::string& app,
                                                  const std::string& alias);
  absl::StatusOr<std::vector<AliasRecord>> ListAliases(const std::string& app);

 private:
  Store* const store_;
  ArtifactStore* const artifacts_;
  AuditLog* const audit_;
};

}  // namespace slipway

#endif  // SLIPWAY_REGISTRY_REGISTRY_H_
