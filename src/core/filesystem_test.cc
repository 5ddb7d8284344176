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

TEST(FilesystemTest, SkipMovesAheadWithoutReading) {
  TempDir dir;
  Filesystem* fs = LocalFilesystem();
  std::string path = JoinPath(dir.path(), "log.txt");
  ASSERT_TRUE(fs->WriteFileAtomic(path, "0123456789").ok());
  auto file = fs->OpenSequential(path);
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_TRUE((*file)->Skip(7).ok());
  char buffer[8];
  auto n = (*file)->Read(sizeof(buffer), buffer);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(std::string(buffer, *n), "789");
  ASSERT_TRUE((*file)->Skip(100).ok());
  n = (*file)->Read(sizeof(buffer), buffer);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);
}

TEST(FilesystemTest, PathHelpers) {
  EXPECT_EQ(JoinPath("a", "b"), "a/b");
  EXPECT_EQ(JoinPath("a/", "b"), "a/b");
  EXPECT_EQ(DirName("a/b/c"), "a/b");
  EXPECT_EQ(DirName("c"), ".");
  EXPECT_EQ(BaseName("a/b/c.csv"), "c.csv");
  EXPECT_EQ(ResolvePath("/spec", "data/x.csv"), "/spec/data/x.csv");
  EXPECT_EQ(ResolvePath("/spec", "/abs/x.csv"), "/abs/x.csv");
  EXPECT_EQ(ResolvePath("/spec", ""), "/spec");
  EXPECT_EQ(ResolvePath("", "x.csv"), "x.csv");
}

}  // namespace
}  // namespace slipway
