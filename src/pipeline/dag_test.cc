#include "pipeline/dag.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slipway {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

StepSpec Step(const std::string& name, StepParams params,
              std::vector<std::string> inputs = {},
              std::vector<std::string> after = {}) {
  StepSpec step;
  step.name = name;
  step.params = std::move(params);
  step.inputs = std::move(inputs);
  step.after = std::move(after);
  return step;
}

std::vector<std::pair<int, std::string>> Inputs(const PipelineGraph& graph,
                                                int step) {
  std::vector<std::pair<int, std::string>> out;
  for (const StepInputRef& ref : graph.inputs[step]) {
    out.emplace_back(ref.producer, ref.output);
  }
  return out;
}

TEST(PipelineGraphTest, ALinearPipelineSeesItsAncestorsNearestFirst) {
  PipelineSpec pipeline;
  pipeline.steps = {Step("ingest", IngestStepSpec{}),
                    Step("split", SplitStepSpec{}),
                    Step("train", TrainStepSpec{}),
                    Step("register", RegisterStepSpec{})};
  auto graph = BuildPipelineGraph(pipeline);
  ASSERT_TRUE(graph.ok()) << graph.status();
  EXPECT_THAT(graph->dependencies[0], IsEmpty());
  EXPECT_THAT(graph->dependencies[3], ElementsAre(2));
  EXPECT_THAT(graph->dependents[1], ElementsAre(2));
  EXPECT_THAT(graph->order, ElementsAre(0, 1, 2, 3));
  EXPECT_THAT(Inputs(*graph, 3),
              ElementsAre(std::pair{2, std::string()},
                          std::pair{1, std::string()},
                          std::pair{0, std::string()}));
  EXPECT_FALSE(graph->explicit_inputs[3]);
}

TEST(PipelineGraphTest, ExplicitInputsAndAfterMakeBranches) {
  PipelineSpec pipeline;
  CommandStepSpec command;
  StepSpec prep = Step("prep", command, {"ingest"});
  prep.outputs = {"features"};
  pipeline.steps = {Step("ingest", IngestStepSpec{}), prep,
                    Step("check", ValidateStepSpec{}, {"ingest.data"}),
                    Step("train", TrainStepSpec{}, {"prep.features"},
                         {"check"})};
  auto graph = BuildPipelineGraph(pipeline);
  ASSERT_TRUE(graph.ok()) << graph.status();
  EXPECT_THAT(graph->dependencies[1], ElementsAre(0));
  EXPECT_THAT(graph->dependencies[2], ElementsAre(0));
  EXPECT_THAT(graph->dependencies[3], ElementsAre(1, 2));
  EXPECT_THAT(graph->dependents[0], ElementsAre(1, 2));
  EXPECT_THAT(Inputs(*graph, 3),
              ElementsAre(std::pair{1, std::string("features")}));
  EXPECT_THAT(Inputs(*graph, 2), ElementsAre(std::pair{0, std::string("data")}));
  EXPECT_TRUE(graph->explicit_inputs[3]);
  EXPECT_THAT(graph->order, ElementsAre(0, 1, 2, 3));
}

TEST(PipelineGraphTest, BadReferencesAndCyclesAreRefused) {
  PipelineSpec unknown;
  unknown.steps = {Step("ingest", IngestStepSpec{}),
                   Step("train", TrainStepSpec{}, {"prep"})};
  auto graph = BuildPipelineGraph(unknown);
  ASSERT_FALSE(graph.ok());
  EXPECT_THAT(std::string(graph.status().message()),
              HasSubstr("step 'train' reads 'prep'"));

  PipelineSpec no_output;
  no_output.steps = {Step("ingest", IngestStepSpec{}),
                     Step("train", TrainStepSpec{}, {"ingest.model"})};
  graph = BuildPipelineGraph(no_output);
  ASSERT_FALSE(graph.ok());
  EXPECT_THAT(std::string(graph.status().message()),
              HasSubstr("an output step 'ingest' does not write"));

  PipelineSpec cycle;
  cycle.steps = {Step("a", ValidateStepSpec{}, {}, {"b"}),
                 Step("b", ValidateStepSpec{}, {}, {"a"})};
  graph = BuildPipelineGraph(cycle);
  ASSERT_FALSE(graph.ok());
  EXPECT_THAT(std::string(graph.status().message()),
              HasSubstr("dependency cycle"));
}

}  // namespace
}  // namespace slipway
