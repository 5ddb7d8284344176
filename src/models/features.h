// Feature encoding: turns table columns (or single request values) into the
// dense float matrix a model's Predict takes, following the model's
// Signature. The same code encodes training, evaluation, batch scoring and
// HTTP requests, so a model sees identical numbers everywhere.
//
// Encoding per feature (one float per cell, row-major, features in signature
// order):
//   numeric feature  <- float64, int64 or bool column (bool as 0/1);
//   categorical      <- string column, the value's index in the signature's
//                       categories; a number given for a categorical feature
//                       is matched by its text form (see *CategoryText);
//                       an unseen value becomes kUnseenCategory (a NaN
//                       the model reads as missing) and is counted;
//   missing cell     -> NaN (the model's "missing" marker).
//
// Thread safety: free functions over immutable inputs; EncodeStats is the
// caller's (one per call or per thread).
#ifndef SLIPWAY_MODELS_FEATURES_H_
#define SLIPWAY_MODELS_FEATURES_H_

#include <bit>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "data/table.h"
#include "models/signature.h"

namespace slipway {

// The cell of a category the signature does not know: a quiet NaN with a
// payload of its own, so models treat it as missing while monitoring can
// still count it as unseen (IsUnseenCategory). Copying keeps the payload;
// arithmetic need not.
inline constexpr uint32_t kUnseenCategoryBits = 0x7fc0'5eedu;
inline constexpr float kUnseenCategory =
    std::bit_cast<float>(kUnseenCategoryBits);

inline bool IsUnseenCategory(float cell) {
  return std::bit_cast<uint32_t>(cell) == kUnseenCategoryBits;
}

// What encoding met besides clean values; monitoring reports both.
struct EncodeStats {
  int64_t unseen_categories = 0;  // categorical cells not in the categories
  int64_t missing_values = 0;     // missing cells (any feature)
};

// Encodes every row of `table` into `out_row_major` (resized to
// num_rows * features). Columns are found by feature name; other columns
// (target, id, ...) are ignored. InvalidArgument naming the feature when its
// column is absent or holds strings for a numeric feature. `stats` may be
// null; otherwise counts are added to it.
absl::Status EncodeTable(const Signature& signature, const Table& table,
                         std::vector<float>* out_row_major, EncodeStats* stats);

// Code of `value` for categorical feature `feature` as a float, or NaN
// (counted in stats->unseen_categories) when the value is unseen.
// REQUIRES: 0 <= feature < features().size(). `stats` may be null.
float EncodeCategory(const Signature& signature, int feature,
                     std::string_view value, EncodeStats* stats);

// Text a number stands for when given for a categorical feature (a CSV
// reader or a JSON client may type "7" as a number): integers in decimal
// ("7"), doubles in their shortest round-trip form ("7" for 7.0, "2.5"),
// bools as "true"/"false". Distinct names avoid overload ambiguity for int.
std::string Int64CategoryText(int64_t value);
std::string Float64CategoryText(double value);
std::string BoolCategoryText(bool value);

// The distinct present values of `column` as category texts, in pandas'
// category order (strings bytewise; numbers by value, integers first), the
// texts EncodeCategory matches categorical values by.
std::vector<std::string> CategoryTexts(const Column& column);

}  // namespace slipway

#endif  // SLIPWAY_MODELS_FEATURES_H_
