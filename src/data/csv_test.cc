#include "data/csv.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "core/filesystem.h"
#include "core/hash.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/temp_dir.h"

namespace slipway {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The local filesystem, except that a read returns at most `max_read`
// bytes, so records, quoted fields and CRLF pairs get split across reads.
class ChoppyFilesystem : public Filesystem {
 public:
  explicit ChoppyFilesystem(size_t max_read) : max_read_(max_read) {}

  absl::StatusOr<std::unique_ptr<SequentialFile>> OpenSequential(
      const std::string& path) override {
    absl::StatusOr<std::unique_ptr<SequentialFile>> file =
        local_->OpenSequential(path);
    if (!file.ok()) return file.status();
    return std::unique_ptr<SequentialFile>(
        new ChoppyFile(std::move(*file), max_read_));
  }
  absl::StatusOr<std::unique_ptr<WritableFile>> OpenWritable(
      const std::string& path) override {
    return local_->OpenWritable(path);
  }
  bool Exists(const std::string& path) override { return local_->Exists(path); }
  absl::StatusOr<uint64_t> FileSize(const std::string& path) override {
    return local_->FileSize(path);
  }
  absl::Status CreateDirs(const std::string& path) override {
    return local_->CreateDirs(path);
  }
  absl::StatusOr<std::vector<std::string>> ListDir(
      const std::string& path) override {
    return local_->ListDir(path);
  }
  absl::Status RemoveFile(const std::string& path) override {
    return local_->RemoveFile(path);
  }
  absl::Status Rename(const std::string& from, const std::string& to) override {
    return local_->Rename(from, to);
  }
  absl::Status SyncDir(const std::string& dir) override {
    return local_->SyncDir(dir);
  }

 private:
  class ChoppyFile : public SequentialFile {
   public:
    ChoppyFile(std::unique_ptr<SequentialFile> file, size_t max_read)
        : file_(std::move(file)), max_read_(max_read) {}
    absl::StatusOr<size_t> Read(size_t n, char* scratch) override {
      return file_->Read(std::min(n, max_read_), scratch);
    }

   private:
    std::unique_ptr<SequentialFile> file_;
    size_t max_read_;
  };

  Filesystem* local_ = LocalFilesystem();
  size_t max_read_;
};

// Rewrites the file before the second time it is opened, as a writer
// replacing the file between ReadCsv's two passes would.
class RewritingFilesystem : public ChoppyFilesystem {
 public:
  explicit RewritingFilesystem(std::string contents)
      : ChoppyFilesystem(size_t{1} << 20), contents_(std::move(contents)) {}

  absl::StatusOr<std::unique_ptr<SequentialFile>> OpenSequential(
      const std::string& path) override {
    if (++opens_ == 2) {
      absl::Status written =
          LocalFilesystem()->WriteFileAtomic(path, contents_);
      if (!written.ok()) return written;
    }
    return ChoppyFilesystem::OpenSequential(path);
  }

 private:
  std::string contents_;
  int opens_ = 0;
};

class CsvTest : public ::testing::Test {
 protected:
  // Writes `contents` to <tempdir>/<name> and returns the path.
  std::string Write(const std::string& name, const std::string& contents) {
    const std::string path = JoinPath(dir_.path(), name);
    EXPECT_TRUE(LocalFilesystem()->WriteFileAtomic(path, contents).ok());
    return path;
  }

  absl::StatusOr<CsvData> Read(const std::string& contents,
                               const CsvOptions& options = {}) {
    path_ = Write("train.csv", contents);
    return ReadCsv(LocalFilesystem(), path_, options);
  }

  TempDir dir_;
  std::string path_;
};

std::vector<std::string> Cells(const Column& column) {
  std::vector<std::string> out;
  for (size_t i = 0; i < column.size(); ++i) {
    if (column.IsMissing(i)) {
      out.push_back("<missing>");
      continue;
    }
    switch (column.type()) {
      case DataType::kFloat64:
        out.push_back(std::to_string(column.Float64At(i)));
        break;
      case DataType::kInt64:
        out.push_back(std::to_string(column.Int64At(i)));
        break;
      case DataType::kBool:
        out.push_back(column.BoolAt(i) ? "true" : "false");
        break;
      case DataType::kString:
        out.push_back(std::string(column.StringAt(i)));
        break;
    }
  }
  return out;
}

TEST_F(CsvTest, InfersColumnTypes) {
  absl::StatusOr<CsvData> data = Read(
      "id,score,active,city,empty,big\n"
      "1,0.5,true,paris,,1\n"
      "2,-3,FALSE,oslo,NA,9223372036854775808\n"
      "+3, 1e2 ,True,paris,,2\n");
  ASSERT_TRUE(data.ok()) << data.status();
  const Table& t = data->table;
  EXPECT_EQ(data->rows, 3);
  ASSERT_EQ(t.num_columns(), 6u);
  EXPECT_EQ(t.column(0).type(), DataType::kInt64);
  EXPECT_EQ(t.column(1).type(), DataType::kFloat64);
  EXPECT_EQ(t.column(2).type(), DataType::kBool);
  EXPECT_EQ(t.column(3).type(), DataType::kString);
  EXPECT_EQ(t.column(4).type(), DataType::kFloat64);  // all missing
  EXPECT_EQ(t.column(5).type(), DataType::kFloat64);  // beyond int64
  EXPECT_THAT(Cells(t.column(0)), ElementsAre("1", "2", "3"));
  EXPECT_THAT(Cells(t.column(1)),
              ElementsAre("0.500000", "-3.000000", "100.000000"));
  EXPECT_THAT(Cells(t.column(2)), ElementsAre("true", "false", "true"));
  EXPECT_THAT(Cells(t.column(3)), ElementsAre("paris", "oslo", "paris"));
  EXPECT_THAT(t.column(3).dictionary(), ElementsAre("paris", "oslo"));
  EXPECT_EQ(t.column(4).missing_count(), 3u);
}

TEST_F(CsvTest, MissingMarkersAreConfigurable) {
  absl::StatusOr<CsvData> data = Read(
      "a,b\n"
      "1,N/A\n"
      "NaN,x\n"
      "None,null\n");
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->table.column(0).type(), DataType::kInt64);
  EXPECT_THAT(Cells(data->table.column(0)),
              ElementsAre("1", "<missing>", "<missing>"));
  EXPECT_THAT(Cells(data->table.column(1)),
              ElementsAre("<missing>", "x", "<missing>"));

  CsvOptions options;
  options.missing_values = {"?"};
  data = Read("a,b\n1,?\n2,NA\n", options);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_THAT(Cells(data->table.column(1)), ElementsAre("<missing>", "NA"));
}

TEST_F(CsvTest, QuotedFieldsFollowRfc4180) {
  const std::string text =
      "\xEF\xBB\xBFname,note,n\r\n"
      "\"Smith, J\",\"said \"\"hi\"\"\",1\r\n"
      "\"multi\r\nline\",\"\",2\r\n"
      "plain,\"a\"\"\",3";  // no final newline
  absl::StatusOr<CsvData> data = Read(text);
  ASSERT_TRUE(data.ok()) << data.status();
  const Table& t = data->table;
  EXPECT_EQ(t.column(0).name(), "name");  // the byte order mark is skipped
  EXPECT_THAT(Cells(t.column(0)),
              ElementsAre("Smith, J", "multi\r\nline", "plain"));
  EXPECT_THAT(Cells(t.column(1)),
              ElementsAre("said \"hi\"", "<missing>", "a\""));
  EXPECT_THAT(Cells(t.column(2)), ElementsAre("1", "2", "3"));
  EXPECT_EQ(data->sha256, Sha256Hex(text));
}

TEST_F(CsvTest, ParsesTheSameWhateverTheReadSize) {
  std::string text = "k,v,w\r\n";
  for (int i = 0; i < 40; ++i) {
    text += std::to_string(i) + ",\"q,\"\"" + std::to_string(i) +
            "\"\"\r\nend\",x" + std::to_string(i % 3) + "\r\n";
    if (i % 7 == 0) text += "\r\n";  // blank lines are skipped
  }
  const std::string path = Write("choppy.csv", text);
  absl::StatusOr<CsvData> expected = ReadCsv(LocalFilesystem(), path);
  ASSERT_TRUE(expected.ok()) << expected.status();
  EXPECT_EQ(expected->rows, 40);
  EXPECT_EQ(Cells(expected->table.column(1))[5], "q,\"5\"\r\nend");
  for (size_t max_read : {1, 2, 3, 5, 8, 13}) {
    ChoppyFilesystem fs(max_read);
    absl::StatusOr<CsvData> data = ReadCsv(&fs, path);
    ASSERT_TRUE(data.ok()) << max_read << ": " << data.status();
    EXPECT_EQ(WriteCsv(data->table), WriteCsv(expected->table)) << max_read;
    EXPECT_EQ(data->sha256, Sha256Hex(text));
  }
}

TEST_F(CsvTest, ErrorsAtTheEndOfAChoppedQuotedFieldKeepTheirPosition) {
  const std::string path = Write("bad.csv", "a,b\n1,\"open\n2,3\n");
  for (size_t max_read : {1, 4, 1 << 20}) {
    ChoppyFilesystem fs(max_read);
    absl::StatusOr<CsvData> data = ReadCsv(&fs, path);
    EXPECT_EQ(data.status().message(),
              path + ":2:2: unterminated quoted field (opened here)");
  }
}

TEST_F(CsvTest, FileChangedBetweenPassesIsAborted) {
  const std::string path = Write("moving.csv", "a,b\n1,2\n3,4\n");
  RewritingFilesystem grows("a,b\n1,2\n3,4\n5,6\n");
  absl::StatusOr<CsvData> data = ReadCsv(&grows, path);
  EXPECT_EQ(data.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(data.status().message(),
            path +
                ": the input changed while it was read (2 rows on the first "
                "read, 3 on the second); read it again");

  Write("moving.csv", "a,b\n1,2\n");
  RewritingFilesystem renamed("a,c\n1,2\n");
  data = ReadCsv(&renamed, path);
  EXPECT_EQ(data.status().code(), absl::StatusCode::kAborted);
}

TEST_F(CsvTest, TypeErrorNamesFileLineAndColumn) {
  std::string text = "id,name,age,city,score\n";
  for (int line = 2; line <= 20; ++line) {
    text += std::to_string(line) + ",n," +
            (line == 17 ? std::string("abc") : std::to_string(line + 20)) +
            ",c,0.5\n";
  }
  CsvOptions options;
  options.column_types["age"] = DataType::kInt64;
  absl::StatusOr<CsvData> data = Read(text, options);
  EXPECT_EQ(data.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(data.status().message(),
            path_ + ":17:3: column 'age' expected int64, got 'abc'");
}

TEST_F(CsvTest, RaggedRowNamesFileAndLine) {
  std::string text = "a,b,c,d,e\n";
  for (int line = 2; line <= 10; ++line) {
    text += line == 9 ? "1,2,3,4\n" : "1,2,3,4,5\n";
  }
  absl::StatusOr<CsvData> data = Read(text);
  EXPECT_EQ(data.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(data.status().message(),
            path_ + ":9: row has 4 fields, header has 5");
}

TEST_F(CsvTest, UnterminatedQuoteNamesWhereItOpened) {
  std::string text = "a,b,c,d,e\n";
  for (int line = 2; line <= 11; ++line) text += "1,2,3,4,5\n";
  text += "1,2,3,4,\"never closed\n13,2,3,4,5\n";
  absl::StatusOr<CsvData> data = Read(text);
  EXPECT_EQ(data.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(data.status().message(),
            path_ + ":12:5: unterminated quoted field (opened here)");
}

TEST_F(CsvTest, LineNumbersCountSkippedLinesAndEmbeddedNewlines) {
  CsvOptions options;
  options.skip_lines = 2;
  options.column_types["n"] = DataType::kInt64;
  absl::StatusOr<CsvData> data = Read(
      "# exported 2024-01-01\n"
      "# by the crm\n"
      "note,n\n"
      "\"two\nlines\",1\n"
      "x,oops\n",
      options);
  EXPECT_EQ(data.status().message(),
            path_ + ":6:2: column 'n' expected int64, got 'oops'");
}

TEST_F(CsvTest, TextAfterAClosingQuoteIsAnError) {
  absl::StatusOr<CsvData> data = Read("a,b\n\"x\"y,1\n");
  EXPECT_EQ(data.status().message(),
            path_ +
                ":2:1: unexpected character 'y' after a closing quote; write "
                "a quote inside a quoted field as \"\"");
}

TEST_F(CsvTest, MissingFileIsNotFound) {
  const std::string path = JoinPath(dir_.path(), "nope.csv");
  absl::StatusOr<CsvData> data = ReadCsv(LocalFilesystem(), path);
  EXPECT_EQ(data.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(data.status().message()), HasSubstr(path));
}

TEST_F(CsvTest, EmptyFileNeedsAHeader) {
  absl::StatusOr<CsvData> data = Read("");
  EXPECT_EQ(data.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(data.status().message()),
              HasSubstr(path_ + ": no header line"));

  data = Read("a,b\n");
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->table.num_columns(), 2u);
  EXPECT_EQ(data->table.num_rows(), 0u);
}

TEST_F(CsvTest, HeaderProblems) {
  absl::StatusOr<CsvData> data = Read("a,b,a\n1,2,3\n");
  EXPECT_EQ(data.status().message(),
            path_ + ":1:3: duplicate column name 'a' (also column 1)");

  data = Read(",x\n0,5\n1,6\n");  // pandas' unnamed index column
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->table.column(0).name(), "column_1");
}

TEST_F(CsvTest, ColumnTypeOverrides) {
  CsvOptions options;
  options.column_types["zip"] = DataType::kString;
  options.column_types["flag"] = DataType::kBool;
  options.column_types["x"] = DataType::kFloat64;
  absl::StatusOr<CsvData> data =
      Read("zip,flag,x\n01234,1,3\n98000,0,4\n", options);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_THAT(Cells(data->table.column(0)), ElementsAre("01234", "98000"));
  EXPECT_THAT(Cells(data->table.column(1)), ElementsAre("true", "false"));
  EXPECT_EQ(data->table.column(2).type(), DataType::kFloat64);

  options.column_types["nope"] = DataType::kInt64;
  data = Read("zip,flag,x\n1,1,1\n", options);
  EXPECT_EQ(data.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(data.status().message(),
            path_ +
                ":1: column_types names column 'nope', which is not in the "
                "header (columns: zip, flag, x)");
}

TEST_F(CsvTest, NoHeaderNeedsColumnNames) {
  CsvOptions options;
  options.header = false;
  absl::StatusOr<CsvData> data = Read("1,a\n2,b\n", options);
  EXPECT_EQ(data.status().message(),
            path_ + ": column_names is required when header is false");

  options.column_names = {"n", "s"};
  data = Read("1,a\n2,b\n", options);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_THAT(Cells(data->table.column(0)), ElementsAre("1", "2"));
  EXPECT_EQ(data->table.column(1).name(), "s");

  data = Read("1,a\n2\n", options);
  EXPECT_EQ(data.status().message(),
            path_ + ":2: row has 1 fields, column_names has 2");

  options.header = true;
  data = Read("n,s\n1,a\n", options);
  EXPECT_THAT(std::string(data.status().message()),
              HasSubstr("column_names is only used when header is false"));
}

TEST_F(CsvTest, OtherDelimiter) {
  CsvOptions options;
  options.delimiter = ';';
  absl::StatusOr<CsvData> data = Read("a;b\n1,5;\"x;y\"\n", options);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_THAT(Cells(data->table.column(0)), ElementsAre("1,5"));
  EXPECT_THAT(Cells(data->table.column(1)), ElementsAre("x;y"));
}

TEST(ParseCsvTest, ParsesTextAndNamesTheSource) {
  absl::StatusOr<Table> table = ParseCsv("x,y\n1,a\n2,b\n", "request body");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->num_rows(), 2u);
  EXPECT_EQ(table->column(0).type(), DataType::kInt64);

  absl::StatusOr<Table> ragged = ParseCsv("x,y\n1\n", "request body");
  EXPECT_EQ(ragged.status().message(),
            "request body:2: row has 1 fields, header has 2");
}

TEST(WriteCsvTest, QuotesAndMissingCells) {
  absl::StatusOr<Table> table = ParseCsv(
      "name,score,n,ok\n"
      "\"a,b\",0.1,1,true\n"
      "\"say \"\"x\"\"\",,NA,\n"
      "\"two\nlines\",1e+20,-7,false\n",
      "test");
  ASSERT_TRUE(table.ok()) << table.status();
  const std::string written = WriteCsv(*table);
  EXPECT_EQ(written,
            "name,score,n,ok\n"
            "\"a,b\",0.1,1,true\n"
            "\"say \"\"x\"\"\",,,\n"
            "\"two\nlines\",1e+20,-7,false\n");
  absl::StatusOr<Table> again = ParseCsv(written, "written");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(WriteCsv(*again), written);
}

TEST_F(CsvTest, ReaderStreamsChunks) {
  const std::string text = "n,s\n1,a\n2,b\n3,c\n4,d\n5,e\n";
  const std::string path = Write("stream.csv", text);
  CsvOptions options;
  options.chunk_rows = 2;
  absl::StatusOr<std::unique_ptr<CsvReader>> reader =
      CsvReader::Open(LocalFilesystem(), path, options);
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_THAT((*reader)->column_names(), ElementsAre("n", "s"));
  EXPECT_THAT((*reader)->column_types(),
              ElementsAre(DataType::kInt64, DataType::kString));
  std::vector<size_t> sizes;
  Table all;
  while (true) {
    absl::StatusOr<std::optional<Table>> chunk = (*reader)->NextChunk();
    ASSERT_TRUE(chunk.ok()) << chunk.status();
    if (!chunk->has_value()) break;
    sizes.push_back((*chunk)->num_rows());
    ASSERT_TRUE(all.AppendRows(**chunk).ok());
  }
  EXPECT_THAT(sizes, ElementsAre(2, 2, 1));
  EXPECT_THAT(Cells(all.column(1)), ElementsAre("a", "b", "c", "d", "e"));
  EXPECT_EQ((*reader)->sha256(), Sha256Hex(text));
  EXPECT_FALSE((*reader)->NextChunk()->has_value());
}

TEST_F(CsvTest, ReaderHashesTheBytesReadSoFar) {
  // Three 1 MiB blocks or so; the first small chunk needs only the first.
  std::string text = "n,s\n";
  for (int i = 0; text.size() < (size_t{3} << 20); ++i) {
    text += std::to_string(i) + ",row number " + std::to_string(i) + "\n";
  }
  const std::string path = Write("blocks.csv", text);
  CsvOptions options;
  options.chunk_rows = 10;
  absl::StatusOr<std::unique_ptr<CsvReader>> reader =
      CsvReader::Open(LocalFilesystem(), path, options);
  ASSERT_TRUE(reader.ok()) << reader.status();
  ASSERT_TRUE((*reader)->NextChunk().ok());
  EXPECT_EQ((*reader)->sha256(), Sha256Hex(text.substr(0, size_t{1} << 20)));
  size_t rows = 10;
  while (true) {
    absl::StatusOr<std::optional<Table>> chunk = (*reader)->NextChunk();
    ASSERT_TRUE(chunk.ok()) << chunk.status();
    if (!chunk->has_value()) break;
    rows += (*chunk)->num_rows();
  }
  EXPECT_EQ((*reader)->sha256(), Sha256Hex(text));
  absl::StatusOr<CsvData> whole = ReadCsv(LocalFilesystem(), path);
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_EQ(static_cast<int64_t>(rows), whole->rows);
  EXPECT_EQ(whole->sha256, Sha256Hex(text));
}

TEST_F(CsvTest, ReaderRejectsAValueThatDoesNotFitTheInferredType) {
  std::string text = "id,name,age\n";
  for (int line = 2; line <= 20; ++line) {
    text += std::to_string(line) + ",n," +
            (line == 17 ? std::string("abc") : std::to_string(line)) + "\n";
  }
  const std::string path = Write("later.csv", text);
  CsvOptions options;
  options.chunk_rows = 4;
  absl::StatusOr<std::unique_ptr<CsvReader>> reader =
      CsvReader::Open(LocalFilesystem(), path, options);
  ASSERT_TRUE(reader.ok()) << reader.status();
  absl::Status failure;
  for (int i = 0; i < 10 && failure.ok(); ++i) {
    absl::StatusOr<std::optional<Table>> chunk = (*reader)->NextChunk();
    if (!chunk.ok()) failure = chunk.status();
  }
  EXPECT_EQ(failure.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(failure.message(),
            path + ":17:3: column 'age' expected int64, got 'abc'");
  // The reader stays failed.
  EXPECT_EQ((*reader)->NextChunk().status(), failure);
}

TEST_F(CsvTest, ReaderOptionErrors) {
  const std::string path = Write("x.csv", "a\n1\n");
  CsvOptions options;
  options.chunk_rows = 0;
  EXPECT_EQ(
      CsvReader::Open(LocalFilesystem(), path, options).status().message(),
      path + ": chunk_rows must be positive");
  options.chunk_rows = 10;
  options.column_types["b"] = DataType::kInt64;
  EXPECT_EQ(
      CsvReader::Open(LocalFilesystem(), path, options).status().message(),
      path +
          ":1: column_types names column 'b', which is not in the "
          "header (columns: a)");
  EXPECT_EQ(
      CsvReader::Open(LocalFilesystem(), path + ".gone", {}).status().code(),
      absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace slipway
