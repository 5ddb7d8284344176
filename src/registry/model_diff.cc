#include "registry/model_diff.h"

#include <map>
#include <set>
#include <string>
#include <vector>

namespace slipway {
namespace {

using nlohmann::json;

json ObjectOf(const std::string& text) {
  json parsed = json::parse(text, nullptr, false);
  return parsed.is_object() ? parsed : json::object();
}

json ValueOr(const json& object, const std::string& key) {
  auto it = object.find(key);
  return it == object.end() ? json(nullptr) : *it;
}

// Every key of either object, sorted.
std::set<std::string> Keys(const json& a, const json& b) {
  std::set<std::string> keys;
  for (const auto& [key, value] : a.items()) keys.insert(key);
  for (const auto& [key, value] : b.items()) keys.insert(key);
  return keys;
}

json DiffParams(const json& from, const json& to) {
  json changes = json::array();
  for (const std::string& name : Keys(from, to)) {
    json a = ValueOr(from, name);
    json b = ValueOr(to, name);
    if (a == b) continue;
    changes.push_back({{"name", name}, {"from", a}, {"to", b}});
  }
  return changes;
}

json DiffMetrics(const json& from, const json& to) {
  json rows = json::array();
  for (const std::string& name : Keys(from, to)) {
    json a = ValueOr(from, name);
    json b = ValueOr(to, name);
    json difference = nullptr;
    if (a.is_number() && b.is_number()) {
      difference = b.get<double>() - a.get<double>();
    }
    rows.push_back(
        {{"name", name}, {"from", a}, {"to", b}, {"difference", difference}});
  }
  return rows;
}

json Change(const json& from, const json& to) {
  if (from == to) return nullptr;
  return {{"from", from}, {"to", to}};
}

// The features of a signature by name, and their order.
struct Features {
  std::map<std::string, json> by_name;
  std::vector<std::string> order;
};

Features FeaturesOf(const json& signature) {
  Features features;
  auto it = signature.find("features");
  if (it == signature.end() || !it->is_array()) return features;
  for (const json& f : *it) {
    if (!f.is_object() || !f.contains("name") || !f["name"].is_string()) {
      continue;
    }
    std::string name = f["name"];
    if (features.by_name.emplace(name, f).second) {
      features.order.push_back(name);
    }
  }
  return features;
}

std::vector<std::string> Categories(const json& feature) {
  std::vector<std::string> values;
  auto it = feature.find("categories");
  if (it == feature.end() || !it->is_array()) return values;
  for (const json& v : *it) {
    values.push_back(v.is_string() ? v.get<std::string>() : v.dump());
  }
  return values;
}

json Brief(const std::string& name, const json& feature) {
  return {{"name", name}, {"type", ValueOr(feature, "type")}};
}

json DiffSignature(const json& from, const json& to) {
  Features a = FeaturesOf(from);
  Features b = FeaturesOf(to);
  json added = json::array();
  json removed = json::array();
  json retyped = json::array();
  json categories = json::array();
  std::vector<std::string> common_a;
  std::vector<std::string> common_b;
  for (const std::string& name : a.order) {
    if (b.by_name.count(name) == 0) {
      removed.push_back(Brief(name, a.by_name[name]));
    } else {
      common_a.push_back(name);
    }
  }
  for (const std::string& name : b.order) {
    auto old = a.by_name.find(name);
    if (old == a.by_name.end()) {
      added.push_back(Brief(name, b.by_name[name]));
      continue;
    }
    common_b.push_back(name);
    const json& was = old->second;
    const json& now = b.by_name[name];
    if (ValueOr(was, "type") != ValueOr(now, "type")) {
      retyped.push_back({{"name", name},
                         {"from", ValueOr(was, "type")},
                         {"to", ValueOr(now, "type")}});
    }
    std::vector<std::string> before = Categories(was);
    std::vector<std::string> after = Categories(now);
    if (before == after) continue;
    std::set<std::string> before_set(before.begin(), before.end());
    std::set<std::string> after_set(after.begin(), after.end());
    json gained = json::array();
    json lost = json::array();
    for (const std::string& v : after) {
      if (before_set.count(v) == 0) gained.push_back(v);
    }
    for (const std::string& v : before) {
      if (after_set.count(v) == 0) lost.push_back(v);
    }
    // Same values in another order change the category codes too.
    categories.push_back({{"name", name},
                          {"added", gained},
                          {"removed", lost},
                          {"reordered", gained.empty() && lost.empty()}});
  }
  return {{"task", Change(ValueOr(from, "task"), ValueOr(to, "task"))},
          {"target", Change(ValueOr(from, "target"), ValueOr(to, "target"))},
          {"class_labels", Change(ValueOr(from, "class_labels"),
                                  ValueOr(to, "class_labels"))},
          {"features_added", added},
          {"features_removed", removed},
          {"features_retyped", retyped},
          {"categories_changed", categories},
          {"order_changed", common_a != common_b}};
}

}  // namespace

json DiffModelVersions(const ModelVersionRecord& from,
                       const ModelVersionRecord& to) {
  return {{"app", to.app},
          {"from", from.version},
          {"to", to.version},
          {"params", DiffParams(ObjectOf(from.params_json),
                                ObjectOf(to.params_json))},
          {"metrics", DiffMetrics(ObjectOf(from.metrics_json),
                                  ObjectOf(to.metrics_json))},
          {"signature", DiffSignature(ObjectOf(from.signature_json),
                                      ObjectOf(to.signature_json))}};
}

}  // namespace slipway
