// A Filesystem that passes every call to another one (the local filesystem
// by default), for test doubles that change one or two calls: derive,
// override those, call the base for the rest. ReadFile and WriteFileAtomic
// are not forwarded: they keep Filesystem's composition of OpenSequential
// and OpenWritable, so a double that changes those changes them too.
// Thread safety: as the filesystem it forwards to.
#ifndef SLIPWAY_TESTING_FORWARDING_FILESYSTEM_H_
#define SLIPWAY_TESTING_FORWARDING_FILESYSTEM_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/filesystem.h"

namespace slipway {

class ForwardingFilesystem : public Filesystem {
 public:
  explicit ForwardingFilesystem(Filesystem* base = LocalFilesystem())
      : base_(base) {}

  absl::StatusOr<std::unique_ptr<SequentialFile>> OpenSequential(
      const std::string& path) override {
    return base_->OpenSequential(path);
  }
  absl::StatusOr<std::unique_ptr<WritableFile>> OpenWritable(
      const std::string& path) override {
    return base_->OpenWritable(path);
  }
  bool Exists(const std::string& path) override { return base_->Exists(path); }
  absl::StatusOr<uint64_t> FileSize(const std::string& path) override {
    return base_->FileSize(path);
  }
  absl::StatusOr<FileStamp> Stamp(const std::string& path) override {
    return base_->Stamp(path);
  }
  absl::Status CreateDirs(const std::string& path) override {
    return base_->CreateDirs(path);
  }
  absl::StatusOr<std::vector<std::string>> ListDir(
      const std::string& path) override {
    return base_->ListDir(path);
  }
  absl::Status RemoveFile(const std::string& path) override {
    return base_->RemoveFile(path);
  }
  absl::Status Rename(const std::string& from, const std::string& to) override {
    return base_->Rename(from, to);
  }
  absl::Status SyncDir(const std::string& dir) override {
    return base_->SyncDir(dir);
  }

 protected:
  Filesystem* base() const { return base_; }

 private:
  Filesystem* const base_;
};

}  // namespace slipway

#endif  // SLIPWAY_TESTING_FORWARDING_FILESYSTEM_H_
