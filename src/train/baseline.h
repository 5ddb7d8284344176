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
// Thread safety: a pure function of its inputs.
#ifndef SLIPWAY_TRAIN_BASELINE_H_
#define SLIPWAY_TRAIN_BASELINE_H_

#include "absl/status/statusor.h"
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

}  // namespace slipway

#endif  // SLIPWAY_TRAIN_BASELINE_H_
