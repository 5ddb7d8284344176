#include "artifacts/local_artifact_store.h"

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <random>

#include "absl/strings/str_format.h"
#include "core/hash.h"
#include "core/logging.h"
#include "core/status.h"

namespace slipway {
namespace {

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

absl::Status InvalidName(const std::string& sha256) {
  return absl::InvalidArgumentError(
      "artifact name '" + sha256 +
      "' is invalid: expected a SHA-256 of 64 lowercase hex digits");
}

class LocalArtifactStore : public ArtifactStore {
 public:
  LocalArtifactStore(Filesystem* fs, std::string root)
      : fs_(fs),
        root_(std::move(root)),
        objects_dir_(JoinPath(root_, "objects")),
        tmp_dir_(JoinPath(root_, "tmp")),
        instance_(std::random_device{}()) {}

  absl::StatusOr<std::string> Put(std::string_view contents) override {
    const std::string sha256 = Sha256Hex(contents);
    const std::string shard = ShardDir(sha256);
    const std::string path = ObjectPath(sha256);

    if (fs_->Exists(path)) {
      absl::StatusOr<std::string> existing = fs_->ReadFile(path);
      if (existing.ok() && *existing == contents) return sha256;
      // The stored copy is damaged or unreadable; the bytes in hand are
      // the right ones, so replacing it repairs the object.
      LogWarning("artifact.repaired", {{"sha256", sha256}, {"path", path}});
    }

    const bool new_shard = !fs_->Exists(shard);
    RETURN_IF_ERROR(fs_->CreateDirs(shard), "storing artifact " + sha256);
    if (new_shard) {
      // The shard's own directory entry must be durable too, or a crash
      // could lose the directory with the object in it.
      RETURN_IF_ERROR(fs_->SyncDir(objects_dir_), "storing artifact " + sha256);
    }

    const std::string temp = JoinPath(tmp_dir_, NewTempName());
    absl::Status status = WriteDurably(temp, contents);
    if (status.ok()) status = fs_->Rename(temp, path);
    if (!status.ok()) {
      fs_->RemoveFile(temp).IgnoreError();
      return Annotate(status, "storing artifact " + sha256);
    }
    RETURN_IF_ERROR(fs_->SyncDir(shard), "storing artifact " + sha256);
    return sha256;
  }

  absl::StatusOr<std::string> Get(const std::string& sha256) override {
    if (!IsSha256Hex(sha256)) return InvalidName(sha256);
    const std::string path = ObjectPath(sha256);
    absl::StatusOr<std::string> contents = fs_->ReadFile(path);
    if (absl::IsNotFound(contents.status())) {
      return absl::NotFoundError("artifact " + sha256 + " not found in '" +
                                 root_ + "'");
    }
    if (!contents.ok()) {
      return Annotate(contents.status(), "reading artifact " + sha256);
    }
    const std::string actual = Sha256Hex(*contents);
    if (actual != sha256) {
      return absl::DataLossError(
          "artifact " + sha256 + " at '" + path +
          "' is corrupted: its contents hash to " + actual +
          "; store the original file again (Put replaces a damaged copy) or "
          "restore it from a backup");
    }
    return *std::move(contents);
  }

  bool Contains(const std::string& sha256) override {
    return IsSha256Hex(sha256) && fs_->Exists(ObjectPath(sha256));
  }

  absl::StatusOr<std::vector<std::string>> List() override {
    ASSIGN_OR_RETURN(std::vector<std::string> shards,
                     fs_->ListDir(objects_dir_), "listing artifacts");
    std::vector<std::string> names;
    for (const std::string& shard : shards) {
      // Only entries shaped like our own layout are objects; anything else
      // someone dropped here is neither listed nor descended into.
      if (shard.size() != 2 || !IsLowerHex(shard)) continue;
      ASSIGN_OR_RETURN(std::vector<std::string> rests,
                       fs_->ListDir(JoinPath(objects_dir_, shard)),
                       "listing artifacts");
      for (const std::string& rest : rests) {
        std::string name = shard + rest;
        if (IsSha256Hex(name)) names.push_back(std::move(name));
      }
    }
    return names;  // Sorted: shards and their entries come sorted.
  }

  absl::Status RemoveTemporaryFiles() override {
    ASSIGN_OR_RETURN(std::vector<std::string> leftovers, fs_->ListDir(tmp_dir_),
                     "removing interrupted artifact writes");
    for (const std::string& name : leftovers) {
      RETURN_IF_ERROR(fs_->RemoveFile(JoinPath(tmp_dir_, name)),
                      "removing interrupted artifact writes");
    }
    if (!leftovers.empty()) {
      LogInfo("artifacts.temporary_files_removed",
              {{"root", root_}, {"count", std::to_string(leftovers.size())}});
    }
    return absl::OkStatus();
  }

 private:
  // REQUIRES: IsSha256Hex(sha256).
  std::string ShardDir(const std::string& sha256) const {
    return JoinPath(objects_dir_, sha256.substr(0, 2));
  }
  std::string ObjectPath(const std::string& sha256) const {
    return JoinPath(ShardDir(sha256), sha256.substr(2));
  }

  // Unique across threads (counter) and across processes sharing the root
  // (pid, and a random number per store for pid reuse across restarts).
  std::string NewTempName() {
    return absl::StrFormat("put-%d-%016x-%d", static_cast<int>(::getpid()),
                           instance_, counter_.fetch_add(1));
  }

  absl::Status WriteDurably(const std::string& path,
                            std::string_view contents) {
    ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file,
                     fs_->OpenWritable(path));
    RETURN_IF_ERROR(file->Append(contents));
    RETURN_IF_ERROR(file->Sync());
    return file->Close();
  }

  Filesystem* const fs_;
  const std::string root_;
  const std::string objects_dir_;
  const std::string tmp_dir_;
  const uint64_t instance_;
  std::atomic<int64_t> counter_{0};
};

}  // namespace

absl::StatusOr<std::unique_ptr<ArtifactStore>> OpenLocalArtifactStore(
    Filesystem* fs, const std::string& root) {
  if (root.empty()) {
    return absl::InvalidArgumentError("artifact store root must not be empty");
  }
  RETURN_IF_ERROR(fs->CreateDirs(JoinPath(root, "objects")),
                  "opening artifact store");
  RETURN_IF_ERROR(fs->CreateDirs(JoinPath(root, "tmp")),
                  "opening artifact store");
  return std::unique_ptr<ArtifactStore>(
      std::make_unique<LocalArtifactStore>(fs, root));
}

}  // namespace slipway
