#include "models/model_bundle.h"

#include <archive.h>
#include <archive_entry.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <latch>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/hash.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/temp_dir.h"

namespace slipway {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

using Files = std::map<std::string, std::string>;

const Files& SampleFiles() {
  static const Files* files = new Files{
      {"model.yaml", "format: python\nfile: model.joblib\n"},
      {"model.joblib", std::string("\x80\x04\x95\x00binary\0bytes", 18)},
      {"helpers/__init__.py", ""},
      {"helpers/text.py", "def clean(s):\n    return s.strip()\n"},
      {"helpers/data/vocab.txt", "a\nb\nc\n"},
      {"z.txt", "last"},
  };
  return *files;
}

void WriteFile(const std::string& path, const std::string& content) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary);
  out << content;
  ASSERT_TRUE(out.good()) << path;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

// Writes `files` under `dir`, in map order or reversed; an empty directory
// "empty/" too.
void WriteFolder(const std::string& dir, const Files& files, bool reversed) {
  std::vector<std::pair<std::string, std::string>> order(files.begin(),
                                                         files.end());
  if (reversed) std::reverse(order.begin(), order.end());
  if (!reversed) fs::create_directories(dir + "/empty");
  for (const auto& [path, content] : order) WriteFile(dir + "/" + path, content);
  if (reversed) fs::create_directories(dir + "/empty");
}

// Every regular file under `dir`, by relative path.
Files FolderFiles(const std::string& dir) {
  Files files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) {
      files[entry.path().lexically_relative(dir).generic_string()] =
          ReadFile(entry.path().string());
    }
  }
  return files;
}

struct Entry {
  std::string path;
  mode_t type;
  std::string content;
  std::string link;  // symlink target, or hardlink source with AE_IFREG
};

Entry File(const std::string& path, const std::string& content) {
  return {path, AE_IFREG, content, ""};
}
Entry Dir(const std::string& path) { return {path, AE_IFDIR, "", ""}; }

// A tar written directly with libarchive, as an attacker could craft it.
std::string CraftTar(const std::vector<Entry>& entries) {
  std::string tar;
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_open(
      a, &tar, nullptr,
      [](archive*, void* out, const void* data, size_t size) -> la_ssize_t {
        static_cast<std::string*>(out)->append(static_cast<const char*>(data),
                                               size);
        return static_cast<la_ssize_t>(size);
      },
      nullptr);
  for (const Entry& e : entries) {
    archive_entry* header = archive_entry_new();
    archive_entry_set_pathname(header, e.path.c_str());
    archive_entry_set_filetype(header, e.type);
    archive_entry_set_perm(header, 0644);
    if (e.type == AE_IFLNK) {
      archive_entry_set_symlink(header, e.link.c_str());
    } else if (!e.link.empty()) {
      archive_entry_set_hardlink(header, e.link.c_str());
    } else {
      archive_entry_set_size(header, static_cast<la_int64_t>(e.content.size()));
    }
    EXPECT_EQ(archive_write_header(a, header), ARCHIVE_OK)
        << archive_error_string(a);
    if (!e.content.empty()) {
      archive_write_data(a, e.content.data(), e.content.size());
    }
    archive_entry_free(header);
  }
  archive_write_close(a);
  archive_write_free(a);
  return tar;
}

TEST(ModelBundleTest, SameFolderGivesTheSameBytes) {
  TempDir tmp;
  const std::string first = tmp.path() + "/first";
  const std::string second = tmp.path() + "/second";
  WriteFolder(first, SampleFiles(), /*reversed=*/false);
  WriteFolder(second, SampleFiles(), /*reversed=*/true);
  // Different times and permissions on disk do not reach the bundle.
  fs::last_write_time(second + "/z.txt",
                      fs::last_write_time(second + "/z.txt") -
                          std::chrono::hours(48));
  fs::permissions(second + "/model.yaml", fs::perms::owner_all);

  absl::StatusOr<std::string> a = PackModelFolder(first);
  ASSERT_TRUE(a.ok()) << a.status();
  absl::StatusOr<std::string> again = PackModelFolder(first);
  ASSERT_TRUE(again.ok()) << again.status();
  absl::StatusOr<std::string> b = PackModelFolder(second);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(*a, *again);
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(Sha256Hex(*a), Sha256Hex(*b));
}

TEST(ModelBundleTest, RoundTripsEveryFile) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/model";
  WriteFolder(dir, SampleFiles(), false);
  absl::StatusOr<std::string> bundle = PackModelFolder(dir);
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  absl::StatusOr<Files> files = ReadModelBundle(*bundle);
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_EQ(*files, SampleFiles());

  absl::StatusOr<std::string> unpacked =
      UnpackedBundleDir(*bundle, tmp.path() + "/work");
  ASSERT_TRUE(unpacked.ok()) << unpacked.status();
  EXPECT_EQ(*unpacked, tmp.path() + "/work/bundles/" + Sha256Hex(*bundle));
  EXPECT_EQ(FolderFiles(*unpacked), SampleFiles());
  // Unpacked again: the folder is reused, and repacks to the same bytes
  // (the empty directory is the only thing a bundle of files drops).
  EXPECT_EQ(*UnpackedBundleDir(*bundle, tmp.path() + "/work"), *unpacked);
  fs::create_directories(*unpacked + "/empty");
  EXPECT_EQ(*PackModelFolder(*unpacked), *bundle);
}

TEST(ModelBundleTest, OneFileFolderAndHiddenFiles) {
  TempDir tmp;
  WriteFile(tmp.path() + "/m/.hidden", "h");
  WriteFile(tmp.path() + "/m/model.pt", "pt");
  absl::StatusOr<std::string> bundle = PackModelFolder(tmp.path() + "/m");
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  EXPECT_THAT(*ReadModelBundle(*bundle),
              ElementsAre(Pair(".hidden", "h"), Pair("model.pt", "pt")));
}

TEST(ModelBundleTest, FolderWithALinkOrNoFolderIsRefused) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/model";
  WriteFolder(dir, SampleFiles(), false);
  ASSERT_EQ(::symlink("/etc/passwd", (dir + "/helpers/passwd").c_str()), 0);
  absl::StatusOr<std::string> bundle = PackModelFolder(dir);
  EXPECT_EQ(bundle.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bundle.status().message()),
              HasSubstr("model folder '" + dir +
                        "': 'helpers/passwd' is a symbolic link"));

  bundle = PackModelFolder(tmp.path() + "/missing");
  EXPECT_EQ(bundle.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bundle.status().message()),
              HasSubstr(tmp.path() + "/missing"));
}

TEST(ModelBundleTest, CraftedEntriesAreRefused) {
  struct Case {
    std::vector<Entry> entries;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{File("model.yaml", "x"), File("../x", "evil")},
       "entry '../x' leaves the folder"},
      {{File("sub/../../x", "evil")}, "entry 'sub/../../x' leaves"},
      {{File("/etc/cron.d/x", "evil")},
       "entry '/etc/cron.d/x' is an absolute path"},
      {{{"link", AE_IFLNK, "", "/etc/passwd"}},
       "entry 'link' is a link or a special file"},
      {{File("a", "x"), {"b", AE_IFREG, "", "a"}},
       "entry 'b' is a link or a special file"},
      {{{"fifo", AE_IFIFO, "", ""}},
       "entry 'fifo' is a link or a special file"},
      {{File("a", "1"), File("./a", "2")}, "holds 'a' twice"},
      {{File("a", "1"), File("a/b", "2")},
       "'a' is a file and 'a/b' needs it to be a directory"},
  };
  for (const Case& c : cases) {
    const std::string tar = CraftTar(c.entries);
    absl::StatusOr<Files> files = ReadModelBundle(tar);
    EXPECT_EQ(files.status().code(), absl::StatusCode::kInvalidArgument)
        << c.message;
    EXPECT_THAT(std::string(files.status().message()), HasSubstr(c.message));
    TempDir work;
    EXPECT_FALSE(UnpackedBundleDir(tar, work.path()).ok()) << c.message;
    EXPECT_FALSE(fs::exists(work.path() + "/x"));
    EXPECT_FALSE(fs::exists(work.path() + "/bundles/" + Sha256Hex(tar)));
  }
  EXPECT_THAT(std::string(ReadModelBundle("not a tar").status().message()),
              HasSubstr("model bundle: not a tar archive"));
}

TEST(ModelBundleTest, DotPrefixedPathsAreRead) {
  const std::string tar = CraftTar(
      {Dir("./"), Dir("./sub"), File("./sub/m.py", "x")});
  absl::StatusOr<Files> files = ReadModelBundle(tar);
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_THAT(*files, ElementsAre(Pair("sub/m.py", "x")));
}

TEST(ModelBundleTest, ConcurrentUnpackersLeaveOneCompleteFolder) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/model";
  Files files = SampleFiles();
  files["weights.bin"] = std::string(1 << 20, 'w');
  WriteFolder(dir, files, false);
  absl::StatusOr<std::string> bundle = PackModelFolder(dir);
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  const std::string work = tmp.path() + "/work";

  constexpr int kThreads = 4;
  std::vector<absl::StatusOr<std::string>> results(kThreads);
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      results[i] = UnpackedBundleDir(*bundle, work);
    });
  }
  for (std::thread& t : threads) t.join();
  for (const auto& result : results) {
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(*result, work + "/bundles/" + Sha256Hex(*bundle));
  }
  EXPECT_EQ(FolderFiles(*results[0]), files);
  // The losers' copies are gone.
  std::vector<std::string> left;
  for (const auto& entry : fs::directory_iterator(work + "/bundles")) {
    left.push_back(entry.path().filename().string());
  }
  EXPECT_THAT(left, ElementsAre(Sha256Hex(*bundle)));
}

}  // namespace
}  // namespace slipway
