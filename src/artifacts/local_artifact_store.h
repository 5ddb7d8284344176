// An ArtifactStore in a local directory:
//   <root>/objects/<first 2 hex digits>/<other 62 hex digits>
//   <root>/tmp/<unique name>          writes in progress
// A Put writes a file under tmp/, syncs and closes it, renames it into
// objects/ and syncs the directory, so after a crash an object is either
// whole or absent; only tmp/ can hold debris (RemoveTemporaryFiles).
//
// Ownership: `fs` must outlive the store.
// Thread safety: safe for concurrent use, and several processes may share
// one root (a rename of identical contents over an object is harmless).
#ifndef SLIPWAY_ARTIFACTS_LOCAL_ARTIFACT_STORE_H_
#define SLIPWAY_ARTIFACTS_LOCAL_ARTIFACT_STORE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "artifacts/artifact_store.h"
#include "core/filesystem.h"

namespace slipway {

// Opens the store at `root`, creating root, objects/ and tmp/ when missing.
absl::StatusOr<std::unique_ptr<ArtifactStore>> OpenLocalArtifactStore(
    Filesystem* fs, const std::string& root);

}  // namespace slipway

#endif  // SLIPWAY_ARTIFACTS_LOCAL_ARTIFACT_STORE_H_
