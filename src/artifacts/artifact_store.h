// ArtifactStore: immutable blobs (model files, baselines, reports) addressed
// by the SHA-256 of their contents. The store never changes an object once
// written, so a name is a promise about the bytes: Get verifies it.
//
// Names are 64 lowercase hex digits (core/hash.h IsSha256Hex). Every method
// that takes a name checks it before any path or key is built from it, so a
// name from a request ("../../etc/passwd") is refused, never followed.
//
// Ownership: implementations own their storage handles; callers own the
// returned strings.
// Thread safety: implementations are safe for concurrent use, including
// concurrent Puts of the same contents.
#ifndef SLIPWAY_ARTIFACTS_ARTIFACT_STORE_H_
#define SLIPWAY_ARTIFACTS_ARTIFACT_STORE_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace slipway {

class ArtifactStore {
 public:
  virtual ~ArtifactStore() = default;

  // Stores `contents` durably and returns its SHA-256 (hex). Idempotent:
  // storing the same contents again keeps one object and returns the same
  // name.
  virtual absl::StatusOr<std::string> Put(std::string_view contents) = 0;

  // The contents of object `sha256`, checked against the name.
  //   InvalidArgument: `sha256` is not 64 lowercase hex digits.
  //   NotFound: no such object.
  //   DataLoss: the stored bytes no longer hash to `sha256`.
  virtual absl::StatusOr<std::string> Get(const std::string& sha256) = 0;

  // True when object `sha256` is stored (false for an invalid name). Does
  // not verify the contents.
  virtual bool Contains(const std::string& sha256) = 0;

  // Names of every stored object, sorted.
  virtual absl::StatusOr<std::vector<std::string>> List() = 0;

  // Deletes what interrupted Puts left behind (logging how many files it
  // removed). Called at server start-up.
  // REQUIRES: no Put is in progress on this store's storage (in any
  // process).
  virtual absl::Status RemoveTemporaryFiles() = 0;
};

}  // namespace slipway

#endif  // SLIPWAY_ARTIFACTS_ARTIFACT_STORE_H_
