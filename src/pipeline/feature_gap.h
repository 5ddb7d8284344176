// The feature gap check of `slipway apply`: before a new revision is
// stored, every place that will feed the app's champion must be able to
// provide each of its features.
//
// Checked against the champion's signature:
// - each score step that scores with the champion (`model: champion`, the
//   default) — its source is opened (pipeline/data_io.h) and only its first
//   chunk is read, for its column names;
// - `endpoint.fields`, when declared and the endpoint serves the champion.
// A source that cannot be checked — a file that does not exist yet, a
// database that does not answer, a source with no rows, any error opening or
// reading it — is skipped, and a warning naming it and why is returned. Each
// source is read once however many steps score it.
//
// Errors: FailedPrecondition naming the pipeline, the step, the data entry
// and every missing feature ("pipeline 'nightly' step 'score': data entry
// 'sales' (postgres postgresql://app:***@db/shop) lacks the champion's
// features 'age', 'plan'; ..."), or the missing fields of the endpoint.
//
// Thread safety: a pure function of its arguments; may run concurrently.
#ifndef SLIPWAY_PIPELINE_FEATURE_GAP_H_
#define SLIPWAY_PIPELINE_FEATURE_GAP_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/filesystem.h"
#include "models/signature.h"
#include "pipeline/app_spec.h"

namespace slipway {

// Returns the warnings about what could not be checked (empty when all
// was), or FailedPrecondition at the first gap found.
absl::StatusOr<std::vector<std::string>> CheckFeatureGap(
    const AppSpec& spec, const Signature& champion,
    const std::string& source_dir, Filesystem* fs);

}  // namespace slipway

#endif  // SLIPWAY_PIPELINE_FEATURE_GAP_H_
