#include "pipeline/dag.h"

#include <algorithm>
#include <map>
#include <set>
#include <string_view>

namespace slipway {
namespace {

absl::Status StepError(const StepSpec& step, const std::string& what) {
  return absl::FailedPreconditionError("step '" + step.name + "' " + what +
                                       "; fix the pipeline in slipway.yaml");
}

// Every ancestor of `step`, nearest first: breadth-first over dependencies,
// each level visited from the latest list position down.
std::vector<int> Ancestors(const PipelineGraph& graph, int step) {
  std::vector<int> result;
  std::set<int> seen;
  std::vector<int> level = graph.dependencies[step];
  while (!level.empty()) {
    std::sort(level.rbegin(), level.rend());
    std::vector<int> next;
    for (int s : level) {
      if (!seen.insert(s).second) continue;
      result.push_back(s);
      next.insert(next.end(), graph.dependencies[s].begin(),
                  graph.dependencies[s].end());
    }
    level = std::move(next);
  }
  return result;
}

}  // namespace

absl::StatusOr<PipelineGraph> BuildPipelineGraph(const PipelineSpec& pipeline) {
  const int n = static_cast<int>(pipeline.steps.size());
  std::map<std::string_view, int> index;
  for (int i = 0; i < n; ++i) {
    if (!index.emplace(pipeline.steps[i].name, i).second) {
      return StepError(pipeline.steps[i], "appears twice");
    }
  }
  auto find = [&](std::string_view name) {
    auto it = index.find(name);
    return it == index.end() ? -1 : it->second;
  };
  PipelineGraph graph;
  graph.dependencies.resize(n);
  graph.dependents.resize(n);
  graph.inputs.resize(n);
  graph.explicit_inputs.resize(n);
  for (int i = 0; i < n; ++i) {
    const StepSpec& step = pipeline.steps[i];
    graph.explicit_inputs[i] = !step.inputs.empty();
    for (const std::string& input : step.inputs) {
      StepInput ref = ResolveStepInput(input);
      const int producer = find(ref.step);
      if (producer < 0) {
        return StepError(step, "reads '" + input +
                                   "', but the pipeline has no step '" +
                                   ref.step + "'");
      }
      std::vector<std::string> names =
          StepOutputNames(pipeline.steps[producer]);
      if (!ref.output.empty() &&
          std::find(names.begin(), names.end(), ref.output) == names.end()) {
        return StepError(step, "reads '" + input + "', an output step '" +
                                   ref.step + "' does not write");
      }
      graph.inputs[i].push_back({producer, ref.output});
    }
    for (const std::string& after : step.after) {
      if (find(after) < 0) {
        return StepError(step, "comes after '" + after +
                                   "', but the pipeline has no such step");
      }
    }
    std::set<int> deps;
    for (const StepSpec* dep : StepDependencies(pipeline, step)) {
      deps.insert(find(dep->name));
    }
    if (deps.count(i)) return StepError(step, "depends on itself");
    graph.dependencies[i].assign(deps.begin(), deps.end());
    for (int d : deps) graph.dependents[d].push_back(i);
  }

  // Kahn's algorithm, always taking the ready step earliest in the list.
  std::vector<int> waiting(n);
  std::set<int> ready;
  for (int i = 0; i < n; ++i) {
    waiting[i] = static_cast<int>(graph.dependencies[i].size());
    if (waiting[i] == 0) ready.insert(i);
  }
  while (!ready.empty()) {
    int s = *ready.begin();
    ready.erase(ready.begin());
    graph.order.push_back(s);
    for (int d : graph.dependents[s]) {
      if (--waiting[d] == 0) ready.insert(d);
    }
  }
  for (int i = 0; i < n; ++i) {
    if (waiting[i] > 0) {
      return StepError(pipeline.steps[i], "is part of a dependency cycle");
    }
  }
  for (int i = 0; i < n; ++i) {
    if (graph.explicit_inputs[i]) continue;
    for (int a : Ancestors(graph, i)) graph.inputs[i].push_back({a, ""});
  }
  return graph;
}

}  // namespace slipway
