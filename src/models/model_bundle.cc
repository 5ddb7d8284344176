#include "models/model_bundle.h"

#include <archive.h>
#include <archive_entry.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/filesystem.h"
#include "core/hash.h"
#include "core/status.h"

namespace slipway {
namespace {

// libarchive is loaded on the first bundle (dlopen), as LibTorch is: the
// `slipway` binary does not link it, so the compression, XML and Unicode
// libraries it brings are mapped only by a server that reads or writes a
// model bundle, never at every start.
#define SLIPWAY_LIBARCHIVE_FUNCTIONS(X) \
  X(archive_entry_filetype) \
  X(archive_entry_free) \
  X(archive_entry_hardlink) \
  X(archive_entry_new) \
  X(archive_entry_pathname) \
  X(archive_entry_set_filetype) \
  X(archive_entry_set_gid) \
  X(archive_entry_set_mtime) \
  X(archive_entry_set_pathname) \
  X(archive_entry_set_perm) \
  X(archive_entry_set_size) \
  X(archive_entry_set_uid) \
  X(archive_entry_size) \
  X(archive_entry_symlink) \
  X(archive_error_string) \
  X(archive_read_data) \
  X(archive_read_free) \
  X(archive_read_new) \
  X(archive_read_next_header) \
  X(archive_read_open_memory) \
  X(archive_read_support_format_tar) \
  X(archive_write_close) \
  X(archive_write_data) \
  X(archive_write_free) \
  X(archive_write_header) \
  X(archive_write_new) \
  X(archive_write_open) \
  X(archive_write_set_format_pax_restricted)

struct LibArchive {
#define SLIPWAY_DECLARE(name) decltype(&::name) name = nullptr;
  SLIPWAY_LIBARCHIVE_FUNCTIONS(SLIPWAY_DECLARE)
#undef SLIPWAY_DECLARE
  std::string error;  // why it did not load; empty when it did
};

const LibArchive& Lib() {
  static const LibArchive* const lib = [] {
    auto* loaded = new LibArchive;
    void* handle = dlopen("libarchive.so.13", RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* reason = dlerror();
      loaded->error = reason != nullptr ? reason : "dlopen failed";
      return loaded;
    }
#define SLIPWAY_LOAD(name)                                                 \
  loaded->name = reinterpret_cast<decltype(&::name)>(dlsym(handle, #name)); \
  if (loaded->name == nullptr) {                                           \
    loaded->error = "libarchive.so.13 has no " #name;                      \
    return loaded;                                                         \
  }
    SLIPWAY_LIBARCHIVE_FUNCTIONS(SLIPWAY_LOAD)
#undef SLIPWAY_LOAD
    return loaded;
  }();
  return *lib;
}

// FailedPrecondition when libarchive cannot be loaded.
absl::Status LibArchiveLoaded() {
  if (Lib().error.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("model bundles need libarchive, which did not load (",
                   Lib().error, "); install Debian's libarchive13"));
}


namespace fs = std::filesystem;

struct ArchiveWriteDeleter {
  void operator()(archive* a) const { Lib().archive_write_free(a); }
};
struct ArchiveReadDeleter {
  void operator()(archive* a) const { Lib().archive_read_free(a); }
};
struct EntryDeleter {
  void operator()(archive_entry* e) const { Lib().archive_entry_free(e); }
};
using ArchiveWriter = std::unique_ptr<archive, ArchiveWriteDeleter>;
using ArchiveReader = std::unique_ptr<archive, ArchiveReadDeleter>;
using ArchiveEntry = std::unique_ptr<archive_entry, EntryDeleter>;

absl::Status FolderError(const std::string& dir, const std::string& what) {
  return absl::InvalidArgumentError(
      absl::StrCat("model folder '", dir, "': ", what));
}

absl::Status BundleError(const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("model bundle: ", what));
}

std::string ArchiveMessage(archive* a) {
  const char* message = Lib().archive_error_string(a);
  return message == nullptr ? std::string("unknown libarchive error")
                            : std::string(message);
}

// One file or directory of a folder being packed.
struct FolderEntry {
  std::string path;  // relative to the folder, '/'-separated
  bool directory = false;
};

const char* KindOf(fs::file_type type) {
  switch (type) {
    case fs::file_type::symlink:
      return "a symbolic link";
    case fs::file_type::socket:
      return "a socket";
    case fs::file_type::fifo:
      return "a fifo";
    case fs::file_type::block:
    case fs::file_type::character:
      return "a device";
    default:
      return "neither a file nor a directory";
  }
}

absl::StatusOr<std::vector<FolderEntry>> ListFolder(const std::string& dir) {
  std::error_code ec;
  const fs::file_status root = fs::status(dir, ec);
  if (ec || root.type() != fs::file_type::directory) {
    return FolderError(dir, ec ? "cannot be read: " + ec.message()
                               : std::string("is not a directory"));
  }
  std::vector<FolderEntry> entries;
  fs::recursive_directory_iterator it(dir, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const fs::path relative = it->path().lexically_relative(dir);
    const fs::file_type type = it->symlink_status(ec).type();
    if (ec) break;
    if (type != fs::file_type::regular && type != fs::file_type::directory) {
      return FolderError(
          dir, absl::StrCat("'", relative.generic_string(), "' is ",
                            KindOf(type),
                            "; a model folder holds only regular files and "
                            "directories (copy the target in its place)"));
    }
    entries.push_back({relative.generic_string(),
                       type == fs::file_type::directory});
    if (entries.size() > static_cast<size_t>(kMaxBundleEntries)) {
      return FolderError(dir, absl::StrCat("holds more than ",
                                           kMaxBundleEntries,
                                           " files and directories; keep "
                                           "only what the model needs"));
    }
  }
  if (ec) return FolderError(dir, "cannot be listed: " + ec.message());
  // Bytewise order: a directory sorts before everything inside it.
  std::sort(entries.begin(), entries.end(),
            [](const FolderEntry& a, const FolderEntry& b) {
              return a.path < b.path;
            });
  return entries;
}

la_ssize_t AppendToBundle(archive*, void* bundle, const void* data,
                          size_t size) {
  static_cast<std::string*>(bundle)->append(static_cast<const char*>(data),
                                            size);
  return static_cast<la_ssize_t>(size);
}

// A path inside the bundle as stored: no leading "./", no empty or "."
// components; empty when it is the folder itself.
absl::StatusOr<std::string> CleanEntryPath(const std::string& raw) {
  const std::string fix =
      "bundles hold paths relative to the model folder; pack the folder "
      "with `slipway models import` or a step's model/ directory";
  if (raw.empty()) return BundleError("an entry has an empty path; " + fix);
  if (raw.front() == '/') {
    return BundleError(absl::StrCat("entry '", raw, "' is an absolute path; ",
                                    fix));
  }
  std::string clean;
  size_t start = 0;
  while (start <= raw.size()) {
    size_t end = raw.find('/', start);
    if (end == std::string::npos) end = raw.size();
    const std::string part = raw.substr(start, end - start);
    if (part == "..") {
      return BundleError(
          absl::StrCat("entry '", raw, "' leaves the folder ('..'); ", fix));
    }
    if (!part.empty() && part != ".") {
      if (!clean.empty()) clean += '/';
      clean += part;
    }
    start = end + 1;
  }
  return clean;
}

// Writes `content` to a new file `path` and syncs it.
absl::Status WriteNewFile(const std::string& path, std::string_view content) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                        0644);
  if (fd < 0) {
    return absl::InternalError(
        absl::StrCat("cannot create '", path, "': ", std::strerror(errno)));
  }
  size_t written = 0;
  while (written < content.size()) {
    const ssize_t n =
        ::write(fd, content.data() + written, content.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int error = errno;
      ::close(fd);
      return absl::InternalError(
          absl::StrCat("cannot write '", path, "': ", std::strerror(error)));
    }
    written += static_cast<size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  const int error = errno;
  ::close(fd);
  if (!synced) {
    return absl::InternalError(
        absl::StrCat("cannot sync '", path, "': ", std::strerror(error)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> PackModelFolder(const std::string& dir) {
  RETURN_IF_ERROR(LibArchiveLoaded());
  ASSIGN_OR_RETURN(std::vector<FolderEntry> entries, ListFolder(dir));
  std::string bundle;
  ArchiveWriter writer(Lib().archive_write_new());
  if (writer == nullptr) return absl::InternalError("libarchive: out of memory");
  if (Lib().archive_write_set_format_pax_restricted(writer.get()) != ARCHIVE_OK ||
      Lib().archive_write_open(writer.get(), &bundle, nullptr, AppendToBundle,
                         nullptr) != ARCHIVE_OK) {
    return absl::InternalError(absl::StrCat(
        "packing model folder '", dir, "': ", ArchiveMessage(writer.get())));
  }
  int64_t total_bytes = 0;
  for (const FolderEntry& entry : entries) {
    std::string content;
    if (!entry.directory) {
      ASSIGN_OR_RETURN(content,
                       LocalFilesystem()->ReadFile(JoinPath(dir, entry.path)),
                       "model folder '" + dir + "'");
      total_bytes += static_cast<int64_t>(content.size());
      if (total_bytes > kMaxBundleBytes) {
        return FolderError(dir, absl::StrCat("holds more than ",
                                             kMaxBundleBytes,
                                             " bytes of files; keep only what "
                                             "the model needs"));
      }
    }
    ArchiveEntry header(Lib().archive_entry_new());
    if (header == nullptr) {
      return absl::InternalError("libarchive: out of memory");
    }
    Lib().archive_entry_set_pathname(header.get(), entry.path.c_str());
    Lib().archive_entry_set_filetype(header.get(),
                               entry.directory ? AE_IFDIR : AE_IFREG);
    Lib().archive_entry_set_perm(header.get(), entry.directory ? 0755 : 0644);
    Lib().archive_entry_set_size(header.get(),
                           static_cast<la_int64_t>(content.size()));
    Lib().archive_entry_set_mtime(header.get(), 0, 0);
    Lib().archive_entry_set_uid(header.get(), 0);
    Lib().archive_entry_set_gid(header.get(), 0);
    const bool written =
        Lib().archive_write_header(writer.get(), header.get()) == ARCHIVE_OK &&
        (content.empty() ||
         Lib().archive_write_data(writer.get(), content.data(), content.size()) ==
             static_cast<la_ssize_t>(content.size()));
    if (!written) {
      return absl::InternalError(absl::StrCat("packing '", entry.path,
                                              "' of model folder '", dir,
                                              "': ",
                                              ArchiveMessage(writer.get())));
    }
  }
  if (Lib().archive_write_close(writer.get()) != ARCHIVE_OK) {
    return absl::InternalError(absl::StrCat(
        "packing model folder '", dir, "': ", ArchiveMessage(writer.get())));
  }
  return bundle;
}

absl::StatusOr<std::map<std::string, std::string>> ReadModelBundle(
    std::string_view bundle) {
  RETURN_IF_ERROR(LibArchiveLoaded());
  ArchiveReader reader(Lib().archive_read_new());
  if (reader == nullptr) return absl::InternalError("libarchive: out of memory");
  Lib().archive_read_support_format_tar(reader.get());
  if (Lib().archive_read_open_memory(reader.get(), bundle.data(), bundle.size()) !=
      ARCHIVE_OK) {
    return BundleError(absl::StrCat("not a tar archive (",
                                    ArchiveMessage(reader.get()),
                                    "); a bundle is a model folder packed by "
                                    "Slipway"));
  }
  std::map<std::string, std::string> files;
  int entries = 0;
  int64_t total_bytes = 0;
  while (true) {
    archive_entry* entry = nullptr;
    const int next = Lib().archive_read_next_header(reader.get(), &entry);
    if (next == ARCHIVE_EOF) break;
    if (next != ARCHIVE_OK) {
      return BundleError(absl::StrCat("cannot be read: ",
                                      ArchiveMessage(reader.get())));
    }
    if (++entries > kMaxBundleEntries) {
      return BundleError(absl::StrCat("holds more than ", kMaxBundleEntries,
                                      " entries; keep only what the model "
                                      "needs in its folder"));
    }
    const char* raw_path = Lib().archive_entry_pathname(entry);
    const std::string raw = raw_path == nullptr ? "" : raw_path;
    ASSIGN_OR_RETURN(std::string path, CleanEntryPath(raw));
    const mode_t type = Lib().archive_entry_filetype(entry);
    if (Lib().archive_entry_hardlink(entry) != nullptr ||
        Lib().archive_entry_symlink(entry) != nullptr ||
        (type != AE_IFREG && type != AE_IFDIR)) {
      return BundleError(absl::StrCat(
          "entry '", raw,
          "' is a link or a special file; a model folder holds only regular "
          "files and directories (copy the target in its place)"));
    }
    if (type == AE_IFDIR) continue;
    if (path.empty()) {
      return BundleError(absl::StrCat("file entry '", raw,
                                      "' has no name inside the folder"));
    }
    const int64_t size = Lib().archive_entry_size(entry);
    if (size < 0 || size > kMaxBundleBytes - total_bytes) {
      return BundleError(absl::StrCat("holds more than ", kMaxBundleBytes,
                                      " bytes of files (at '", path,
                                      "'); keep only what the model needs"));
    }
    std::string content(static_cast<size_t>(size), '\0');
    size_t read = 0;
    while (read < content.size()) {
      const la_ssize_t n = Lib().archive_read_data(reader.get(), content.data() + read,
                                             content.size() - read);
      if (n <= 0) {
        return BundleError(absl::StrCat("entry '", path, "' is truncated: ",
                                        n < 0 ? ArchiveMessage(reader.get())
                                              : std::string("end of data")));
      }
      read += static_cast<size_t>(n);
    }
    total_bytes += size;
    if (!files.emplace(path, std::move(content)).second) {
      return BundleError(absl::StrCat("holds '", path,
                                      "' twice; pack the folder again"));
    }
  }
  // A file cannot also be a directory of another entry ("a" and "a/b").
  for (const auto& [path, content] : files) {
    auto inside = files.lower_bound(path + "/");
    if (inside != files.end() && inside->first.rfind(path + "/", 0) == 0) {
      return BundleError(absl::StrCat("'", path, "' is a file and '",
                                      inside->first,
                                      "' needs it to be a directory"));
    }
  }
  return files;
}

absl::StatusOr<std::string> UnpackedBundleDir(std::string_view bundle,
                                              const std::string& work_dir) {
  const std::string bundles_dir = JoinPath(work_dir, "bundles");
  const std::string final_dir = JoinPath(bundles_dir, Sha256Hex(bundle));
  std::error_code ec;
  if (fs::is_directory(final_dir, ec)) return final_dir;
  ASSIGN_OR_RETURN(auto files, ReadModelBundle(bundle));
  fs::create_directories(bundles_dir, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat(
        "cannot create '", bundles_dir, "' to unpack a model bundle: ",
        ec.message(), "; check the work directory's permissions"));
  }
  std::string temp_template = final_dir + ".tmp-XXXXXX";
  if (::mkdtemp(temp_template.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("cannot create a folder beside '",
                                            final_dir,
                                            "': ", std::strerror(errno)));
  }
  const std::string temp_dir = temp_template;
  auto unpack = [&]() -> absl::Status {
    for (const auto& [path, content] : files) {
      const fs::path file = fs::path(temp_dir) / path;
      fs::create_directories(file.parent_path(), ec);
      if (ec) {
        return absl::InternalError(absl::StrCat(
            "cannot create '", file.parent_path().string(), "': ",
            ec.message()));
      }
      RETURN_IF_ERROR(WriteNewFile(file.string(), content));
    }
    if (::rename(temp_dir.c_str(), final_dir.c_str()) == 0) {
      return absl::OkStatus();
    }
    // Another unpacker renamed its complete copy into place first.
    if ((errno == EEXIST || errno == ENOTEMPTY) &&
        fs::is_directory(final_dir, ec)) {
      return absl::OkStatus();
    }
    return absl::InternalError(absl::StrCat("cannot rename '", temp_dir,
                                            "' to '", final_dir,
                                            "': ", std::strerror(errno)));
  };
  const absl::Status unpacked = unpack();
  // Gone after a successful rename; otherwise our copy is discarded.
  fs::remove_all(temp_dir, ec);
  RETURN_IF_ERROR(unpacked, "unpacking a model bundle");
  return final_dir;
}

}  // namespace slipway
