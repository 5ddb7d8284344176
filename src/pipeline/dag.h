// PipelineGraph: a pipeline's steps as a DAG, the shape the run executor
// schedules (pipeline/README.md "Pipelines as DAGs").
//
// Dependencies are app_spec.h's StepDependencies: a step with neither
// `inputs` nor `after` follows the previous step of the list (the first
// follows nothing), so a linear Step-1 pipeline means what it always meant;
// any other step follows exactly the producers of its inputs and its
// `after` steps.
//
// Inputs: an explicit input "<step>" takes every output of that step,
// "<step>.<output>" one of them. A built-in step without explicit inputs
// sees the outputs of all its ancestors, nearest first (a register step at
// the end of a linear pipeline finds the model of the train step three
// steps up).
//
// ParseAppSpec already rejects unknown steps, unknown outputs and cycles;
// BuildPipelineGraph checks them again (FailedPrecondition naming the step)
// because the executor relies on them.
//
// Thread safety: pure functions; a PipelineGraph is a plain value.
#ifndef SLIPWAY_PIPELINE_DAG_H_
#define SLIPWAY_PIPELINE_DAG_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "pipeline/app_spec.h"

namespace slipway {

// One input of a step: an output of another step, by index.
struct StepInputRef {
  int producer = 0;    // index into PipelineSpec::steps
  std::string output;  // empty: every output of the producer
};

struct PipelineGraph {
  // Per step (index into PipelineSpec::steps): the steps it waits for, in
  // ascending order.
  std::vector<std::vector<int>> dependencies;
  // Per step: the steps that wait for it, in ascending order.
  std::vector<std::vector<int>> dependents;
  // Per step: what it reads. Explicit inputs in the order written; for a
  // step without `inputs`, every ancestor (all outputs), nearest first:
  // by distance in the graph, then later list position first.
  std::vector<std::vector<StepInputRef>> inputs;
  // Per step: whether its inputs were written in the spec.
  std::vector<bool> explicit_inputs;
  // Every step index in an order where each step comes after its
  // dependencies (list order where the graph allows).
  std::vector<int> order;
};

absl::StatusOr<PipelineGraph> BuildPipelineGraph(const PipelineSpec& pipeline);

}  // namespace slipway

#endif  // SLIPWAY_PIPELINE_DAG_H_
