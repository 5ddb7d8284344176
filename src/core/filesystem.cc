#include "core/filesystem.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "core/status.h"

namespace slipway {
namespace {

absl::Status PosixError(std::string_view what, const std::string& path,
                        int err) {
  std::string message = std::string(what) + " '" + path + "': " + strerror(err);
  switch (err) {
    case ENOENT:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(message);
    case EEXIST:
      return absl::AlreadyExistsError(message);
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(message);
    default:
      return absl::InternalError(message);
  }
}

}  // namespace

absl::Status SequentialFile::Skip(uint64_t n) {
  char scratch[64 * 1024];
  while (n > 0) {
    ASSIGN_OR_RETURN(size_t read,
                     Read(static_cast<size_t>(std::min<uint64_t>(
                              n, sizeof(scratch))),
                          scratch));
    if (read == 0) break;
    n -= read;
  }
  return absl::OkStatus();
}

namespace {

class PosixSequentialFile : public SequentialFile {
 public:
  PosixSequentialFile(std::string path, int fd)
      : path_(std::move(path)), fd_(fd) {}
  ~PosixSequentialFile() override { close(fd_); }

  absl::StatusOr<size_t> Read(size_t n, char* scratch) override {
    while (true) {
      ssize_t r = ::read(fd_, scratch, n);
      if (r >= 0) return static_cast<size_t>(r);
      if (errno == EINTR) continue;
      return PosixError("cannot read", path_, errno);
    }
  }

  absl::Status Skip(uint64_t n) override {
    if (::lseek(fd_, static_cast<off_t>(n), SEEK_CUR) < 0) {
      return PosixError("cannot seek in", path_, errno);
    }
    return absl::OkStatus();
  }

 private:
  const std::string path_;
  const int fd_;
};

class PosixWritableFile : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd)
      : path_(std::move(path)), fd_(fd) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) close(fd_);
  }

  absl::Status Append(std::string_view data) override {
    while (!data.empty()) {
      ssize_t w = ::write(fd_, data.data(), data.size());
      if (w < 0) {
        if (errno == EINTR) continue;
        return PosixError("cannot write", path_, errno);
      }
      data.remove_prefix(static_cast<size_t>(w));
    }
    return absl::OkStatus();
  }

  absl::Status Sync() override {
    if (::fsync(fd_) != 0) return PosixError("cannot sync", path_, errno);
    return absl::OkStatus();
  }

  absl::Status Close() override {
    if (fd_ < 0) return absl::OkStatus();
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) return PosixError("cannot close", path_, errno);
    return absl::OkStatus();
  }

 private:
  const std::string path_;
  int fd_;
};

class PosixFilesystem : public Filesystem {
 public:
  absl::StatusOr<std::unique_ptr<SequentialFile>> OpenSequential(
      const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return PosixError("cannot open", path, errno);
    return std::make_unique<PosixSequentialFile>(path, fd);
  }

  absl::StatusOr<std::unique_ptr<WritableFile>> OpenWritable(
      const std::string& path) override {
    int fd =
        ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return PosixError("cannot create", path, errno);
    return std::make_unique<PosixWritableFile>(path, fd);
  }

  bool Exists(const std::string& path) override {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
  }

  absl::StatusOr<uint64_t> FileSize(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
      return PosixError("cannot stat", path, errno);
    }
    return static_cast<uint64_t>(st.st_size);
  }

  absl::StatusOr<FileStamp> Stamp(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
      return PosixError("cannot stat", path, errno);
    }
    FileStamp stamp;
    stamp.size = static_cast<uint64_t>(st.st_size);
    stamp.modified_micros = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000 +
                            st.st_mtim.tv_nsec / 1000;
    return stamp;
  }

  absl::Status CreateDirs(const std::string& path) override {
    if (path.empty()) return absl::OkStatus();
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) {
      if (S_ISDIR(st.st_mode)) return absl::OkStatus();
      return absl::FailedPreconditionError("'" + path +
                                           "' exists and is not a directory");
    }
    std::string parent = DirName(path);
    if (parent != path && parent != "." && parent != "/") {
      RETURN_IF_ERROR(CreateDirs(parent));
    }
    if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
      return PosixError("cannot create directory", path, errno);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<std::string>> ListDir(
      const std::string& path) override {
    DIR* dir = ::opendir(path.c_str());
    if (dir == nullptr) return PosixError("cannot list", path, errno);
    std::vector<std::string> names;
    while (struct dirent* entry = ::readdir(dir)) {
      std::string name = entry->d_name;
      if (name != "." && name != "..") names.push_back(std::move(name));
    }
    ::closedir(dir);
    std::sort(names.begin(), names.end());
    return names;
  }

  absl::Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) {
      return PosixError("cannot remove", path, errno);
    }
    return absl::OkStatus();
  }

  absl::Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return PosixError("cannot rename to '" + to + "'", from, errno);
    }
    return absl::OkStatus();
  }

  absl::Status SyncDir(const std::string& dir) override {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return PosixError("cannot open directory", dir, errno);
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) return PosixError("cannot sync directory", dir, err);
    return absl::OkStatus();
  }
};

}  // namespace

absl::StatusOr<Filesystem::FileStamp> Filesystem::Stamp(
    const std::string& path) {
  FileStamp stamp;
  ASSIGN_OR_RETURN(stamp.size, FileSize(path));
  return stamp;
}

absl::StatusOr<std::string> Filesystem::ReadFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<SequentialFile> file, OpenSequential(path));
  std::string contents;
  char buffer[1 << 16];
  while (true) {
    ASSIGN_OR_RETURN(size_t n, file->Read(sizeof(buffer), buffer));
    if (n == 0) break;
    contents.append(buffer, n);
  }
  return contents;
}

absl::Status Filesystem::WriteFileAtomic(const std::string& path,
                                         std::string_view contents) {
  static std::atomic<uint64_t> counter{0};
  std::string temp = path + ".tmp." + std::to_string(::getpid()) + "." +
                     std::to_string(counter.fetch_add(1));
  {
    ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file, OpenWritable(temp));
    absl::Status s = file->Append(contents);
    if (s.ok()) s = file->Sync();
    if (s.ok()) s = file->Close();
    if (!s.ok()) {
      RemoveFile(temp).IgnoreError();
      return s;
    }
  }
  absl::Status s = Rename(temp, path);
  if (!s.ok()) {
    RemoveFile(temp).IgnoreError();
    return s;
  }
  return SyncDir(DirName(path));
}

Filesystem* LocalFilesystem() {
  static Filesystem* fs = new PosixFilesystem();
  return fs;
}

std::string JoinPath(std::string_view dir, std::string_view name) {
  if (dir.empty()) return std::string(name);
  std::string path(dir);
  if (path.back() != '/') path.push_back('/');
  path.append(name);
  return path;
}

std::string ResolvePath(std::string_view base_dir, std::string_view path) {
  if (path.empty()) return std::string(base_dir);
  if (path.front() == '/') return std::string(path);
  return JoinPath(base_dir, path);
}

std::string DirName(std::string_view path) {
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return ".";
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

std::string BaseName(std::string_view path) {
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return std::string(path);
  return std::string(path.substr(slash + 1));
}

}  // namespace slipway
