#include "data/csv.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <optional>
#include <utility>

#include "core/hash.h"
#include "core/status.h"

namespace slipway {
namespace {

constexpr size_t kBlockBytes = size_t{1} << 20;
constexpr size_t kNoLimit = std::numeric_limits<size_t>::max();

// Splits CSV input into records of fields. Input comes from a file, read in
// 1 MiB blocks into a buffer that keeps the unfinished record, or from text
// copied once into the buffer. A field is a view into the buffer (quoted
// fields are unescaped in place once their record is complete), valid until
// the next call to Next().
class RecordReader {
 public:
  RecordReader(std::unique_ptr<SequentialFile> file, std::string source,
               char delimiter, bool hash)
      : file_(std::move(file)),
        source_(std::move(source)),
        delimiter_(delimiter) {
    if (hash) hash_ = std::make_unique<Sha256>();
  }

  RecordReader(std::string_view text, std::string source, char delimiter)
      : source_(std::move(source)), delimiter_(delimiter) {
    buf_ = std::make_unique_for_overwrite<char[]>(text.size() + 1);
    cap_ = text.size() + 1;
    std::memcpy(buf_.get(), text.data(), text.size());
    end_ = text.size();
    eof_ = true;
  }

  // Skips the byte order mark and `skip_lines` physical lines.
  absl::Status Start(int skip_lines) {
    while (end_ - pos_ < 3 && !eof_) RETURN_IF_ERROR(Fill());
    if (end_ - pos_ >= 3 &&
        std::memcmp(buf_.get() + pos_, "\xEF\xBB\xBF", 3) == 0) {
      pos_ += 3;
    }
    for (int skipped = 0; skipped < skip_lines;) {
      const char* begin = buf_.get() + pos_;
      const void* newline = std::memchr(begin, '\n', end_ - pos_);
      if (newline != nullptr) {
        pos_ += static_cast<const char*>(newline) - begin + 1;
        ++line_;
        ++skipped;
      } else if (eof_) {
        pos_ = end_;
        break;
      } else {
        RETURN_IF_ERROR(Fill());
      }
    }
    return absl::OkStatus();
  }

  // Parses the next record; false at the end of the input.
  absl::StatusOr<bool> Next() {
    while (true) {
      ASSIGN_OR_RETURN(Outcome outcome, TryParse());
      if (outcome == Outcome::kRecord) return true;
      if (outcome == Outcome::kEnd) return false;
      RETURN_IF_ERROR(Fill());
    }
  }

  const std::vector<std::string_view>& fields() const { return fields_; }
  // First physical line of the current record.
  int64_t line() const { return spans_.front().line; }
  const std::string& source() const { return source_; }

  // "<source>:<line>:<field>: <message>" for field `field` (0-based) of the
  // current record.
  absl::Status FieldError(size_t field, std::string_view message) const {
    return Error(spans_[field].line, field + 1, message);
  }
  // "<source>:<line>: <message>" for the current record.
  absl::Status RecordError(std::string_view message) const {
    return absl::InvalidArgumentError(source_ + ":" + std::to_string(line()) +
                                      ": " + std::string(message));
  }

  std::string HexDigestSoFar() const {
    return hash_ ? hash_->HexDigest() : std::string();
  }

 private:
  enum class Outcome { kRecord, kNeedMore, kEnd };

  struct Span {
    size_t begin;
    size_t end;
    int64_t line;
    bool escaped;  // holds doubled quotes still to be collapsed
  };

  absl::Status Error(int64_t line, size_t field,
                     std::string_view message) const {
    return absl::InvalidArgumentError(source_ + ":" + std::to_string(line) +
                                      ":" + std::to_string(field) + ": " +
                                      std::string(message));
  }

  // Moves the unfinished record to the front of the buffer and appends the
  // next block.
  absl::Status Fill() {
    if (eof_) return absl::OkStatus();
    if (pos_ > 0) {
      std::memmove(buf_.get(), buf_.get() + pos_, end_ - pos_);
      end_ -= pos_;
      pos_ = 0;
    }
    if (cap_ - end_ < kBlockBytes) {
      const size_t cap = std::max(cap_ * 2, end_ + kBlockBytes);
      auto grown = std::make_unique_for_overwrite<char[]>(cap);
      if (end_ > 0) std::memcpy(grown.get(), buf_.get(), end_);
      buf_ = std::move(grown);
      cap_ = cap;
    }
    ASSIGN_OR_RETURN(size_t n, file_->Read(kBlockBytes, buf_.get() + end_));
    if (n == 0) {
      eof_ = true;
    } else {
      if (hash_) hash_->Update(std::string_view(buf_.get() + end_, n));
      end_ += n;
    }
    return absl::OkStatus();
  }

  // Parses one record starting at pos_, or says that the buffer ends before
  // the record does. Only a complete record moves pos_ and line_, so a
  // kNeedMore attempt is simply repeated after Fill().
  absl::StatusOr<Outcome> TryParse() {
    const char* b = buf_.get();
    const char d = delimiter_;
    // Blank lines are skipped.
    while (true) {
      if (pos_ == end_) return eof_ ? Outcome::kEnd : Outcome::kNeedMore;
      if (b[pos_] == '\n') {
        ++pos_;
        ++line_;
      } else if (b[pos_] == '\r') {
        if (pos_ + 1 == end_) {
          if (!eof_) return Outcome::kNeedMore;
          ++pos_;
        } else if (b[pos_ + 1] == '\n') {
          pos_ += 2;
          ++line_;
        } else {
          break;
        }
      } else {
        break;
      }
    }

    size_t p = pos_;
    int64_t line = line_;
    spans_.clear();
    while (true) {
      // Filled in place: copying a finished Span into the vector stalled
      // on store forwarding and dominated the parse profile.
      Span& span = spans_.emplace_back();
      span.begin = p;
      span.end = p;
      span.line = line;
      span.escaped = false;
      if (p < end_ && b[p] == '"') {
        size_t q = p + 1;
        span.begin = q;
        while (true) {
          const void* found = std::memchr(b + q, '"', end_ - q);
          if (found == nullptr) {
            if (!eof_) return Outcome::kNeedMore;
            return Error(span.line, spans_.size(),
                         "unterminated quoted field (opened here)");
          }
          const size_t k = static_cast<const char*>(found) - b;
          if (k + 1 == end_ && !eof_) return Outcome::kNeedMore;
          line += std::count(b + q, b + k, '\n');
          if (k + 1 < end_ && b[k + 1] == '"') {
            span.escaped = true;
            q = k + 2;
            continue;
          }
          span.end = k;
          p = k + 1;
          break;
        }
        if (p < end_ && b[p] != d && b[p] != '\n') {
          if (b[p] == '\r' && p + 1 == end_ && !eof_) return Outcome::kNeedMore;
          if (b[p] != '\r' || (p + 1 < end_ && b[p + 1] != '\n')) {
            return Error(line, spans_.size(),
                         std::string("unexpected character '") + b[p] +
                             "' after a closing quote; write a quote inside "
                             "a quoted field as \"\"");
          }
        }
      } else {
        p = SkipPlainBytes(b, p, end_);
        while (p < end_) {
          const char c = b[p];
          if (c == d || c == '\n') break;
          if (c == '\r') {
            if (p + 1 == end_) {
              if (!eof_) return Outcome::kNeedMore;
              break;
            }
            if (b[p + 1] == '\n') break;
          }
          ++p;
        }
        if (p == end_ && !eof_) return Outcome::kNeedMore;
        span.end = p;
      }
      if (p == end_) break;  // the input ends without a final newline
      if (b[p] == d) {
        ++p;
        continue;
      }
      if (b[p] == '\r') ++p;
      if (p < end_ && b[p] == '\n') ++p;
      ++line;
      break;
    }
    pos_ = p;
    line_ = line;

    char* w = buf_.get();
    fields_.clear();
    for (const Span& span : spans_) {
      size_t end = span.end;
      if (span.escaped) {
        size_t out = span.begin;
        for (size_t in = span.begin; in < span.end; ++in, ++out) {
          w[out] = w[in];
          if (w[in] == '"') ++in;  // the second quote of a doubled pair
        }
        end = out;
      }
      fields_.emplace_back(w + span.begin, end - span.begin);
    }
    return Outcome::kRecord;
  }

  // The first position at or after `p` that may end an unquoted field
  // (the delimiter, CR or LF), or `end`; tests eight bytes per step, since
  // this loop is where a large file spends most of its parse time.
  size_t SkipPlainBytes(const char* b, size_t p, size_t end) const {
    constexpr uint64_t kOnes = 0x0101010101010101ULL;
    constexpr uint64_t kHighs = 0x8080808080808080ULL;
    const uint64_t delimiters = kOnes * static_cast<unsigned char>(delimiter_);
    while (p + 8 <= end) {
      uint64_t word;
      std::memcpy(&word, b + p, 8);
      // A byte of x is zero exactly where the word holds the byte sought;
      // the lowest flagged byte is always a true match.
      const uint64_t x = word ^ delimiters;
      const uint64_t y = word ^ (kOnes * '\n');
      const uint64_t z = word ^ (kOnes * '\r');
      const uint64_t found =
          ((x - kOnes) & ~x) | ((y - kOnes) & ~y) | ((z - kOnes) & ~z);
      if ((found & kHighs) != 0) {
        if constexpr (std::endian::native == std::endian::little) {
          return p + std::countr_zero(found & kHighs) / 8;
        } else {
          return p;  // the byte loop finds it
        }
      }
      p += 8;
    }
    return p;
  }

  std::unique_ptr<SequentialFile> file_;  // null for text input
  std::unique_ptr<Sha256> hash_;
  const std::string source_;
  const char delimiter_;
  std::unique_ptr<char[]> buf_;
  size_t cap_ = 0;
  size_t pos_ = 0;  // first byte not yet consumed
  size_t end_ = 0;  // one past the last byte read
  bool eof_ = false;
  int64_t line_ = 1;  // physical line at pos_
  std::vector<Span> spans_;
  std::vector<std::string_view> fields_;
};

// Cell parsing. Numbers and booleans may carry surrounding blanks; strings
// are kept as they are.
std::string_view TrimBlanks(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// from_chars takes no leading '+'; accept one before a digit or a point.
std::string_view StripPlus(std::string_view s) {
  if (s.size() > 1 && s[0] == '+' && s[1] != '-' && s[1] != '+') {
    s.remove_prefix(1);
  }
  return s;
}

bool ParseInt64(std::string_view s, int64_t* out) {
  s = StripPlus(TrimBlanks(s));
  if (s.empty()) return false;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

bool ParseFloat64(std::string_view s, double* out) {
  s = StripPlus(TrimBlanks(s));
  if (s.empty()) return false;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

bool EqualsIgnoreCase(std::string_view s, std::string_view lower) {
  if (s.size() != lower.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower[i]) return false;
  }
  return true;
}

// true/false in any case; 1/0 too when `digits` (a column already known to
// be bool).
bool ParseBool(std::string_view s, bool digits, bool* out) {
  s = TrimBlanks(s);
  if (EqualsIgnoreCase(s, "true") || (digits && s == "1")) {
    *out = true;
    return true;
  }
  if (EqualsIgnoreCase(s, "false") || (digits && s == "0")) {
    *out = false;
    return true;
  }
  return false;
}

// Whether a cell is one of the missing markers; a mask of marker lengths
// rejects most cells without comparing strings.
class MissingMatcher {
 public:
  explicit MissingMatcher(const std::vector<std::string>& values)
      : values_(values) {
    for (const std::string& v : values_) {
      if (v.size() < 64) {
        lengths_ |= uint64_t{1} << v.size();
      } else {
        long_values_ = true;
      }
    }
  }

  bool Matches(std::string_view cell) const {
    if (cell.size() < 64 ? (lengths_ >> cell.size() & 1) == 0 : !long_values_) {
      return false;
    }
    for (const std::string& v : values_) {
      if (v.size() == cell.size() && (v.empty() || v[0] == cell[0]) &&
          v == cell) {
        return true;
      }
    }
    return false;
  }

 private:
  std::vector<std::string> values_;
  uint64_t lengths_ = 0;
  bool long_values_ = false;
};

// Which types every non-missing cell seen so far fits.
class TypeGuess {
 public:
  void Observe(std::string_view cell) {
    seen_ = true;
    if (!int64_ && !float64_ && !bool_) return;
    int64_t i;
    double f;
    bool b;
    if (int64_ && !ParseInt64(cell, &i)) int64_ = false;
    if (float64_ && !int64_ && !ParseFloat64(cell, &f)) float64_ = false;
    if (bool_ && !ParseBool(cell, /*digits=*/false, &b)) bool_ = false;
  }

  DataType Result() const {
    if (!seen_) return DataType::kFloat64;
    if (int64_) return DataType::kInt64;
    if (float64_) return DataType::kFloat64;
    if (bool_) return DataType::kBool;
    return DataType::kString;
  }

 private:
  bool seen_ = false;
  bool int64_ = true;
  bool float64_ = true;
  bool bool_ = true;
};

// Appends a present cell; false when it does not fit the column's type.
bool AppendCell(Column& column, std::string_view cell) {
  switch (column.type()) {
    case DataType::kFloat64: {
      double v;
      if (!ParseFloat64(cell, &v)) return false;
      column.AppendFloat64(v);
      return true;
    }
    case DataType::kInt64: {
      int64_t v;
      if (!ParseInt64(cell, &v)) return false;
      column.AppendInt64(v);
      return true;
    }
    case DataType::kBool: {
      bool v;
      if (!ParseBool(cell, /*digits=*/true, &v)) return false;
      column.AppendBool(v);
      return true;
    }
    case DataType::kString:
      column.AppendString(cell);
      return true;
  }
  return false;
}

bool CellFits(DataType type, std::string_view cell) {
  int64_t i;
  double f;
  bool b;
  switch (type) {
    case DataType::kFloat64:
      return ParseFloat64(cell, &f);
    case DataType::kInt64:
      return ParseInt64(cell, &i);
    case DataType::kBool:
      return ParseBool(cell, /*digits=*/true, &b);
    case DataType::kString:
      return true;
  }
  return false;
}

// "column 'age' expected int64, got 'abc'", the value cut to 40 characters.
std::string TypeMismatch(std::string_view column, DataType type,
                         std::string_view cell) {
  std::string shown(cell.substr(0, 40));
  if (cell.size() > 40) shown += "...";
  return "column '" + std::string(column) + "' expected " +
         std::string(DataTypeName(type)) + ", got '" + shown + "'";
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

absl::Status CheckOptions(const std::string& source,
                          const CsvOptions& options) {
  const char d = options.delimiter;
  if (d == '"' || d == '\n' || d == '\r') {
    return absl::InvalidArgumentError(
        source + ": the delimiter cannot be a quote, CR or LF");
  }
  if (options.skip_lines < 0) {
    return absl::InvalidArgumentError(source +
                                      ": skip_lines must not be negative");
  }
  if (options.header && !options.column_names.empty()) {
    return absl::InvalidArgumentError(
        source +
        ": column_names is only used when header is false; the header names "
        "the columns");
  }
  if (!options.header) {
    if (options.column_names.empty()) {
      return absl::InvalidArgumentError(
          source + ": column_names is required when header is false");
    }
    for (size_t i = 0; i < options.column_names.size(); ++i) {
      const std::string& name = options.column_names[i];
      if (name.empty()) {
        return absl::InvalidArgumentError(source + ": column_names entry " +
                                          std::to_string(i + 1) + " is empty");
      }
      for (size_t j = 0; j < i; ++j) {
        if (options.column_names[j] == name) {
          return absl::InvalidArgumentError(source + ": column_names lists '" +
                                            name + "' twice");
        }
      }
    }
  }
  return absl::OkStatus();
}

// Column names and where they came from, shared by both passes.
struct Header {
  std::vector<std::string> names;
  int64_t line = 0;  // the header's physical line; 0 without a header

  std::string Describe() const {
    return line > 0 ? "header has " : "column_names has ";
  }
};

absl::StatusOr<Header> ReadHeader(RecordReader& reader,
                                  const CsvOptions& options) {
  Header header;
  if (!options.header) {
    header.names = options.column_names;
    return header;
  }
  ASSIGN_OR_RETURN(bool found, reader.Next());
  if (!found) {
    return absl::InvalidArgumentError(
        reader.source() +
        ": no header line; the input is empty (for data without a header set "
        "header to false and give column_names)");
  }
  header.line = reader.line();
  const std::vector<std::string_view>& fields = reader.fields();
  for (size_t i = 0; i < fields.size(); ++i) {
    std::string name = fields[i].empty() ? "column_" + std::to_string(i + 1)
                                         : std::string(fields[i]);
    for (size_t j = 0; j < header.names.size(); ++j) {
      if (header.names[j] == name) {
        return reader.FieldError(i, "duplicate column name '" + name +
                                        "' (also column " +
                                        std::to_string(j + 1) + ")");
      }
    }
    header.names.push_back(std::move(name));
  }
  return header;
}

// The overriding type of each column, or nullopt where it is inferred.
absl::StatusOr<std::vector<std::optional<DataType>>> ResolveOverrides(
    const std::string& source, const Header& header,
    const CsvOptions& options) {
  std::vector<std::optional<DataType>> fixed(header.names.size());
  for (const auto& [name, type] : options.column_types) {
    auto it = std::find(header.names.begin(), header.names.end(), name);
    if (it == header.names.end()) {
      const std::string where =
          header.line > 0 ? source + ":" + std::to_string(header.line) : source;
      return absl::InvalidArgumentError(
          where + ": column_types names column '" + name + "', which is not " +
          (header.line > 0 ? "in the header" : "in column_names") +
          " (columns: " + JoinNames(header.names) + ")");
    }
    fixed[it - header.names.begin()] = type;
  }
  return fixed;
}

absl::Status CheckFieldCount(const RecordReader& reader, const Header& header) {
  const size_t n = reader.fields().size();
  if (n == header.names.size()) return absl::OkStatus();
  return reader.RecordError("row has " + std::to_string(n) + " fields, " +
                            header.Describe() +
                            std::to_string(header.names.size()));
}

// What the first pass learns: the columns, their types, the row count.
struct Survey {
  Header header;
  std::vector<DataType> types;
  size_t rows = 0;
};

// Reads the header and up to `max_rows` records, inferring each column's
// type and checking record lengths and overridden types on the way.
absl::StatusOr<Survey> SurveyInput(RecordReader& reader,
                                   const CsvOptions& options, size_t max_rows) {
  Survey survey;
  ASSIGN_OR_RETURN(survey.header, ReadHeader(reader, options));
  ASSIGN_OR_RETURN(std::vector<std::optional<DataType>> fixed,
                   ResolveOverrides(reader.source(), survey.header, options));
  const std::vector<std::string>& names = survey.header.names;
  const MissingMatcher missing(options.missing_values);
  std::vector<TypeGuess> guesses(names.size());
  while (survey.rows < max_rows) {
    ASSIGN_OR_RETURN(bool found, reader.Next());
    if (!found) break;
    RETURN_IF_ERROR(CheckFieldCount(reader, survey.header));
    const std::vector<std::string_view>& fields = reader.fields();
    for (size_t i = 0; i < fields.size(); ++i) {
      if (missing.Matches(fields[i])) continue;
      if (!fixed[i]) {
        guesses[i].Observe(fields[i]);
      } else if (!CellFits(*fixed[i], fields[i])) {
        return reader.FieldError(i,
                                 TypeMismatch(names[i], *fixed[i], fields[i]));
      }
    }
    ++survey.rows;
  }
  for (size_t i = 0; i < names.size(); ++i) {
    survey.types.push_back(fixed[i] ? *fixed[i] : guesses[i].Result());
  }
  return survey;
}

std::vector<Column> MakeColumns(const Header& header,
                                const std::vector<DataType>& types,
                                size_t reserve) {
  std::vector<Column> columns;
  columns.reserve(header.names.size());
  for (size_t i = 0; i < header.names.size(); ++i) {
    columns.emplace_back(header.names[i], types[i]);
    columns.back().Reserve(reserve);
  }
  return columns;
}

// Parses up to `max_rows` records into `columns`; returns how many.
absl::StatusOr<size_t> ParseRows(RecordReader& reader, const Header& header,
                                 const MissingMatcher& missing,
                                 std::vector<Column>& columns,
                                 size_t max_rows) {
  size_t rows = 0;
  while (rows < max_rows) {
    ASSIGN_OR_RETURN(bool found, reader.Next());
    if (!found) break;
    RETURN_IF_ERROR(CheckFieldCount(reader, header));
    const std::vector<std::string_view>& fields = reader.fields();
    for (size_t i = 0; i < fields.size(); ++i) {
      Column& column = columns[i];
      if (missing.Matches(fields[i])) {
        column.AppendMissing();
      } else if (!AppendCell(column, fields[i])) {
        return reader.FieldError(
            i, TypeMismatch(column.name(), column.type(), fields[i]));
      }
    }
    ++rows;
  }
  return rows;
}

absl::StatusOr<Table> ToTable(std::vector<Column> columns) {
  Table table;
  for (Column& column : columns)
    RETURN_IF_ERROR(table.AddColumn(std::move(column)));
  return table;
}

absl::Status ChangedWhileRead(const std::string& source,
                              std::string_view what) {
  return absl::AbortedError(source + ": the input changed while it was read (" +
                            std::string(what) + "); read it again");
}

using OpenRecords =
    std::function<absl::StatusOr<std::unique_ptr<RecordReader>>(bool hash)>;

// Two passes: the first infers types and counts rows, the second parses
// into columns reserved to exactly that many rows.
absl::StatusOr<CsvData> LoadTwoPass(const std::string& source,
                                    const CsvOptions& options,
                                    const OpenRecords& open) {
  RETURN_IF_ERROR(CheckOptions(source, options));
  Survey survey;
  {
    ASSIGN_OR_RETURN(std::unique_ptr<RecordReader> reader, open(false));
    RETURN_IF_ERROR(reader->Start(options.skip_lines));
    ASSIGN_OR_RETURN(survey, SurveyInput(*reader, options, kNoLimit));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<RecordReader> reader, open(true));
  RETURN_IF_ERROR(reader->Start(options.skip_lines));
  ASSIGN_OR_RETURN(Header header, ReadHeader(*reader, options));
  if (header.names != survey.header.names) {
    return ChangedWhileRead(source, "the header differs between two reads");
  }
  std::vector<Column> columns = MakeColumns(header, survey.types, survey.rows);
  ASSIGN_OR_RETURN(
      size_t rows,
      ParseRows(*reader, header, MissingMatcher(options.missing_values),
                columns, kNoLimit));
  if (rows != survey.rows) {
    return ChangedWhileRead(
        source, std::to_string(survey.rows) + " rows on the first read, " +
                    std::to_string(rows) + " on the second");
  }
  CsvData data;
  ASSIGN_OR_RETURN(data.table, ToTable(std::move(columns)));
  data.sha256 = reader->HexDigestSoFar();
  data.rows = static_cast<int64_t>(rows);
  return data;
}

OpenRecords OpenFile(Filesystem* fs, const std::string& path, char delimiter) {
  return [fs, path, delimiter](
             bool hash) -> absl::StatusOr<std::unique_ptr<RecordReader>> {
    ASSIGN_OR_RETURN(std::unique_ptr<SequentialFile> file,
                     fs->OpenSequential(path));
    return std::make_unique<RecordReader>(std::move(file), path, delimiter,
                                          hash);
  };
}

bool NeedsQuotes(std::string_view s) {
  return s.find_first_of(",\"\r\n") != std::string_view::npos;
}

void AppendQuoted(std::string& out, std::string_view s) {
  if (!NeedsQuotes(s)) {
    out.append(s);
    return;
  }
  out.push_back('"');
  for (char c : s) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
}

}  // namespace

absl::StatusOr<CsvData> ReadCsv(Filesystem* fs, const std::string& path,
                                const CsvOptions& options) {
  return LoadTwoPass(path, options, OpenFile(fs, path, options.delimiter));
}

absl::StatusOr<Table> ParseCsv(std::string_view text,
                               std::string_view source_name,
                               const CsvOptions& options) {
  const std::string source(source_name);
  ASSIGN_OR_RETURN(
      CsvData data,
      LoadTwoPass(source, options,
                  [&](bool) -> absl::StatusOr<std::unique_ptr<RecordReader>> {
                    return std::make_unique<RecordReader>(text, source,
                                                          options.delimiter);
                  }));
  return std::move(data.table);
}

std::string WriteCsv(const Table& table) {
  std::string out;
  for (size_t c = 0; c < table.num_columns(); ++c) {
    if (c > 0) out.push_back(',');
    AppendQuoted(out, table.column(c).name());
  }
  out.push_back('\n');
  out += WriteCsvRows(table);
  return out;
}

std::string WriteCsvRows(const Table& table) {
  std::string out;
  char number[32];
  for (size_t row = 0; row < table.num_rows(); ++row) {
    for (size_t c = 0; c < table.num_columns(); ++c) {
      if (c > 0) out.push_back(',');
      const Column& column = table.column(c);
      if (column.IsMissing(row)) continue;
      switch (column.type()) {
        case DataType::kFloat64: {
          const auto result = std::to_chars(number, number + sizeof(number),
                                            column.Float64At(row));
          out.append(number, result.ptr);
          break;
        }
        case DataType::kInt64: {
          const auto result = std::to_chars(number, number + sizeof(number),
                                            column.Int64At(row));
          out.append(number, result.ptr);
          break;
        }
        case DataType::kBool:
          out.append(column.BoolAt(row) ? "true" : "false");
          break;
        case DataType::kString:
          AppendQuoted(out, column.StringAt(row));
          break;
      }
    }
    out.push_back('\n');
  }
  return out;
}

class CsvReader::Impl {
 public:
  Impl(std::unique_ptr<RecordReader> reader, Header header,
       std::vector<DataType> types, const CsvOptions& options,
       size_t first_chunk_rows)
      : reader_(std::move(reader)),
        header_(std::move(header)),
        types_(std::move(types)),
        missing_(options.missing_values),
        chunk_rows_(options.chunk_rows),
        next_reserve_(first_chunk_rows) {}

  absl::StatusOr<std::optional<Table>> NextChunk() {
    if (!status_.ok()) return status_;
    if (done_) return std::nullopt;
    std::vector<Column> columns = MakeColumns(header_, types_, next_reserve_);
    next_reserve_ = chunk_rows_;
    absl::StatusOr<size_t> rows =
        ParseRows(*reader_, header_, missing_, columns, chunk_rows_);
    if (!rows.ok()) {
      status_ = rows.status();
      return status_;
    }
    if (*rows == 0) {
      done_ = true;
      return std::nullopt;
    }
    return ToTable(std::move(columns));
  }

  std::string sha256() const { return reader_->HexDigestSoFar(); }

 private:
  std::unique_ptr<RecordReader> reader_;
  const Header header_;
  const std::vector<DataType> types_;
  const MissingMatcher missing_;
  const size_t chunk_rows_;
  size_t next_reserve_;
  bool done_ = false;
  absl::Status status_;
};

CsvReader::CsvReader(std::unique_ptr<Impl> impl, std::vector<std::string> names,
                     std::vector<DataType> types)
    : impl_(std::move(impl)),
      names_(std::move(names)),
      types_(std::move(types)) {}

CsvReader::~CsvReader() = default;

absl::StatusOr<std::unique_ptr<CsvReader>> CsvReader::Open(
    Filesystem* fs, const std::string& path, const CsvOptions& options) {
  RETURN_IF_ERROR(CheckOptions(path, options));
  if (options.chunk_rows == 0) {
    return absl::InvalidArgumentError(path + ": chunk_rows must be positive");
  }
  const OpenRecords open = OpenFile(fs, path, options.delimiter);
  // Types come from a first read of the first chunk; the reader kept for
  // the chunks starts again from the top, so every byte is hashed once.
  Survey survey;
  {
    ASSIGN_OR_RETURN(std::unique_ptr<RecordReader> reader, open(false));
    RETURN_IF_ERROR(reader->Start(options.skip_lines));
    ASSIGN_OR_RETURN(survey, SurveyInput(*reader, options, options.chunk_rows));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<RecordReader> reader, open(true));
  RETURN_IF_ERROR(reader->Start(options.skip_lines));
  ASSIGN_OR_RETURN(Header header, ReadHeader(*reader, options));
  if (header.names != survey.header.names) {
    return ChangedWhileRead(path, "the header differs between two reads");
  }
  std::vector<std::string> names = header.names;
  std::vector<DataType> types = survey.types;
  auto impl = std::make_unique<Impl>(std::move(reader), std::move(header),
                                     survey.types, options, survey.rows);
  return std::unique_ptr<CsvReader>(
      new CsvReader(std::move(impl), std::move(names), std::move(types)));
}

absl::StatusOr<std::optional<Table>> CsvReader::NextChunk() {
  return impl_->NextChunk();
}

std::string CsvReader::sha256() const { return impl_->sha256(); }

}  // namespace slipway
