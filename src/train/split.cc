#include "train/split.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <utility>

#include "core/status.h"

namespace slipway {
namespace {

// Uniform draw in [0, bound) without modulo bias: reject the lowest
// 2^64 mod bound values so the rest split evenly.
uint64_t UniformBelow(std::mt19937_64& rng, uint64_t bound) {
  const uint64_t threshold = (0 - bound) % bound;
  while (true) {
    const uint64_t r = rng();
    if (r >= threshold) return r % bound;
  }
}

void FisherYates(std::mt19937_64& rng, std::vector<size_t>* rows) {
  for (size_t i = rows->size(); i > 1; --i) {
    const size_t j = static_cast<size_t>(UniformBelow(rng, i));
    std::swap((*rows)[i - 1], (*rows)[j]);
  }
}

// Shuffles one group and moves its first round(fraction * n) rows to test.
void SplitGroup(std::mt19937_64& rng, double test_fraction,
                std::vector<size_t> rows, Split* split) {
  FisherYates(rng, &rows);
  const size_t n = rows.size();
  size_t test = static_cast<size_t>(std::llround(test_fraction * n));
  if (n >= 2) test = std::clamp<size_t>(test, 1, n - 1);
  split->test_rows.insert(split->test_rows.end(), rows.begin(),
                          rows.begin() + test);
  split->train_rows.insert(split->train_rows.end(), rows.begin() + test,
                           rows.end());
}

// Groups rows by target class, ordered by class value so the generator
// meets the groups in the same order whatever the row order of classes.
absl::StatusOr<std::vector<std::vector<size_t>>> GroupsByClass(
    const Column& target) {
  // Key: (present, rank of the value); missing rows form group (0, 0).
  std::map<std::pair<int, int64_t>, std::vector<size_t>> groups;
  std::vector<int64_t> string_rank;
  switch (target.type()) {
    case DataType::kString: {
      const std::vector<std::string>& dictionary = target.dictionary();
      std::vector<size_t> order(dictionary.size());
      std::iota(order.begin(), order.end(), 0);
      std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        return dictionary[a] < dictionary[b];
      });
      string_rank.resize(dictionary.size());
      for (size_t rank = 0; rank < order.size(); ++rank) {
        string_rank[order[rank]] = static_cast<int64_t>(rank);
      }
      break;
    }
    case DataType::kInt64:
    case DataType::kBool:
      break;
    case DataType::kFloat64:
      return absl::InvalidArgumentError(
          "cannot stratify on target '" + target.name() +
          "': it is float64 (a regression target); split without "
          "stratification");
  }
  for (size_t row = 0; row < target.size(); ++row) {
    std::pair<int, int64_t> key{0, 0};
    if (!target.IsMissing(row)) {
      switch (target.type()) {
        case DataType::kString:
          key = {1, string_rank[target.CodeAt(row)]};
          break;
        case DataType::kInt64:
          key = {1, target.Int64At(row)};
          break;
        case DataType::kBool:
          key = {1, target.BoolAt(row) ? 1 : 0};
          break;
        case DataType::kFloat64:
          break;
      }
    }
    groups[key].push_back(row);
  }
  std::vector<std::vector<size_t>> out;
  out.reserve(groups.size());
  for (auto& [key, rows] : groups) out.push_back(std::move(rows));
  return out;
}

}  // namespace

absl::StatusOr<Split> SplitIndices(const Table& table,
                                   const std::string& target,
                                   double test_fraction, uint64_t seed,
                                   bool stratify) {
  if (!(test_fraction > 0.0 && test_fraction < 1.0)) {
    return absl::InvalidArgumentError(
        "split: test_fraction must be between 0 and 1 (exclusive), got " +
        std::to_string(test_fraction));
  }
  const size_t n = table.num_rows();
  if (n < 2) {
    return absl::InvalidArgumentError(
        "split: the table has " + std::to_string(n) +
        " rows; at least 2 are needed for a train and a test part");
  }
  std::vector<std::vector<size_t>> groups;
  if (stratify) {
    const Column* column = table.FindColumn(target);
    if (column == nullptr) {
      return absl::InvalidArgumentError("split: cannot stratify on target '" +
                                        target +
                                        "': the table has no such column");
    }
    ASSIGN_OR_RETURN(groups, GroupsByClass(*column), "split");
  } else {
    std::vector<size_t> all(n);
    std::iota(all.begin(), all.end(), 0);
    groups.push_back(std::move(all));
  }

  std::mt19937_64 rng(seed);
  Split split;
  for (std::vector<size_t>& rows : groups) {
    SplitGroup(rng, test_fraction, std::move(rows), &split);
  }
  std::sort(split.train_rows.begin(), split.train_rows.end());
  std::sort(split.test_rows.begin(), split.test_rows.end());
  return split;
}

}  // namespace slipway
