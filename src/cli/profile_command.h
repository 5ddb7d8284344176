// `slipway profile FILE.csv`: profiles a CSV file offline, in bounded
// memory (train/baseline.h's ProfileCsv), and optionally checks it for
// drift against a baseline with stats/drift.h's CompareProfiles and the
// default DriftPolicy — the same comparison the monitor makes of serving
// windows. It reads local files; only --against talks to a server.
//
// The baseline is one of:
// - --against APP:VERSION: the training baseline the server stored with the
//   model version (GET /api/v1/apps/{app}/models/{version}/baseline). It
//   profiles the model's prediction as well; a CSV has no predictions, so
//   only the features are compared (the command says so);
// - --baseline BASE.csv: ProfileCsv of another file (the reference data);
// - --baseline PROFILE.json: a saved profile — what `slipway profile
//   FILE.csv --json` prints, or the server's baseline JSON.
// --skip leaves columns out of both profiles (an id, a timestamp).
//
// Exit codes: 0 when the profile was printed or no feature drifted, 3 when
// at least one feature drifted, 1 on errors (a file that cannot be read, a
// baseline column the file lacks, the server's refusal), 2 on bad flags.
#ifndef SLIPWAY_CLI_PROFILE_COMMAND_H_
#define SLIPWAY_CLI_PROFILE_COMMAND_H_

#include <string>

#include "cli/api_client.h"

namespace slipway {

struct ProfileFlags {
  std::string file;
  std::string against;   // APP:VERSION
  std::string baseline;  // BASE.csv or PROFILE.json
  std::string skip;      // comma-separated column names
  bool json = false;
};

// The exit code; see the file comment. `client` is used only with
// --against and may be null otherwise.
int ProfileCommand(const ProfileFlags& flags, const ApiClient* client);

}  // namespace slipway

#endif  // SLIPWAY_CLI_PROFILE_COMMAND_H_
