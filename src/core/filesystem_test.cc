#include "core/filesystem.h"

#include <cstdlib>

#include "gtest/gtest.h"
#include "testing/temp_dir.h"

namespace slipway {
namespace {

TEST(FilesystemTest, WriteAtomicThenRead) {
  TempDir dir;
  Filesystem* fs = LocalFilesystem();
  std::string path = JoinPath(dir.path(), "a/b/file.txt");
  ASSERT_TRUE(fs->CreateDirs(DirName(path)).ok());
  ASSERT_TRUE(fs->WriteFileAtomic(path, "hello").ok());
  ASSERT_TRUE(fs->WriteFileAtomic(path, "world").ok());
  EXPECT_EQ(*fs->ReadFile(path), "world");
  EXPECT_EQ(*fs->FileSize(path), 5u);
  // No temporary file is left beside it.
  EXPECT_EQ(*fs->ListDir(DirName(path)), std::vector<std::string>{"file.txt"});
}

TEST(FilesystemTest, MissingFileIsNotFound) {
  TempDir dir;
  auto r = LocalFilesystem()->ReadFile(JoinPath(dir.path(), "nope"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("nope"), std::string_view::npos);
}

TEST(FilesystemTest, PathHelpers) {
  EXPECT_EQ(JoinPath("a", "b"), "a/b");
  EXPECT_EQ(JoinPath("a/", "b"), "a/b");
  EXPECT_EQ(DirName("a/b/c"), "a/b");
  EXPECT_EQ(DirName("c"), ".");
  EXPECT_EQ(BaseName("a/b/c.csv"), "c.csv");
}

}  // namespace
}  // namespace slipway
