// Step caching: which steps may reuse the outputs of an earlier run, and
// the key that says when they may.
//
// The cache key of a step is the SHA-256 of a canonical JSON document
// holding: the step kind; its params (every key of its kind, defaults
// filled, keys sorted); the app schema for the built-ins that read it
// (validate, split, transform, train, evaluate); the declared outputs of a
// command or notebook step and the fingerprint of its code (the argv and
// the bytes of every argv word naming a file under the working directory;
// for a notebook its path, kernel and bytes); and the producer, name and
// fingerprint of every input the step reads (sorted). Retries, backoff,
// timeout and memory limit change whether a step succeeds, never what a
// successful one writes, so they are not part of the key.
//
// Steps that touch the world outside the run — ingest, score, sink and
// register — never reuse outputs; an ingest's output still feeds the keys
// downstream through its fingerprint, the data's own. `cache: false` opts a
// step out.
//
// Thread safety: pure functions (they read the files of the step's code).
#ifndef SLIPWAY_PIPELINE_STEP_CACHE_H_
#define SLIPWAY_PIPELINE_STEP_CACHE_H_

#include <string>

#include "absl/status/statusor.h"
#include "core/filesystem.h"
#include "nlohmann/json.hpp"
#include "pipeline/app_spec.h"
#include "pipeline/step_outputs.h"

namespace slipway {

// True when `step` may reuse an earlier run's outputs.
bool MayReuseOutputs(const StepSpec& step);

// The step's params as JSON (what the key hashes).
nlohmann::json StepParamsJson(const StepSpec& step);

// The cache key (64 hex digits). `source_dir` is the applied spec's
// directory, where command and notebook code is found. Errors only when a
// code file exists but cannot be read.
absl::StatusOr<std::string> StepCacheKey(const StepSpec& step,
                                         const AppSpec& spec,
                                         const std::string& source_dir,
                                         const StepOutputs& inputs,
                                         Filesystem* fs);

}  // namespace slipway

#endif  // SLIPWAY_PIPELINE_STEP_CACHE_H_
