// Train/test splitting of a Table by row index, reproducible for a seed on
// every platform: rows are shuffled with std::mt19937_64 and our own
// Fisher-Yates over unbiased bounded draws (std::shuffle and
// std::uniform_int_distribution differ between standard libraries).
//
// Stratified splitting shuffles each class of the target separately (classes
// in sorted order, one generator for all), so each class keeps its share in
// both parts; missing targets form a class of their own.
//
// Thread safety: a pure function of its arguments.
#ifndef SLIPWAY_TRAIN_SPLIT_H_
#define SLIPWAY_TRAIN_SPLIT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/table.h"

namespace slipway {

struct Split {
  std::vector<size_t> train_rows;  // ascending
  std::vector<size_t> test_rows;   // ascending
};

// Splits the rows of `table`, putting round(test_fraction * n) rows of each
// group (the whole table, or each target class when `stratify`) into the
// test part, but at least one row in each part of a group with two or more
// rows. InvalidArgument when test_fraction is not in (0, 1), the table has
// fewer than 2 rows, or `stratify` is set and `target` is not a string,
// bool or int64 column of the table.
absl::StatusOr<Split> SplitIndices(const Table& table,
                                   const std::string& target,
                                   double test_fraction, uint64_t seed,
                                   bool stratify);

}  // namespace slipway

#endif  // SLIPWAY_TRAIN_SPLIT_H_
