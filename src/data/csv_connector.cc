#include "data/csv_connector.h"

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "core/status.h"

namespace slipway {
namespace {

class CsvSource : public DataSource {
 public:
  CsvSource(std::string path, std::unique_ptr<CsvReader> reader)
      : path_(std::move(path)), reader_(std::move(reader)) {}

  absl::StatusOr<std::optional<Table>> NextChunk() override {
    // CsvReader's messages already start with the path.
    return reader_->NextChunk();
  }
  std::string Fingerprint() const override { return reader_->sha256(); }
  std::string Describe() const override { return "csv " + path_; }

 private:
  std::string path_;
  std::unique_ptr<CsvReader> reader_;
};

class CsvSink : public DataSink {
 public:
  CsvSink(std::string path, std::unique_ptr<StagedFile> file)
      : path_(std::move(path)), file_(std::move(file)) {}

  absl::Status Write(const Table& chunk) override {
    RETURN_IF_ERROR(status_);
    if (finished_) {
      return absl::FailedPreconditionError(Describe() + ": already finished");
    }
    std::string text;
    if (!first_.has_value()) {
      first_ = chunk.Take({});
      text = WriteCsv(chunk);
    } else {
      status_ = CheckSameSchema(
          *first_, chunk, Describe() + " row " + std::to_string(rows_ + 1));
      RETURN_IF_ERROR(status_);
      text = WriteCsvRows(chunk);
    }
    status_ = file_->Append(text);
    rows_ += chunk.num_rows();
    return status_;
  }

  absl::Status Finish() override {
    RETURN_IF_ERROR(status_);
    if (finished_) {
      return absl::FailedPreconditionError(Describe() + ": already finished");
    }
    finished_ = true;
    status_ = file_->Commit();
    return status_;
  }

  std::string Describe() const override { return "csv sink " + path_; }

 private:
  std::string path_;
  std::unique_ptr<StagedFile> file_;
  std::optional<Table> first_;  // the first chunk's columns, no rows
  size_t rows_ = 0;
  bool finished_ = false;
  absl::Status status_;  // the first failure; every later call returns it
};

}  // namespace

absl::StatusOr<std::unique_ptr<DataSource>> OpenCsvSource(
    Filesystem* fs, const CsvSourceOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<CsvReader> reader,
                   CsvReader::Open(fs, options.path, options.csv));
  return std::unique_ptr<DataSource>(
      new CsvSource(options.path, std::move(reader)));
}

absl::StatusOr<std::unique_ptr<DataSink>> OpenCsvSink(
    Filesystem* fs, const CsvSinkOptions& options) {
  ASSIGN_OR_RETURN(
      std::unique_ptr<StagedFile> file,
      StagedFile::Create(fs, options.path, "csv sink " + options.path));
  return std::unique_ptr<DataSink>(new CsvSink(options.path, std::move(file)));
}

}  // namespace slipway
