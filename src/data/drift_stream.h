// The drift stream: a deterministic, churn-like tabular stream with scheduled
// covariate shift and concept drift, for tests, the demo and monitoring
// scenarios (train on early rows, replay undrifted then drifted traffic,
// send the labels back as delayed feedback).
//
// Columns, in order:
//   customer_id    int64    the global row index i (the `schema.id` column)
//   age            int64    uniform 18..80
//   income         float64  lognormal (log-mean 10.5, log-sd 0.5), cents
//   tenure         int64    months, uniform 0..120
//   plan           string   basic, plus, pro, team (uniform)
//   region         string   north, south, east, west, central (uniform)
//   support_calls  int64    uniform 0..12
//   monthly_spend  float64  normal(70, 20) floored at 0, cents
//   f0 .. fK-1     float64  standard normal, 4 decimals (extra_numeric = K)
//   churned        int64    0/1 (absent when with_label is false)
//
// `churned` is drawn from a logistic model of the features: churn rises
// with support calls, falls with age, tenure and income, and depends on the
// plan and region. Its Bayes AUC is about 0.85, so a model trained on the
// rows reaches a useful AUC. The label uses every value as generated, before
// cells are blanked as missing.
//
// Row i depends only on (seed, i): every cell is a counter-based hash
// (SplitMix64 finalizer) of the seed, the row index and the field, so any
// slice [start, start + rows) is reproducible on its own and two processes
// generating different slices agree. Shift and drift rows are global row
// indices, not offsets into the slice.
//
// Drift, from a global row on:
// - covariate shift changes the distribution of `shifted_features` only:
//   age +12 years, income x1.6, tenure halved, support_calls +3,
//   monthly_spend +25, plan: 60% of rows moved to basic, region: 60% of rows
//   moved to central, fK +1. The label keeps following the same logistic
//   model of the (shifted) features.
// - concept drift flips the label's dependence on support_calls and plan,
//   so a model learnt before it loses 0.2 to 0.3 accuracy and its AUC falls
//   below 0.5.
//
// Numbers are rounded to the decimals above before they are used, so the
// Table and the CSV hold the same values. Floats are written without
// trailing zeros: a CSV of a few rows whose floats all happen to be whole
// reads back as int64 unless the reader pins the type.
//
// Thread safety: the functions are pure and safe to call concurrently.
#ifndef SLIPWAY_DATA_DRIFT_STREAM_H_
#define SLIPWAY_DATA_DRIFT_STREAM_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "data/table.h"

namespace slipway {

struct DriftStreamOptions {
  uint64_t seed = 1;
  // The rows generated are [start, start + rows).
  int64_t start = 0;
  int64_t rows = 1000;
  // Global row from which shifted_features are shifted; -1: never.
  int64_t covariate_shift_at = -1;
  // Features the covariate shift moves (DriftFeatureNames()).
  std::vector<std::string> shifted_features = {"income", "region"};
  // Global row from which the label model is drifted; -1: never.
  int64_t concept_drift_at = -1;
  // Chance, per cell, that a numeric feature (age, income, tenure,
  // support_calls, monthly_spend, f*) is missing. In [0, 1).
  double missing_fraction = 0.02;
  bool with_label = true;
  // Extra standard-normal feature columns f0 .. f<extra_numeric - 1>, for
  // wide benchmark tables. At most 10000.
  int extra_numeric = 0;
};

// The feature names a covariate shift may name: age, income, tenure, plan,
// region, support_calls, monthly_spend, then f0 .. f<extra_numeric - 1>.
std::vector<std::string> DriftFeatureNames(int extra_numeric);

// InvalidArgument unless every name is one of DriftFeatureNames(
// extra_numeric), each once: "unknown feature 'incme'; choose from age,
// income, ...".
absl::Status CheckShiftedFeatures(const std::vector<std::string>& names,
                                  int extra_numeric);

// The columns the options produce, in order, with their types.
std::vector<std::pair<std::string, DataType>> DriftStreamColumns(
    const DriftStreamOptions& options);

// InvalidArgument naming the option and the fix: a negative start or rows,
// a shift or drift row below -1, an unknown or duplicated shifted feature,
// a covariate shift with no feature to shift, missing_fraction outside
// [0, 1), extra_numeric outside 0..10000.
absl::Status ValidateDriftStreamOptions(const DriftStreamOptions& options);

// The rows as one Table (memory grows with rows; use WriteDriftCsv for
// large streams).
absl::StatusOr<Table> GenerateDriftTable(const DriftStreamOptions& options);

// Receives the CSV text piece by piece; a non-OK answer stops the writing
// and is returned.
using DriftCsvWriter = std::function<absl::Status(std::string_view text)>;

// The rows as CSV: a header line, then one "\n"-terminated line per row,
// numbers as plain decimals, missing cells empty; csv.h's reader turns it
// into the Table GenerateDriftTable returns. Handed to `write` in pieces
// (the header with the first) of at most `chunk_rows` rows, so memory stays
// bounded by one chunk whatever the row count.
// REQUIRES: chunk_rows > 0.
absl::Status WriteDriftCsv(const DriftStreamOptions& options,
                           const DriftCsvWriter& write,
                           size_t chunk_rows = 4096);

}  // namespace slipway

#endif  // SLIPWAY_DATA_DRIFT_STREAM_H_
