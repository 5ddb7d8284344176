#include "artifacts/local_artifact_store.h"

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "core/filesystem.h"
#include "core/hash.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/forwarding_filesystem.h"
#include "testing/temp_dir.h"

namespace slipway {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// The local filesystem, except that syncing a file fails while
// `fail_file_sync` is set (a full or failing disk in the middle of a Put).
class FailingSyncFilesystem : public ForwardingFilesystem {
 public:
  bool fail_file_sync = false;

  absl::StatusOr<std::unique_ptr<WritableFile>> OpenWritable(
      const std::string& path) override {
    auto file = base()->OpenWritable(path);
    if (!file.ok() || !fail_file_sync) return file;
    return std::unique_ptr<WritableFile>(
        std::make_unique<FailingSyncFile>(std::move(*file)));
  }

 private:
  class FailingSyncFile : public WritableFile {
   public:
    explicit FailingSyncFile(std::unique_ptr<WritableFile> base)
        : base_(std::move(base)) {}
    absl::Status Append(std::string_view data) override {
      return base_->Append(data);
    }
    absl::Status Sync() override {
      return absl::ResourceExhaustedError("no space left on device");
    }
    absl::Status Close() override { return base_->Close(); }

   private:
    std::unique_ptr<WritableFile> base_;
  };
};

class LocalArtifactStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = OpenLocalArtifactStore(LocalFilesystem(), root());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  std::string root() const { return JoinPath(temp_.path(), "artifacts"); }
  std::string ObjectPath(const std::string& sha256) const {
    return root() + "/objects/" + sha256.substr(0, 2) + "/" + sha256.substr(2);
  }
  std::vector<std::string> TempEntries() {
    return *LocalFilesystem()->ListDir(JoinPath(root(), "tmp"));
  }

  TempDir temp_;
  std::unique_ptr<ArtifactStore> store_;
};

TEST_F(LocalArtifactStoreTest, PutThenGetRoundTripsUnderTheContentHash) {
  const std::string model = "{\"learner\": {\"trees\": [1, 2, 3]}}";
  auto name = store_->Put(model);
  ASSERT_TRUE(name.ok()) << name.status();
  EXPECT_EQ(*name, Sha256Hex(model));
  EXPECT_TRUE(LocalFilesystem()->Exists(ObjectPath(*name)));
  EXPECT_TRUE(store_->Contains(*name));

  auto contents = store_->Get(*name);
  ASSERT_TRUE(contents.ok()) << contents.status();
  EXPECT_EQ(*contents, model);

  auto empty = store_->Put("");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(*store_->Get(*empty), "");

  std::vector<std::string> expected = {*name, *empty};
  std::sort(expected.begin(), expected.end());
  auto listed = store_->List();
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(*listed, expected);
  EXPECT_THAT(TempEntries(), IsEmpty());
}

TEST_F(LocalArtifactStoreTest, PutIsIdempotent) {
  auto first = store_->Put("same bytes");
  auto second = store_->Put("same bytes");
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(*first, *second);
  EXPECT_THAT(*store_->List(), ElementsAre(*first));
  EXPECT_THAT(TempEntries(), IsEmpty());
}

TEST_F(LocalArtifactStoreTest, ObjectsSurviveReopening) {
  auto name = store_->Put("kept");
  ASSERT_TRUE(name.ok());
  store_.reset();
  auto reopened = OpenLocalArtifactStore(LocalFilesystem(), root());
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ(*(*reopened)->Get(*name), "kept");
}

TEST_F(LocalArtifactStoreTest, CorruptedObjectIsDataLossAndPutRepairsIt) {
  auto name = store_->Put("original model bytes");
  ASSERT_TRUE(name.ok());
  ASSERT_TRUE(LocalFilesystem()
                  ->WriteFileAtomic(ObjectPath(*name), "original model byteZ")
                  .ok());

  auto corrupted = store_->Get(*name);
  EXPECT_EQ(corrupted.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(corrupted.status().message()), HasSubstr(*name));
  EXPECT_TRUE(store_->Contains(*name));

  ASSERT_TRUE(store_->Put("original model bytes").ok());
  auto repaired = store_->Get(*name);
  ASSERT_TRUE(repaired.ok()) << repaired.status();
  EXPECT_EQ(*repaired, "original model bytes");
}

TEST_F(LocalArtifactStoreTest, RejectsNamesThatAreNotLowercaseSha256) {
  const std::string valid = Sha256Hex("x");
  std::string upper = valid;
  upper[0] = 'A';
  for (const std::string& bad :
       {std::string(), std::string("../../etc/passwd"), "../" + valid.substr(3),
        valid.substr(1), valid + "0", upper,
        valid.substr(0, 2) + "/" + valid.substr(3)}) {
    auto got = store_->Get(bad);
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(got.status().message()),
                HasSubstr("'" + bad + "'"));
    EXPECT_FALSE(store_->Contains(bad)) << bad;
  }
}

TEST_F(LocalArtifactStoreTest, MissingObjectIsNotFound) {
  const std::string name = Sha256Hex("never stored");
  auto got = store_->Get(name);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(got.status().message()), HasSubstr(name));
  EXPECT_FALSE(store_->Contains(name));
}

TEST_F(LocalArtifactStoreTest, ListSkipsEntriesThatAreNotObjects) {
  auto name = store_->Put("real");
  ASSERT_TRUE(name.ok());
  Filesystem* fs = LocalFilesystem();
  ASSERT_TRUE(fs->CreateDirs(root() + "/objects/zz").ok());
  ASSERT_TRUE(
      fs->WriteFileAtomic(root() + "/objects/zz/" + name->substr(2), "x").ok());
  ASSERT_TRUE(fs->WriteFileAtomic(root() + "/objects/README", "x").ok());
  std::string too_short = ObjectPath(*name);
  too_short.pop_back();
  ASSERT_TRUE(fs->WriteFileAtomic(too_short, "x").ok());
  EXPECT_THAT(*store_->List(), ElementsAre(*name));
}

TEST_F(LocalArtifactStoreTest,
       RemoveTemporaryFilesDeletesLeftoversOfInterruptedPuts) {
  auto kept = store_->Put("kept");
  ASSERT_TRUE(kept.ok());
  // What a Put killed between writing and renaming leaves behind.
  const std::string leftover =
      JoinPath(root(), "tmp/put-123-00000000deadbeef-0");
  ASSERT_TRUE(LocalFilesystem()->WriteFileAtomic(leftover, "half a mod").ok());
  ASSERT_THAT(TempEntries(), ElementsAre("put-123-00000000deadbeef-0"));

  absl::Status removed = store_->RemoveTemporaryFiles();
  ASSERT_TRUE(removed.ok()) << removed;
  EXPECT_FALSE(LocalFilesystem()->Exists(leftover));
  EXPECT_THAT(TempEntries(), IsEmpty());
  EXPECT_EQ(*store_->Get(*kept), "kept");
  EXPECT_TRUE(store_->RemoveTemporaryFiles().ok());
}

TEST_F(LocalArtifactStoreTest, FailedWriteLeavesNeitherObjectNorTemporaryFile) {
  FailingSyncFilesystem fs;
  auto store = OpenLocalArtifactStore(&fs, root());
  ASSERT_TRUE(store.ok()) << store.status();
  fs.fail_file_sync = true;
  auto put = (*store)->Put("model");
  EXPECT_EQ(put.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(put.status().message()),
              HasSubstr(Sha256Hex("model")));
  EXPECT_FALSE((*store)->Contains(Sha256Hex("model")));
  EXPECT_THAT(*(*store)->List(), IsEmpty());
  EXPECT_THAT(TempEntries(), IsEmpty());

  fs.fail_file_sync = false;
  ASSERT_TRUE((*store)->Put("model").ok());
  EXPECT_EQ(*(*store)->Get(Sha256Hex("model")), "model");
}

TEST_F(LocalArtifactStoreTest, ConcurrentPutsOfTheSameContentsStoreOneObject) {
  const std::string model(256 * 1024, 'm');
  const std::string expected = Sha256Hex(model);
  constexpr int kThreads = 8;
  constexpr int kPutsEach = 5;
  std::vector<std::vector<std::string>> names(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPutsEach; ++i) {
        auto name = store_->Put(model);
        ASSERT_TRUE(name.ok()) << name.status();
        names[t].push_back(*name);
        // Readers racing the writers only ever see whole objects.
        auto got = store_->Get(expected);
        ASSERT_TRUE(got.ok()) << got.status();
        EXPECT_EQ(got->size(), model.size());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const std::vector<std::string>& per_thread : names) {
    ASSERT_EQ(per_thread.size(), static_cast<size_t>(kPutsEach));
    for (const std::string& name : per_thread) EXPECT_EQ(name, expected);
  }
  EXPECT_THAT(*store_->List(), ElementsAre(expected));
  EXPECT_THAT(TempEntries(), IsEmpty());
  EXPECT_EQ(*store_->Get(expected), model);
}

}  // namespace
}  // namespace slipway
