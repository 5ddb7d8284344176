#include "models/torchscript_model.h"

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <latch>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "testing/python_reference.h"
#include "testing/temp_dir.h"

namespace slipway {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr size_t kRows = 300;
constexpr int64_t kPythonTimeoutMs = 240000;

// Builds each network with a fixed seed, saves it as TorchScript (scripted
// or traced) or, for "pickled", with plain torch.save, and answers with
// PyTorch's own outputs on the request's rows: probabilities for
// classifiers (softmax / sigmoid of the logits for the logit models,
// column 1 of two-class outputs), values for regression.
constexpr char kScript[] = R"PY(
import json, sys
import torch
from torch import nn

torch.set_num_threads(1)
requests = json.load(open(sys.argv[1]))


class Mlp(nn.Module):
    def __init__(self, inputs, hidden, outputs, softmax):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(),
                                 nn.Linear(hidden, outputs))
        self.softmax = softmax

    def forward(self, x):
        y = self.net(x)
        return torch.softmax(y, dim=1) if self.softmax else y


class BinarySigmoid(nn.Module):
    def __init__(self, inputs):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(inputs, 8), nn.Tanh(),
                                 nn.Linear(8, 1), nn.Sigmoid())

    def forward(self, x):
        return self.net(x)


class Regression(nn.Module):
    def __init__(self, inputs):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(inputs, 16), nn.ReLU(),
                                 nn.Linear(16, 1))

    def forward(self, x):
        return self.net(x).squeeze(1)


class InPlace(nn.Module):
    def forward(self, x):
        x.mul_(2.0)
        return x.sum(1)


def build(name, inputs):
    torch.manual_seed(7)
    if name == "mlp_scripted":
        return Mlp(inputs, 64, 10, True), "script"
    if name == "mlp_logits_traced":
        return Mlp(inputs, 64, 10, False), "trace"
    if name == "binary_sigmoid_traced":
        return BinarySigmoid(inputs), "trace"
    if name == "binary_two_scripted":
        return Mlp(inputs, 8, 2, True), "script"
    if name == "binary_two_logits_scripted":
        return Mlp(inputs, 8, 2, False), "script"
    if name == "regression_scripted":
        return Regression(inputs), "script"
    if name == "in_place_scripted":
        return InPlace(), "script"
    if name == "pickled":
        return Regression(inputs), "pickle"
    raise ValueError(name)


answers = []
for request in requests:
    name, inputs = request["name"], request["inputs"]
    model, how = build(name, inputs)
    model.eval()
    x = torch.tensor(request["rows"], dtype=torch.float32).reshape(-1, inputs)
    path = request["dir"] + "/" + name + ".pt"
    if how == "script":
        torch.jit.save(torch.jit.script(model), path)
    elif how == "trace":
        torch.jit.save(torch.jit.trace(model, x[:5]), path)
    else:
        torch.save(model, path)
    with torch.no_grad():
        y = model(x.clone())
    if name in ("mlp_logits_traced",):
        y = torch.softmax(y, dim=1)
    if name == "binary_two_logits_scripted":
        y = torch.softmax(y, dim=1)
    if name.startswith("binary_two"):
        y = y[:, 1]
    answers.append([float(v) for v in y.reshape(-1).tolist()])
open(requests[0]["dir"] + "/torch_version.txt", "w").write(torch.__version__)
json.dump(answers, open(sys.argv[2], "w"))
)PY";

struct Network {
  const char* name;
  int inputs;
};

constexpr Network kNetworks[] = {
    {"mlp_scripted", 784},
    {"mlp_logits_traced", 784},
    {"binary_sigmoid_traced", 12},
    {"binary_two_scripted", 12},
    {"binary_two_logits_scripted", 12},
    {"regression_scripted", 6},
    {"in_place_scripted", 6},
    {"pickled", 6},
};

// Rows like Fashion-MNIST's pixels: uniform in [0, 1), fixed seed.
std::vector<float> RandomRows(size_t rows, int cols, uint32_t seed) {
  std::mt19937 engine(seed);
  std::uniform_real_distribution<float> pixel(0.0f, 1.0f);
  std::vector<float> values(rows * static_cast<size_t>(cols));
  for (float& v : values) v = pixel(engine);
  return values;
}

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Every network's saved file, input rows and PyTorch outputs, made once per
// test process by one python3 run (the files are read into memory, so their
// directory is gone once this is built).
struct Reference {
  std::map<std::string, std::string> bytes;
  std::map<std::string, std::vector<float>> rows;
  std::map<std::string, std::vector<double>> outputs;
  std::string torch_version;
};

const Reference& References() {
  static const Reference* const reference = [] {
    auto* ref = new Reference();
    TempDir dir;
    nlohmann::json requests = nlohmann::json::array();
    uint32_t seed = 1;
    for (const Network& network : kNetworks) {
      std::vector<float> rows = RandomRows(kRows, network.inputs, seed++);
      requests.push_back({{"name", network.name},
                          {"inputs", network.inputs},
                          {"dir", dir.path()},
                          {"rows", rows}});
      ref->rows[network.name] = std::move(rows);
    }
    absl::StatusOr<std::vector<std::vector<double>>> answers =
        RunPythonReference(kScript, requests, kPythonTimeoutMs);
    EXPECT_TRUE(answers.ok()) << answers.status();
    if (!answers.ok()) return ref;
    for (size_t i = 0; i < std::size(kNetworks); ++i) {
      const std::string name = kNetworks[i].name;
      ref->outputs[name] = (*answers)[i];
      ref->bytes[name] = ReadBytes(dir.path() + "/" + name + ".pt");
    }
    ref->torch_version = ReadBytes(dir.path() + "/torch_version.txt");
    return ref;
  }();
  return *reference;
}

std::vector<FeatureSpec> Features(int count) {
  std::vector<FeatureSpec> features;
  for (int i = 0; i < count; ++i) {
    features.push_back({absl::StrCat("f", i), DataType::kFloat64, {}});
  }
  return features;
}

Signature Multiclass(int features, int classes) {
  std::vector<std::string> labels;
  for (int i = 0; i < classes; ++i) labels.push_back(std::to_string(i));
  return Signature(Task::kMulticlassClassification, Features(features), "y",
                   DataType::kInt64, labels);
}

Signature Binary(int features) {
  return Signature(Task::kBinaryClassification, Features(features), "y",
                   DataType::kInt64, {"0", "1"});
}

Signature Regression(int features) {
  return Signature(Task::kRegression, Features(features), "y",
                   DataType::kFloat64, {});
}

TorchOptions PluginOptions() {
  TorchOptions options;
  options.plugin_path = SLIPWAY_TORCH_PLUGIN_PATH;
  return options;
}

// Loads `name` and checks Predict on all its rows against PyTorch.
void ExpectMatchesPython(const std::string& name, Signature signature,
                         bool logits) {
  const Reference& ref = References();
  ASSERT_TRUE(ref.bytes.count(name)) << name;
  TorchOptions options = PluginOptions();
  options.outputs_are_logits = logits;
  absl::StatusOr<std::unique_ptr<Model>> model =
      LoadTorchScriptModel(ref.bytes.at(name), std::move(signature), options);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->format(), kTorchScriptFormat);
  std::vector<float> out;
  ASSERT_TRUE((*model)->Predict(ref.rows.at(name).data(), kRows, &out).ok());
  const std::vector<double>& expected = ref.outputs.at(name);
  ASSERT_EQ(out.size(), expected.size());
  ASSERT_EQ(out.size() % kRows, 0u);
  for (size_t i = 0; i < out.size(); ++i) {
    ASSERT_NEAR(out[i], expected[i], 1e-6) << name << " value " << i;
  }
}

TEST(TorchScriptModelTest, ScriptedMlpClassifierMatchesPython) {
  ExpectMatchesPython("mlp_scripted", Multiclass(784, 10), false);
}

TEST(TorchScriptModelTest, TracedMlpLogitsGetSoftmax) {
  ExpectMatchesPython("mlp_logits_traced", Multiclass(784, 10), true);
}

TEST(TorchScriptModelTest, BinarySigmoidOutputIsClassOneProbability) {
  ExpectMatchesPython("binary_sigmoid_traced", Binary(12), false);
}

TEST(TorchScriptModelTest, BinaryTwoColumnsGiveColumnOne) {
  ExpectMatchesPython("binary_two_scripted", Binary(12), false);
  ExpectMatchesPython("binary_two_logits_scripted", Binary(12), true);
}

TEST(TorchScriptModelTest, RegressionMatchesPython) {
  ExpectMatchesPython("regression_scripted", Regression(6), false);
}

TEST(TorchScriptModelTest, ConcurrentPredictEqualsSingleThread) {
  const Reference& ref = References();
  ASSERT_TRUE(ref.bytes.count("mlp_scripted"));
  absl::StatusOr<std::unique_ptr<Model>> model = LoadTorchScriptModel(
      ref.bytes.at("mlp_scripted"), Multiclass(784, 10), PluginOptions());
  ASSERT_TRUE(model.ok()) << model.status();
  const std::vector<float>& rows = ref.rows.at("mlp_scripted");
  // Batches of 1 to 37 rows, covering all rows.
  std::vector<std::pair<size_t, size_t>> batches;
  for (size_t start = 0, i = 0; start < kRows; start += batches.back().second) {
    batches.emplace_back(start,
                         std::min<size_t>(1 + (i++ * 13) % 37, kRows - start));
  }
  std::vector<std::vector<float>> expected(batches.size());
  for (size_t b = 0; b < batches.size(); ++b) {
    ASSERT_TRUE((*model)
                    ->Predict(rows.data() + batches[b].first * 784,
                              batches[b].second, &expected[b])
                    .ok());
  }
  constexpr int kThreads = 4;
  constexpr int kRounds = 20;
  std::latch start(kThreads);
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      std::vector<float> out;
      for (int round = 0; round < kRounds; ++round) {
        // Each thread walks the batches from a different offset, so
        // different batch sizes run at the same time.
        for (size_t i = 0; i < batches.size(); ++i) {
          const size_t b = (i + static_cast<size_t>(t) * 3) % batches.size();
          const absl::Status status = (*model)->Predict(
              rows.data() + batches[b].first * 784, batches[b].second, &out);
          if (!status.ok() || out != expected[b]) ++mismatches[t];
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(mismatches, std::vector<int>(kThreads, 0));
}

TEST(TorchScriptModelTest, BytesThatAreNotTorchScriptAreRefused) {
  absl::StatusOr<std::unique_ptr<Model>> model = LoadTorchScriptModel(
      "this is not a TorchScript file", Regression(6), PluginOptions());
  ASSERT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(model.status().message(),
              HasSubstr("LibTorch cannot load it (PytorchStreamReader"));
  EXPECT_THAT(model.status().message(),
              HasSubstr("torch.jit.save(torch.jit.script(model) or "
                        "torch.jit.trace(model, example), path)"));
  EXPECT_EQ(std::string(model.status().message()).find('\n'),
            std::string::npos);
}

TEST(TorchScriptModelTest, PickledModuleIsRefused) {
  const Reference& ref = References();
  ASSERT_TRUE(ref.bytes.count("pickled"));
  absl::StatusOr<std::unique_ptr<Model>> model = LoadTorchScriptModel(
      ref.bytes.at("pickled"), Regression(6), PluginOptions());
  ASSERT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(model.status().message(), HasSubstr("LibTorch cannot load it"));
  EXPECT_THAT(model.status().message(), HasSubstr("torch.jit.save"));
}

TEST(TorchScriptModelTest, WrongOutputWidthNamesShapeAndExpectation) {
  const Reference& ref = References();
  ASSERT_TRUE(ref.bytes.count("mlp_scripted"));
  absl::StatusOr<std::unique_ptr<Model>> model = LoadTorchScriptModel(
      ref.bytes.at("mlp_scripted"), Multiclass(784, 3), PluginOptions());
  ASSERT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(model.status().message(),
              HasSubstr("output of shape [1, 10] for one row"));
  EXPECT_THAT(model.status().message(),
              HasSubstr("multiclass_classification task expects [rows, 3]"));

  model = LoadTorchScriptModel(ref.bytes.at("mlp_scripted"), Regression(784),
                               PluginOptions());
  ASSERT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(model.status().message(),
              HasSubstr("regression task expects [rows] or [rows, 1]"));
}

TEST(TorchScriptModelTest, WrongFeatureCountFailsTheTestPrediction) {
  const Reference& ref = References();
  ASSERT_TRUE(ref.bytes.count("mlp_scripted"));
  absl::StatusOr<std::unique_ptr<Model>> model = LoadTorchScriptModel(
      ref.bytes.at("mlp_scripted"), Multiclass(5, 10), PluginOptions());
  ASSERT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(model.status().message(),
              HasSubstr("test prediction on one row of 5 zeros"));
  EXPECT_THAT(model.status().message(),
              HasSubstr("mat1 and mat2 shapes cannot be multiplied (1x5 and "
                        "784x64)"));
}

TEST(TorchScriptModelTest, ModuleWritingItsInputIsRefused) {
  const Reference& ref = References();
  ASSERT_TRUE(ref.bytes.count("in_place_scripted"));
  absl::StatusOr<std::unique_ptr<Model>> model = LoadTorchScriptModel(
      ref.bytes.at("in_place_scripted"), Regression(6), PluginOptions());
  ASSERT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(model.status().message(),
              HasSubstr("modified its input tensor in place"));
}

TEST(TorchScriptModelTest, LogitsOptionIsForClassificationOnly) {
  TorchOptions options = PluginOptions();
  options.outputs_are_logits = true;
  absl::StatusOr<std::unique_ptr<Model>> model =
      LoadTorchScriptModel("unused", Regression(6), options);
  ASSERT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(model.status().message(), HasSubstr("`output: logits`"));
}

TEST(TorchScriptModelTest, MissingPluginIsFailedPreconditionNamingPaths) {
  TempDir dir;
  TorchOptions options;
  options.plugin_path = dir.path() + "/libslipway_torch.so";
  absl::StatusOr<std::unique_ptr<Model>> model =
      LoadTorchScriptModel("unused", Regression(6), options);
  ASSERT_EQ(model.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(model.status().message(),
              HasSubstr(options.plugin_path + " (no such file)"));
  EXPECT_THAT(model.status().message(),
              HasSubstr("install libtorch-dev and rebuild, or set "
                        "SLIPWAY_TORCH_PLUGIN"));
  EXPECT_EQ(TorchRuntimeVersions(options).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(TorchScriptModelTest, DefaultPathsAreNextToBinaryThenEnvironment) {
  // The test binary's directory holds no plugin, so the environment decides.
  TempDir dir;
  const std::string missing = dir.path() + "/elsewhere.so";
  ASSERT_EQ(setenv("SLIPWAY_TORCH_PLUGIN", missing.c_str(), 1), 0);
  absl::StatusOr<nlohmann::json> versions = TorchRuntimeVersions({});
  ASSERT_EQ(versions.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(versions.status().message(),
              HasSubstr("/libslipway_torch.so (no such file), " + missing +
                        " (no such file)"));

  ASSERT_EQ(setenv("SLIPWAY_TORCH_PLUGIN", SLIPWAY_TORCH_PLUGIN_PATH, 1), 0);
  versions = TorchRuntimeVersions({});
  ASSERT_EQ(unsetenv("SLIPWAY_TORCH_PLUGIN"), 0);
  ASSERT_TRUE(versions.ok()) << versions.status();
  // Debian's 1.13.1 packages: the headers say 1.13.0, Python 1.13.0a0.
  EXPECT_THAT(References().torch_version,
              StartsWith(versions->at("torch").get<std::string>()));

  versions = TorchRuntimeVersions({});
  ASSERT_EQ(versions.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(versions.status().message(),
              HasSubstr("$SLIPWAY_TORCH_PLUGIN (not set)"));
}

}  // namespace
}  // namespace slipway
