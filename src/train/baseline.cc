#include "train/baseline.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "core/status.h"
#include "models/features.h"

namespace slipway {
namespace {

// The category text of a present cell, as EncodeCategory matches it.
std::string CategoryTextAt(const Column& column, size_t row) {
  switch (column.type()) {
    case DataType::kString:
      return std::string(column.StringAt(row));
    case DataType::kInt64:
      return Int64CategoryText(column.Int64At(row));
    case DataType::kBool:
      return BoolCategoryText(column.BoolAt(row));
    case DataType::kFloat64:
      return Float64CategoryText(column.Float64At(row));
  }
  return std::string();
}

absl::StatusOr<FeatureProfile> ProfileColumn(const FeatureSpec& feature,
                                             const Column& column) {
  FeatureProfile profile;
  profile.name = feature.name;
  int64_t missing = 0;
  if (feature.is_categorical()) {
    std::vector<std::string> texts;
    texts.reserve(column.size());
    for (size_t row = 0; row < column.size(); ++row) {
      if (column.IsMissing(row)) {
        ++missing;
      } else {
        texts.push_back(CategoryTextAt(column, row));
      }
    }
    std::vector<std::string_view> views(texts.begin(), texts.end());
    profile.profile = CategoricalProfile::Baseline(views, missing);
    return profile;
  }
  if (column.type() == DataType::kString) {
    return absl::InvalidArgumentError(
        "baseline profile: feature '" + feature.name +
        "' is numeric in the model's signature but its column holds strings");
  }
  std::vector<double> values;
  values.reserve(column.size());
  for (size_t row = 0; row < column.size(); ++row) {
    if (column.IsMissing(row)) {
      ++missing;
    } else {
      values.push_back(column.NumberAt(row));
    }
  }
  profile.profile = NumericProfile::Baseline(values, missing);
  return profile;
}

}  // namespace

absl::StatusOr<ProfileSet> BaselineProfile(const Model& model,
                                           const Table& rows) {
  const Signature& signature = model.signature();
  ProfileSet set;
  set.rows = static_cast<int64_t>(rows.num_rows());
  for (const FeatureSpec& feature : signature.features()) {
    const Column* column = rows.FindColumn(feature.name);
    if (column == nullptr) {
      return absl::InvalidArgumentError(
          "baseline profile: the training rows have no column '" +
          feature.name + "', a feature of the model's signature");
    }
    ASSIGN_OR_RETURN(FeatureProfile profile, ProfileColumn(feature, *column));
    set.features.push_back(std::move(profile));
  }

  std::vector<float> encoded;
  RETURN_IF_ERROR(EncodeTable(signature, rows, &encoded, nullptr),
                  "baseline profile");
  std::vector<float> predictions;
  RETURN_IF_ERROR(model.Predict(encoded.data(), rows.num_rows(), &predictions),
                  "baseline profile: predicting the training rows");
  FeatureProfile prediction;
  prediction.name = "prediction";
  const size_t width = signature.output_width();
  if (signature.task() == Task::kMulticlassClassification) {
    std::vector<std::string_view> labels;
    labels.reserve(rows.num_rows());
    for (size_t row = 0; row < rows.num_rows(); ++row) {
      const float* p = predictions.data() + row * width;
      size_t best = 0;
      for (size_t k = 1; k < width; ++k) {
        if (p[k] > p[best]) best = k;
      }
      labels.push_back(signature.class_labels()[best]);
    }
    prediction.profile = CategoricalProfile::Baseline(labels);
  } else {
    std::vector<double> values(predictions.begin(), predictions.end());
    prediction.profile = NumericProfile::Baseline(values);
  }
  set.prediction = std::move(prediction);
  return set;
}

namespace {

// A column of the file ProfileCsv profiles.
struct CsvColumn {
  size_t index;  // in the file
  bool numeric;
};

// "column" or "columns", by how many there are.
std::string Columns(const std::vector<std::string>& names) {
  return names.size() == 1 ? "column" : "columns";
}

// "'a', 'b'"
std::string QuotedList(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) {
    if (!out.empty()) out += ", ";
    out += "'" + name + "'";
  }
  return out;
}

absl::StatusOr<std::vector<CsvColumn>> ColumnsToProfile(
    const CsvReader& reader, const std::string& path,
    const std::vector<std::string>& skip) {
  const std::vector<std::string>& names = reader.column_names();
  std::vector<std::string> unknown;
  for (const std::string& name : skip) {
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      unknown.push_back(name);
    }
  }
  if (!unknown.empty()) {
    return absl::InvalidArgumentError(
        path + ": " + Columns(unknown) + " to skip " + QuotedList(unknown) +
        (unknown.size() == 1 ? " is" : " are") +
        " not in the file; its columns are " + QuotedList(names));
  }
  std::vector<CsvColumn> columns;
  for (size_t i = 0; i < names.size(); ++i) {
    if (std::find(skip.begin(), skip.end(), names[i]) != skip.end()) continue;
    columns.push_back({i, reader.column_types()[i] != DataType::kString});
  }
  return columns;
}

// Calls `add(value)` for every present cell of a numeric column, and
// `missing()` for every missing one.
template <typename AddFn, typename MissingFn>
void ForEachNumber(const Column& column, AddFn add, MissingFn missing) {
  const size_t rows = column.size();
  if (column.type() == DataType::kFloat64) {
    for (size_t row = 0; row < rows; ++row) {
      if (column.IsMissing(row)) {
        missing();
      } else {
        add(column.Float64At(row));
      }
    }
    return;
  }
  for (size_t row = 0; row < rows; ++row) {
    if (column.IsMissing(row)) {
      missing();
    } else {
      add(column.NumberAt(row));
    }
  }
}

// The rows of a string column per dictionary code; missing cells excluded.
std::vector<int64_t> CodeCounts(const Column& column, int64_t* missing) {
  std::vector<int64_t> counts(column.dictionary().size(), 0);
  for (size_t row = 0; row < column.size(); ++row) {
    if (column.IsMissing(row)) {
      ++*missing;
    } else {
      ++counts[column.CodeAt(row)];
    }
  }
  return counts;
}

// What the first pass keeps of a categorical column.
struct CategoryCounts {
  std::unordered_map<std::string, int64_t> counts;
  int64_t missing = 0;

  void Add(const Column& column) {
    const std::vector<int64_t> codes = CodeCounts(column, &missing);
    for (size_t code = 0; code < codes.size(); ++code) {
      if (codes[code] > 0) counts[column.dictionary()[code]] += codes[code];
    }
  }
};

// Calls `consume` with every chunk of `reader`, in order, on the calling
// thread, while another thread parses the next chunk: parsing and profiling
// take about the same time, so the two overlap on two cores. Two chunks are
// alive at once: the one consumed and the one being parsed.
absl::Status ForEachChunk(CsvReader* reader,
                          const std::function<void(const Table&)>& consume) {
  auto parse_next = [reader] { return reader->NextChunk(); };
  std::future<absl::StatusOr<std::optional<Table>>> next =
      std::async(std::launch::async, parse_next);
  while (true) {
    absl::StatusOr<std::optional<Table>> chunk = next.get();
    if (!chunk.ok()) return chunk.status();
    if (!chunk->has_value()) return absl::OkStatus();
    // The reader is idle again: start the next parse before profiling.
    next = std::async(std::launch::async, parse_next);
    consume(**chunk);
  }
}

// NumericProfile::Baseline's edges (edge j the value at 0-based sorted
// position floor(j*n/num_bins), repeats dropped), read off the sketch: the
// position's quantile is asked at the middle of its rank step, so an exact
// sketch answers exactly that value.
std::vector<double> EdgesFromSketch(const QuantileSketch& sketch,
                                    int num_bins) {
  std::vector<double> edges;
  const uint64_t n = static_cast<uint64_t>(sketch.count());
  if (n == 0) return edges;
  for (int j = 1; j < num_bins; ++j) {
    const uint64_t position = static_cast<uint64_t>(j) * n / num_bins;
    const double edge = sketch.Quantile((static_cast<double>(position) + 0.5) /
                                        static_cast<double>(n));
    if (edges.empty() || edges.back() != edge) edges.push_back(edge);
  }
  return edges;
}

absl::Status ChangedBetweenPasses(const std::string& path,
                                  std::string_view what) {
  return absl::FailedPreconditionError(
      path + " changed while it was being profiled (" + std::string(what) +
      " differ between the two passes); profile a file nothing writes to");
}

// ProfileCsv's first pass, and what its second pass needs.
struct FirstPass {
  std::vector<CsvColumn> columns;  // one per feature of `set`
  std::vector<DataType> types;
  int64_t rows = 0;
  std::string sha256;
  // Every feature; the numeric ones with their edges and, when they have
  // edges, bins still to count.
  ProfileSet set;
};

absl::StatusOr<FirstPass> ProfileFirstPass(Filesystem* fs,
                                           const std::string& path,
                                           const CsvProfileOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<CsvReader> reader,
                   CsvReader::Open(fs, path, options.csv));
  FirstPass pass;
  ASSIGN_OR_RETURN(pass.columns, ColumnsToProfile(*reader, path, options.skip));
  pass.types = reader->column_types();
  const std::vector<CsvColumn>& columns = pass.columns;

  std::vector<NumericProfile> numeric(columns.size());
  std::vector<CategoryCounts> categories(columns.size());
  RETURN_IF_ERROR(ForEachChunk(reader.get(), [&](const Table& chunk) {
    pass.rows += static_cast<int64_t>(chunk.num_rows());
    for (size_t c = 0; c < columns.size(); ++c) {
      const Column& column = chunk.column(columns[c].index);
      if (columns[c].numeric) {
        NumericProfile& profile = numeric[c];
        ForEachNumber(
            column, [&](double v) { profile.Add(v); },
            [&] { profile.AddMissing(); });
      } else {
        categories[c].Add(column);
      }
    }
  }));
  pass.sha256 = reader->sha256();

  pass.set.rows = pass.rows;
  const int num_bins = std::max(options.num_bins, 1);
  for (size_t c = 0; c < columns.size(); ++c) {
    FeatureProfile feature;
    feature.name = reader->column_names()[columns[c].index];
    if (columns[c].numeric) {
      NumericProfile& profile = numeric[c];
      profile.edges = EdgesFromSketch(profile.sketch, num_bins);
      profile.bins.assign(profile.edges.size() + 1, 0);
      if (profile.edges.empty()) profile.bins[0] = profile.count;
      feature.profile = std::move(profile);
    } else {
      std::vector<std::pair<std::string, int64_t>> counts(
          std::make_move_iterator(categories[c].counts.begin()),
          std::make_move_iterator(categories[c].counts.end()));
      feature.profile = CategoricalProfile::BaselineFromCounts(
          std::move(counts), categories[c].missing, options.top_k);
    }
    pass.set.features.push_back(std::move(feature));
  }
  return pass;
}

// ProfileCsv's second pass: counts the bins of the numeric features that
// have edges, checking that the file is the one the first pass read.
absl::Status CountBins(Filesystem* fs, const std::string& path,
                       const CsvOptions& options, FirstPass* pass) {
  std::vector<size_t> binned;
  for (size_t f = 0; f < pass->set.features.size(); ++f) {
    const auto* numeric =
        std::get_if<NumericProfile>(&pass->set.features[f].profile);
    if (numeric != nullptr && !numeric->edges.empty()) binned.push_back(f);
  }
  if (binned.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::unique_ptr<CsvReader> reader,
                   CsvReader::Open(fs, path, options));
  if (reader->column_types() != pass->types) {
    return ChangedBetweenPasses(path, "the column types");
  }
  int64_t rows = 0;
  RETURN_IF_ERROR(ForEachChunk(reader.get(), [&](const Table& chunk) {
    rows += static_cast<int64_t>(chunk.num_rows());
    for (size_t f : binned) {
      auto& profile = std::get<NumericProfile>(pass->set.features[f].profile);
      const std::vector<double>& edges = profile.edges;
      std::vector<int64_t>& bins = profile.bins;
      // The bucket is the number of edges at or below the value (as
      // NumericProfile::Add's upper_bound): with ten or so edges a
      // branch-free count beats a binary search.
      ForEachNumber(
          chunk.column(pass->columns[f].index),
          [&](double v) {
            if (std::isfinite(v)) {
              size_t bucket = 0;
              for (double edge : edges) bucket += edge <= v ? 1 : 0;
              ++bins[bucket];
            }
          },
          [] {});
    }
  }));
  if (rows != pass->rows || reader->sha256() != pass->sha256) {
    return ChangedBetweenPasses(path, "the bytes");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ProfileSet> ProfileCsv(Filesystem* fs, const std::string& path,
                                      const CsvProfileOptions& options) {
  ASSIGN_OR_RETURN(FirstPass pass, ProfileFirstPass(fs, path, options));
  RETURN_IF_ERROR(CountBins(fs, path, options.csv, &pass));
  return std::move(pass.set);
}

namespace {

// InvalidArgument naming every feature of `window` that `names`/`types`
// cannot fill; otherwise each feature's column index.
absl::StatusOr<std::vector<size_t>> MatchColumns(
    const ProfileSet& window, const std::vector<std::string>& names,
    const std::vector<DataType>& types, const std::string& source) {
  std::vector<size_t> indices;
  std::vector<std::string> missing;
  std::vector<std::string> strings;
  for (const FeatureProfile& feature : window.features) {
    const auto it = std::find(names.begin(), names.end(), feature.name);
    if (it == names.end()) {
      missing.push_back(feature.name);
      continue;
    }
    const size_t index = static_cast<size_t>(it - names.begin());
    if (feature.is_numeric() && types[index] == DataType::kString) {
      strings.push_back(feature.name);
    }
    indices.push_back(index);
  }
  if (!missing.empty()) {
    return absl::InvalidArgumentError(
        source + " has no " + Columns(missing) + " " + QuotedList(missing) +
        ", which the baseline profiles; add " +
        (missing.size() == 1 ? "it" : "them") +
        " or compare against a baseline without " +
        (missing.size() == 1 ? "it" : "them") + " (--skip)");
  }
  if (!strings.empty()) {
    return absl::InvalidArgumentError(
        source + ": " + Columns(strings) + " " + QuotedList(strings) +
        (strings.size() == 1 ? " holds text, but the baseline profiles it"
                             : " hold text, but the baseline profiles them") +
        " as numbers; fix the cells that are not numbers");
  }
  return indices;
}

void AddColumn(const Column& column, FeatureProfile* feature) {
  if (auto* numeric = std::get_if<NumericProfile>(&feature->profile)) {
    ForEachNumber(
        column, [numeric](double v) { numeric->Add(v); },
        [numeric] { numeric->AddMissing(); });
    return;
  }
  auto& categorical = std::get<CategoricalProfile>(feature->profile);
  if (column.type() == DataType::kString) {
    int64_t missing = 0;
    const std::vector<int64_t> codes = CodeCounts(column, &missing);
    categorical.missing += missing;
    for (size_t code = 0; code < codes.size(); ++code) {
      const std::string& name = column.dictionary()[code];
      for (int64_t i = 0; i < codes[code]; ++i) categorical.Add(name);
    }
    return;
  }
  for (size_t row = 0; row < column.size(); ++row) {
    if (column.IsMissing(row)) {
      categorical.AddMissing();
    } else {
      categorical.Add(CategoryTextAt(column, row));
    }
  }
}

void AddMatchedRows(const Table& rows, const std::vector<size_t>& indices,
                    ProfileSet* window) {
  for (size_t f = 0; f < window->features.size(); ++f) {
    AddColumn(rows.column(indices[f]), &window->features[f]);
  }
  window->rows += static_cast<int64_t>(rows.num_rows());
}

}  // namespace

absl::Status AddRows(const Table& rows, ProfileSet* window) {
  std::vector<std::string> names;
  std::vector<DataType> types;
  for (const Column& column : rows.columns()) {
    names.push_back(column.name());
    types.push_back(column.type());
  }
  ASSIGN_OR_RETURN(const std::vector<size_t> indices,
                   MatchColumns(*window, names, types, "the rows"));
  AddMatchedRows(rows, indices, window);
  return absl::OkStatus();
}

namespace {

// A window being filled from a CSV file.
struct WindowReader {
  std::unique_ptr<CsvReader> reader;
  std::vector<size_t> indices;  // the file's column for each feature
};

// Opens the file and matches its columns to the window's features.
absl::StatusOr<WindowReader> OpenWindow(const ProfileSet& window,
                                        Filesystem* fs, const std::string& path,
                                        const CsvOptions& options) {
  WindowReader opened;
  ASSIGN_OR_RETURN(opened.reader, CsvReader::Open(fs, path, options));
  ASSIGN_OR_RETURN(opened.indices,
                   MatchColumns(window, opened.reader->column_names(),
                                opened.reader->column_types(), path));
  return opened;
}

absl::StatusOr<ProfileSet> FillWindow(ProfileSet window,
                                      const WindowReader& opened) {
  RETURN_IF_ERROR(ForEachChunk(opened.reader.get(), [&](const Table& chunk) {
    AddMatchedRows(chunk, opened.indices, &window);
  }));
  return window;
}

}  // namespace

absl::StatusOr<ProfileSet> ProfileCsvAgainst(const ProfileSet& baseline,
                                             Filesystem* fs,
                                             const std::string& path,
                                             const CsvOptions& options) {
  ProfileSet window = baseline.EmptyLike();
  window.prediction.reset();
  ASSIGN_OR_RETURN(const WindowReader opened,
                   OpenWindow(window, fs, path, options));
  return FillWindow(std::move(window), opened);
}

absl::StatusOr<CsvProfilePair> ProfileCsvPair(
    Filesystem* fs, const std::string& baseline_path,
    const std::string& window_path, const CsvProfileOptions& options) {
  ASSIGN_OR_RETURN(FirstPass pass,
                   ProfileFirstPass(fs, baseline_path, options));
  // The window needs the baseline's edges and categories, not its bins.
  ProfileSet window = pass.set.EmptyLike();
  ASSIGN_OR_RETURN(const WindowReader opened,
                   OpenWindow(window, fs, window_path, options.csv));
  std::future<absl::Status> binned = std::async(std::launch::async, [&] {
    return CountBins(fs, baseline_path, options.csv, &pass);
  });
  absl::StatusOr<ProfileSet> filled = FillWindow(std::move(window), opened);
  const absl::Status bins = binned.get();
  if (!filled.ok()) return filled.status();
  RETURN_IF_ERROR(bins);
  return CsvProfilePair{std::move(pass.set), std::move(*filled)};
}

}  // namespace slipway
