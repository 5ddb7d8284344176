// Column helpers shared by the trainer and the evaluator (internal to
// src/train): target presence checks, class and category discovery, and
// label text, so training and evaluation map a label to the same class.
//
// Thread safety: pure functions.
#ifndef SLIPWAY_TRAIN_TARGET_H_
#define SLIPWAY_TRAIN_TARGET_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "data/table.h"

namespace slipway {

// The column named `target`, or InvalidArgument naming it when `table`
// lacks it. `role` says which data set ("training data", "test data").
absl::StatusOr<const Column*> FindTarget(const Table& table,
                                         const std::string& target,
                                         const std::string& role);

// InvalidArgument naming the count and the first row when the target has
// missing (or, for float64, non-finite) values.
absl::Status CheckTargetComplete(const Column& target, const std::string& role);

// A label as text: strings as is, int64 in decimal, bools "true"/"false",
// float64 as Float64CategoryText (so 1.0 in a test file matches class "1").
// REQUIRES: the cell is present.
std::string LabelText(const Column& column, size_t row);

// Distinct present values of a string, int64 or bool column, sorted
// (numerically for int64 and bool, bytewise for strings), as LabelText.
// Gives the class labels of a target and the categories of a feature.
std::vector<std::string> SortedDistinctValues(const Column& column);

}  // namespace slipway

#endif  // SLIPWAY_TRAIN_TARGET_H_
