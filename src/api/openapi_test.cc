// docs/openapi.yaml against the routes a real server registers: every
// route is documented, every documented operation is served, every
// `{name}` in a documented path is declared as a path parameter, and every
// control-plane operation states the role api/access.h requires
// (`x-slipway-role`) with its 401 (and 403 above viewer) answers.

#include <algorithm>
#include <cctype>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "api/access.h"
#include "api/server.h"
#include "gtest/gtest.h"
#include "testing/temp_dir.h"
#include "yaml-cpp/yaml.h"

namespace slipway {
namespace {

constexpr char kSpecPath[] = SLIPWAY_SOURCE_DIR "/docs/openapi.yaml";

// The operation keys of an OpenAPI path item.
const std::vector<std::string>& HttpMethods() {
  static const auto* methods = new std::vector<std::string>{
      "get", "put", "post", "delete", "options", "head", "patch", "trace"};
  return *methods;
}

std::string Upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return std::toupper(c); });
  return s;
}

absl::StatusOr<YAML::Node> LoadSpec() {
  try {
    YAML::Node spec = YAML::LoadFile(kSpecPath);
    if (!spec["paths"].IsMap()) {
      return absl::InvalidArgumentError(std::string(kSpecPath) +
                                        " has no 'paths' map");
    }
    return spec;
  } catch (const YAML::Exception& error) {
    return absl::InvalidArgumentError(std::string(kSpecPath) +
                                      " does not parse: " + error.what());
  }
}

// "GET /v2/models/{app}" for each operation the document describes.
std::set<std::string> DocumentedOperations(const YAML::Node& spec) {
  std::set<std::string> operations;
  for (const auto& path : spec["paths"]) {
    for (const std::string& method : HttpMethods()) {
      if (path.second[method]) {
        operations.insert(Upper(method) + " " + path.first.as<std::string>());
      }
    }
  }
  return operations;
}

// The `{name}` segments of a path template.
std::set<std::string> Captures(const std::string& path) {
  std::set<std::string> names;
  size_t open = path.find('{');
  while (open != std::string::npos) {
    size_t close = path.find('}', open);
    if (close == std::string::npos) break;
    names.insert(path.substr(open + 1, close - open - 1));
    open = path.find('{', close);
  }
  return names;
}

// A parameter object, following a "#/components/parameters/X" reference.
YAML::Node Resolve(const YAML::Node& spec, const YAML::Node& parameter) {
  if (!parameter["$ref"]) return parameter;
  const std::string ref = parameter["$ref"].as<std::string>();
  const std::string prefix = "#/components/parameters/";
  if (ref.rfind(prefix, 0) != 0) return YAML::Node();
  return spec["components"]["parameters"][ref.substr(prefix.size())];
}

// Adds the required path parameters declared in `parameters` to `names`;
// a malformed one (dangling $ref, not required) is added to `problems`.
void CollectPathParameters(const YAML::Node& spec, const YAML::Node& parameters,
                           const std::string& where,
                           std::set<std::string>* names,
                           std::vector<std::string>* problems) {
  if (!parameters) return;
  for (const YAML::Node& entry : parameters) {
    YAML::Node parameter = Resolve(spec, entry);
    if (!parameter || !parameter["name"] || !parameter["in"]) {
      problems->push_back(where + ": a parameter without name/in (or a " +
                          "dangling $ref)");
      continue;
    }
    if (parameter["in"].as<std::string>() != "path") continue;
    const std::string name = parameter["name"].as<std::string>();
    if (!parameter["required"] || !parameter["required"].as<bool>()) {
      problems->push_back(where + ": path parameter '" + name +
                          "' lacks required: true");
    }
    names->insert(name);
  }
}

std::string Listed(const std::vector<std::string>& items) {
  std::string text;
  for (const std::string& item : items) text += "\n  " + item;
  return text;
}

class OpenApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Server::Options options;
    options.data_dir = dir_.path();
    options.port = 0;
    options.threads = 1;
    options.max_parallel_steps = 1;
    // Registers the routes that exist only in --test-clock mode too.
    options.test_clock_start_micros = 1'900'000'000'000'000;
    absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    absl::StatusOr<YAML::Node> spec = LoadSpec();
    ASSERT_TRUE(spec.ok()) << spec.status();
    spec_ = *std::move(spec);
  }

  void TearDown() override {
    if (server_ == nullptr) return;
    server_->Shutdown();
    server_->Wait();
  }

  TempDir dir_;
  std::unique_ptr<Server> server_;
  YAML::Node spec_;
};

TEST_F(OpenApiTest, DocumentsExactlyTheRegisteredRoutes) {
  std::set<std::string> registered;
  for (const RouteInfo& route : server_->Routes()) {
    registered.insert(route.method + " " + route.pattern);
  }
  ASSERT_FALSE(registered.empty());
  const std::set<std::string> documented = DocumentedOperations(spec_);

  std::vector<std::string> undocumented;
  std::set_difference(registered.begin(), registered.end(), documented.begin(),
                      documented.end(), std::back_inserter(undocumented));
  std::vector<std::string> unserved;
  std::set_difference(documented.begin(), documented.end(), registered.begin(),
                      registered.end(), std::back_inserter(unserved));
  EXPECT_TRUE(undocumented.empty())
      << "routes the server registers but " << kSpecPath
      << " does not document:" << Listed(undocumented);
  EXPECT_TRUE(unserved.empty())
      << "operations " << kSpecPath
      << " documents but the server does not register:" << Listed(unserved);
}

TEST_F(OpenApiTest, EveryPathParameterIsDeclared) {
  std::vector<std::string> problems;
  for (const auto& path : spec_["paths"]) {
    const std::string templ = path.first.as<std::string>();
    const std::set<std::string> captures = Captures(templ);
    std::set<std::string> shared;
    CollectPathParameters(spec_, path.second["parameters"], templ, &shared,
                          &problems);
    for (const std::string& method : HttpMethods()) {
      const YAML::Node operation = path.second[method];
      if (!operation) continue;
      const std::string where = Upper(method) + " " + templ;
      std::set<std::string> declared = shared;
      CollectPathParameters(spec_, operation["parameters"], where, &declared,
                            &problems);
      for (const std::string& name : captures) {
        if (declared.count(name) == 0) {
          problems.push_back(where + ": {" + name +
                             "} has no path parameter entry");
        }
      }
      for (const std::string& name : declared) {
        if (captures.count(name) == 0) {
          problems.push_back(where + ": path parameter '" + name +
                             "' is not in the path");
        }
      }
      if (!operation["responses"] || !operation["responses"].IsMap()) {
        problems.push_back(where + ": no responses");
      }
    }
  }
  EXPECT_TRUE(problems.empty())
      << kSpecPath << " has path parameter problems:" << Listed(problems);
}

TEST_F(OpenApiTest, ControlPlaneOperationsStateTheirRoleAndRefusals) {
  std::vector<std::string> problems;
  for (const RouteAccess& route : ControlPlaneAccess()) {
    const std::string where =
        std::string(route.method) + " " + std::string(route.pattern);
    std::string method(route.method);
    std::transform(method.begin(), method.end(), method.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    const YAML::Node operation =
        spec_["paths"][std::string(route.pattern)][method];
    if (!operation) continue;  // DocumentsExactlyTheRegisteredRoutes says so
    const std::string role(RoleName(route.role));
    if (!operation["x-slipway-role"] ||
        operation["x-slipway-role"].as<std::string>() != role) {
      problems.push_back(where + ": x-slipway-role should be " + role);
    }
    const YAML::Node responses = operation["responses"];
    if (!responses || !responses["401"]) {
      problems.push_back(where + ": no 401 response");
    }
    if (route.role != Role::kViewer && (!responses || !responses["403"])) {
      problems.push_back(where + ": no 403 response");
    }
  }
  EXPECT_TRUE(problems.empty())
      << kSpecPath << " disagrees with api/access.h:" << Listed(problems);
}

}  // namespace
}  // namespace slipway
