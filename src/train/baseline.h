// BaselineProfile: the training baseline that monitoring compares live
// traffic with (DESIGN.md "monitor"): a profile (stats/profile.h) of every
// feature a caller sends and of the model's prediction over the training
// rows, stored with the model version at registration.
//
// Features are profiled as the request signature names them: categorical
// ones (FeatureSpec::is_categorical) by their category texts, the text
// serving sees (models/features.h CategoryTexts: "7" for an integer 7),
// numeric ones by value. The prediction is profiled as serving answers it:
// binary classification P(class 1) and regression the value (numeric,
// named "prediction"); multiclass the predicted class label (categorical).
//
// ProfileCsv and ProfileCsvAgainst profile a CSV file of any length in
// bounded memory (`slipway profile`): they stream it with data/csv.h's
// CsvReader, chunk_rows rows at a time, and keep only the profiles (a
// quantile sketch, the bins and a few numbers per numeric column; a count
// per distinct category per categorical column). While a chunk is profiled
// a second thread parses the next one, so two chunks are in memory at once.
//
// Thread safety: pure functions of their inputs; the CSV functions start
// and join their parsing thread within the call.
#ifndef SLIPWAY_TRAIN_BASELINE_H_
#define SLIPWAY_TRAIN_BASELINE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/filesystem.h"
#include "data/csv.h"
#include "data/table.h"
#include "models/model.h"
#include "stats/profile.h"

namespace slipway {

// The profile of `rows` (which must hold every feature of the model's
// signature; other columns are ignored) and of `model`'s predictions on
// them. InvalidArgument naming the feature when a column is missing or
// holds strings for a numeric feature.
absl::StatusOr<ProfileSet> BaselineProfile(const Model& model,
                                           const Table& rows);

struct CsvProfileOptions {
  CsvOptions csv;
  // Columns left out of the profile (an id, a timestamp); each must be a
  // column of the file.
  std::vector<std::string> skip;
  int num_bins = NumericProfile::kDefaultBins;
  int top_k = CategoricalProfile::kDefaultTopK;
};

// The baseline profile of every column of the CSV file at `path` but the
// skipped ones, without a prediction profile: numeric columns (int64,
// float64, bool as 0/1) numeric, string columns categorical.
//
// Two passes over the file. The first fills everything but the bins —
// count, missing, min, max, mean and variance, the quantile sketch, and
// the categorical profiles (from a count per distinct category) — and the
// numeric bin edges are then read off the sketch at NumericProfile::
// Baseline's ranks (edge j at the floor(j*n/num_bins)-th smallest value,
// 0-based). The second pass counts the bins. The edges are therefore
// exactly Baseline's while a column has at most the sketch's k values, and
// approximate quantiles beyond: each edge's rank is within the sketch's
// rank error (QuantileSketch::RankError, 1.3% of n at k = 200), so a
// bucket holds n/num_bins values give or take 2.7% of n. Every count is
// exact: the profile is the one NumericProfile::Baseline makes with these
// edges.
//
// Errors: the reader's (NotFound for a missing file; InvalidArgument with
// line and column for a cell that does not fit its column's type, the type
// inferred from the first chunk_rows rows); InvalidArgument naming the
// skipped names that are not columns; FailedPrecondition when the file
// changed between the two passes.
absl::StatusOr<ProfileSet> ProfileCsv(Filesystem* fs, const std::string& path,
                                      const CsvProfileOptions& options = {});

// Adds every row of `rows` to the features of `window` (made with a
// baseline's EmptyLike()), matching columns to features by name; other
// columns are ignored, and so is window->prediction. Categorical features
// take a numeric column's cells as their category texts ("7" for 7).
// window->rows grows by the table's rows. InvalidArgument, and nothing
// added, naming every feature whose column is missing, and a numeric
// feature whose column holds strings.
absl::Status AddRows(const Table& rows, ProfileSet* window);

// The profile of the CSV file at `path` against `baseline`: one pass adding
// every row to baseline.EmptyLike(), so that stats::CompareProfiles can
// compare the two. The result has no prediction profile (a CSV holds
// features, not the model's predictions), whatever the baseline has.
// Errors: the reader's, and AddRows' for the file's columns (checked on the
// header, before anything is read).
absl::StatusOr<ProfileSet> ProfileCsvAgainst(const ProfileSet& baseline,
                                             Filesystem* fs,
                                             const std::string& path,
                                             const CsvOptions& options = {});

struct CsvProfilePair {
  ProfileSet baseline;
  ProfileSet window;
};

// ProfileCsv(baseline_path) and ProfileCsvAgainst of that profile for
// window_path, with the same results, in less time: the window needs the
// baseline's edges and categories but not its bins, so its pass runs
// beside the baseline's second pass, and on two cores the pair takes about
// as long as two passes instead of three. options.skip applies to the
// baseline; the window profiles the baseline's features. Errors: those of
// the two functions.
absl::StatusOr<CsvProfilePair> ProfileCsvPair(
    Filesystem* fs, const std::string& baseline_path,
    const std::string& window_path, const CsvProfileOptions& options = {});

}  // namespace slipway

#endif  // SLIPWAY_TRAIN_BASELINE_H_
