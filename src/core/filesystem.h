// Files, injected. Modules that touch disk (artifacts, data, store set-up)
// take a Filesystem* so tests can wrap it to inject faults (short reads,
// failed syncs). Paths are plain strings; callers never build them from
// unchecked input (see artifacts/ for how object names are validated). Thread
// safety: implementations are safe for concurrent use; a single SequentialFile
// or WritableFile is used by one thread at a time.
#ifndef SLIPWAY_CORE_FILESYSTEM_H_
#define SLIPWAY_CORE_FILESYSTEM_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace slipway {

// Reads a file front to back.
class SequentialFile {
 public:
  virtual ~SequentialFile() = default;
  // Reads up to `n` bytes into `scratch` and returns how many were read;
  // 0 means end of file.
  virtual absl::StatusOr<size_t> Read(size_t n, char* scratch) = 0;
  // Moves `n` bytes ahead without reading them (at most to the end).
  virtual absl::Status Skip(uint64_t n);
};

// Appends to a new file. Nothing is durable before Sync() returns OK.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual absl::Status Append(std::string_view data) = 0;
  virtual absl::Status Sync() = 0;
  virtual absl::Status Close() = 0;
};

class Filesystem {
 public:
  virtual ~Filesystem() = default;

  virtual absl::StatusOr<std::unique_ptr<SequentialFile>> OpenSequential(
      const std::string& path) = 0;
  // Creates (or truncates) `path`.
  virtual absl::StatusOr<std::unique_ptr<WritableFile>> OpenWritable(
      const std::string& path) = 0;

  virtual absl::StatusOr<std::string> ReadFile(const std::string& path);
  // Writes `contents` to a temporary file beside `path`, syncs it, renames it
  // over `path` and syncs the directory: readers see the old file or the new
  // one, never a torn one, even across a crash.
  virtual absl::Status WriteFileAtomic(const std::string& path,
                                       std::string_view contents);

  virtual bool Exists(const std::string& path) = 0;
  virtual absl::StatusOr<uint64_t> FileSize(const std::string& path) = 0;
  // What changes when a file is rewritten or appended to: its size and
  // last modification time. The default knows the size only.
  struct FileStamp {
    uint64_t size = 0;
    int64_t modified_micros = 0;  // unix micros; 0 when unknown
    bool operator==(const FileStamp& other) const {
      return size == other.size && modified_micros == other.modified_micros;
    }
  };
  virtual absl::StatusOr<FileStamp> Stamp(const std::string& path);
  // Creates `path` and its missing parents; OK when it already exists.
  virtual absl::Status CreateDirs(const std::string& path) = 0;
  // Names (not paths) of the entries of directory `path`, sorted.
  virtual absl::StatusOr<std::vector<std::string>> ListDir(
      const std::string& path) = 0;
  virtual absl::Status RemoveFile(const std::string& path) = 0;
  // Atomically replaces `to` with `from`.
  virtual absl::Status Rename(const std::string& from,
                              const std::string& to) = 0;
  // Makes directory entries (creations, renames) in `dir` durable.
  virtual absl::Status SyncDir(const std::string& dir) = 0;
};

// The process-wide local (POSIX) filesystem. Never destroyed.
Filesystem* LocalFilesystem();

// "a/b" + "c" -> "a/b/c".
std::string JoinPath(std::string_view dir, std::string_view name);
// `path` as written in a spec, relative to `base_dir`: an absolute path as
// it is, a relative one joined to base_dir, an empty one base_dir itself.
std::string ResolvePath(std::string_view base_dir, std::string_view path);
// "a/b/c" -> "a/b"; "c" -> ".".
std::string DirName(std::string_view path);
// "a/b/c.csv" -> "c.csv".
std::string BaseName(std::string_view path);

}  // namespace slipway

#endif  // SLIPWAY_CORE_FILESYSTEM_H_
