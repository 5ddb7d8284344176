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

class CsvSink : public StagedFileSink {
 public:
  using StagedFileSink::StagedFileSink;

  std::string Describe() const override { return "csv sink " + path(); }

 private:
  std::string Format(const Table& chunk, bool first) override {
    return first ? WriteCsv(chunk) : WriteCsvRows(chunk);
  }
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
