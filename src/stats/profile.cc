#include "stats/profile.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace slipway {
namespace {

using json = nlohmann::json;

constexpr std::string_view kSameBaseline =
    "; merge only profiles made from the same baseline (its EmptyLike)";

// --- Reading JSON fields, with messages naming the field. -----------------

absl::StatusOr<const json*> Field(const json& in, const char* key) {
  const auto it = in.find(key);
  if (it == in.end()) {
    return absl::InvalidArgumentError(std::string("missing field '") + key +
                                      "'");
  }
  return &*it;
}

absl::StatusOr<int64_t> ReadCount(const json& in, const char* key) {
  ASSIGN_OR_RETURN(const json* field, Field(in, key));
  if (!field->is_number_integer() || field->get<int64_t>() < 0) {
    return absl::InvalidArgumentError(std::string("'") + key +
                                      "' must be a non-negative integer");
  }
  return field->get<int64_t>();
}

absl::StatusOr<double> ReadNumber(const json& in, const char* key) {
  ASSIGN_OR_RETURN(const json* field, Field(in, key));
  if (!field->is_number()) {
    return absl::InvalidArgumentError(std::string("'") + key +
                                      "' must be a finite number");
  }
  return field->get<double>();
}

absl::Status ExpectObject(const json& in, std::string_view what) {
  if (in.is_object()) return absl::OkStatus();
  return absl::InvalidArgumentError(std::string(what) +
                                    " must be a JSON object");
}

// --- Categories. -----------------------------------------------------------

// FNV-1a 64 with SplitMix64's finalizer, which spreads FNV's weak low bits.
// Part of the JSON format (CategorySet::ToHex): never change it.
uint64_t CategoryHash(std::string_view name) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : name) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  return h ^ (h >> 31);
}

// --- Merge checks, run before anything changes. ----------------------------

absl::Status CheckMergeable(const NumericProfile& into,
                            const NumericProfile& from) {
  if (into.edges != from.edges) {
    return absl::InvalidArgumentError(
        "bin edges differ (" + json(into.edges).dump() + " and " +
        json(from.edges).dump() + ")" + std::string(kSameBaseline));
  }
  if (into.sketch.k() != from.sketch.k()) {
    return absl::InvalidArgumentError(
        "quantile sketches differ in k (" + std::to_string(into.sketch.k()) +
        " and " + std::to_string(from.sketch.k()) + ")" +
        std::string(kSameBaseline));
  }
  return absl::OkStatus();
}

absl::Status CheckMergeable(const CategoricalProfile& into,
                            const CategoricalProfile& from) {
  auto a = into.counts.begin();
  auto b = from.counts.begin();
  while (a != into.counts.end() || b != from.counts.end()) {
    if (a != into.counts.end() && b != from.counts.end() &&
        a->first == b->first) {
      ++a;
      ++b;
      continue;
    }
    // The smaller name is in one profile's top categories only.
    const bool only_into =
        b == from.counts.end() ||
        (a != into.counts.end() && a->first < b->first);
    const std::string& name = only_into ? a->first : b->first;
    return absl::InvalidArgumentError(
        "top categories differ: '" + name + "' is one of the " +
        (only_into ? "first" : "second") + " profile's and not the " +
        (only_into ? "second" : "first") + "'s" + std::string(kSameBaseline));
  }
  if (!(into.other_categories == from.other_categories)) {
    return absl::InvalidArgumentError(
        "the remembered baseline categories differ (" +
        std::to_string(into.other_categories.size()) + " and " +
        std::to_string(from.other_categories.size()) + ")" +
        std::string(kSameBaseline));
  }
  return absl::OkStatus();
}

std::string_view KindName(const FeatureProfile& feature) {
  return feature.is_numeric() ? "numeric" : "categorical";
}

absl::Status CheckMergeable(const FeatureProfile& into,
                            const FeatureProfile& from) {
  if (into.name != from.name) {
    return absl::InvalidArgumentError("cannot merge the profile of feature '" +
                                      from.name + "' into feature '" +
                                      into.name + "'");
  }
  const std::string context = "feature '" + into.name + "'";
  if (into.profile.index() != from.profile.index()) {
    return absl::InvalidArgumentError(
        context + " is " + std::string(KindName(into)) +
        " in one profile and " + std::string(KindName(from)) +
        " in the other" + std::string(kSameBaseline));
  }
  if (const auto* numeric = std::get_if<NumericProfile>(&into.profile)) {
    RETURN_IF_ERROR(
        CheckMergeable(*numeric, std::get<NumericProfile>(from.profile)),
        context);
  } else {
    RETURN_IF_ERROR(
        CheckMergeable(std::get<CategoricalProfile>(into.profile),
                       std::get<CategoricalProfile>(from.profile)),
        context);
  }
  return absl::OkStatus();
}

// --- Merges of checked profiles. ------------------------------------------

void MergeChecked(const NumericProfile& from, NumericProfile* into) {
  if (from.count > 0) {
    if (into->count == 0) {
      into->mean = from.mean;
      into->m2 = from.m2;
    } else {
      // Chan, Golub and LeVeque's pairwise update.
      const double n_into = static_cast<double>(into->count);
      const double n_from = static_cast<double>(from.count);
      const double n = n_into + n_from;
      const double delta = from.mean - into->mean;
      into->mean += delta * (n_from / n);
      into->m2 += from.m2 + delta * delta * (n_into * n_from / n);
    }
  }
  into->count += from.count;
  into->missing += from.missing;
  into->min = std::min(into->min, from.min);
  into->max = std::max(into->max, from.max);
  for (size_t i = 0; i < into->bins.size(); ++i) into->bins[i] += from.bins[i];
  // Same k: checked.
  into->sketch.Merge(from.sketch).IgnoreError();
}

void MergeChecked(const CategoricalProfile& from, CategoricalProfile* into) {
  into->count += from.count;
  into->missing += from.missing;
  into->other += from.other;
  into->unseen += from.unseen;
  // Same keys: checked.
  auto b = from.counts.begin();
  for (auto& [name, count] : into->counts) count += (b++)->second;
}

void MergeChecked(const FeatureProfile& from, FeatureProfile* into) {
  if (auto* numeric = std::get_if<NumericProfile>(&into->profile)) {
    MergeChecked(std::get<NumericProfile>(from.profile), numeric);
  } else {
    MergeChecked(std::get<CategoricalProfile>(from.profile),
                 &std::get<CategoricalProfile>(into->profile));
  }
}

double RateOfMissing(int64_t count, int64_t missing) {
  const int64_t seen = count + missing;
  return seen == 0 ? 0.0
                   : static_cast<double>(missing) / static_cast<double>(seen);
}

}  // namespace

// --- NumericProfile --------------------------------------------------------

NumericProfile NumericProfile::Baseline(std::span<const double> values,
                                        int64_t missing, int num_bins) {
  num_bins = std::max(num_bins, 1);
  std::vector<double> sorted;
  sorted.reserve(values.size());
  for (double v : values) {
    if (std::isfinite(v)) sorted.push_back(v);
  }
  std::sort(sorted.begin(), sorted.end());

  NumericProfile profile;
  const uint64_t n = sorted.size();
  if (n > 0) {
    for (int j = 1; j < num_bins; ++j) {
      const double edge = sorted[static_cast<uint64_t>(j) * n / num_bins];
      if (profile.edges.empty() || profile.edges.back() != edge) {
        profile.edges.push_back(edge);
      }
    }
  }
  profile.bins.assign(profile.edges.size() + 1, 0);
  profile.missing = missing;
  for (double v : values) profile.Add(v);
  return profile;
}

NumericProfile NumericProfile::EmptyLike() const {
  NumericProfile empty;
  empty.sketch = QuantileSketch(sketch.k());
  empty.edges = edges;
  empty.bins.assign(edges.size() + 1, 0);
  return empty;
}

void NumericProfile::Add(double value) {
  if (!std::isfinite(value)) {
    ++missing;
    return;
  }
  ++count;
  min = std::min(min, value);
  max = std::max(max, value);
  const double delta = value - mean;
  mean += delta / static_cast<double>(count);
  m2 += delta * (value - mean);
  ++bins[std::upper_bound(edges.begin(), edges.end(), value) - edges.begin()];
  sketch.Add(value);
}

absl::Status NumericProfile::Merge(const NumericProfile& other) {
  RETURN_IF_ERROR(CheckMergeable(*this, other));
  if (&other == this) {
    const NumericProfile copy = other;
    MergeChecked(copy, this);
  } else {
    MergeChecked(other, this);
  }
  return absl::OkStatus();
}

double NumericProfile::Variance() const {
  if (count < 2) return 0.0;
  return std::max(m2, 0.0) / static_cast<double>(count);
}

double NumericProfile::Stddev() const { return std::sqrt(Variance()); }

double NumericProfile::MissingRate() const {
  return RateOfMissing(count, missing);
}

json NumericProfile::ToJson() const {
  json out = json::object();
  out["count"] = count;
  out["missing"] = missing;
  if (count > 0) {
    out["min"] = min;
    out["max"] = max;
  }
  out["mean"] = mean;
  out["m2"] = m2;
  out["edges"] = edges;
  out["bins"] = bins;
  out["sketch"] = sketch.ToJson();
  return out;
}

absl::StatusOr<NumericProfile> NumericProfile::FromJson(const json& in) {
  RETURN_IF_ERROR(ExpectObject(in, "a numeric profile"));
  NumericProfile p;
  ASSIGN_OR_RETURN(p.count, ReadCount(in, "count"));
  ASSIGN_OR_RETURN(p.missing, ReadCount(in, "missing"));
  if (p.count > 0) {
    ASSIGN_OR_RETURN(p.min, ReadNumber(in, "min"));
    ASSIGN_OR_RETURN(p.max, ReadNumber(in, "max"));
    if (p.min > p.max) {
      return absl::InvalidArgumentError("'min' is above 'max'");
    }
  }
  ASSIGN_OR_RETURN(p.mean, ReadNumber(in, "mean"));
  ASSIGN_OR_RETURN(p.m2, ReadNumber(in, "m2"));
  if (p.m2 < 0) return absl::InvalidArgumentError("'m2' must be >= 0");

  ASSIGN_OR_RETURN(const json* edges, Field(in, "edges"));
  if (!edges->is_array()) {
    return absl::InvalidArgumentError("'edges' must be an array of numbers");
  }
  for (const json& edge : *edges) {
    if (!edge.is_number()) {
      return absl::InvalidArgumentError("'edges' must hold only numbers");
    }
    const double value = edge.get<double>();
    if (!p.edges.empty() && !(p.edges.back() < value)) {
      return absl::InvalidArgumentError(
          "'edges' must be strictly ascending; " + edge.dump() +
          " follows " + json(p.edges.back()).dump());
    }
    p.edges.push_back(value);
  }

  ASSIGN_OR_RETURN(const json* bins, Field(in, "bins"));
  if (!bins->is_array() || bins->size() != p.edges.size() + 1) {
    return absl::InvalidArgumentError(
        "'bins' must be an array of " + std::to_string(p.edges.size() + 1) +
        " counts (one more than 'edges')");
  }
  p.bins.clear();
  int64_t binned = 0;
  for (const json& bin : *bins) {
    if (!bin.is_number_integer() || bin.get<int64_t>() < 0) {
      return absl::InvalidArgumentError(
          "'bins' must hold non-negative integers");
    }
    p.bins.push_back(bin.get<int64_t>());
    binned += p.bins.back();
  }
  if (binned != p.count) {
    return absl::InvalidArgumentError(
        "'bins' add up to " + std::to_string(binned) + " but 'count' is " +
        std::to_string(p.count));
  }

  ASSIGN_OR_RETURN(const json* sketch, Field(in, "sketch"));
  ASSIGN_OR_RETURN(p.sketch, QuantileSketch::FromJson(*sketch));
  if (p.sketch.count() != p.count) {
    return absl::InvalidArgumentError(
        "the sketch holds " + std::to_string(p.sketch.count()) +
        " values but 'count' is " + std::to_string(p.count));
  }
  return p;
}

// --- CategorySet -----------------------------------------------------------

CategorySet::CategorySet(std::vector<uint64_t> sorted_hashes) {
  if (!sorted_hashes.empty()) {
    hashes_ =
        std::make_shared<const std::vector<uint64_t>>(std::move(sorted_hashes));
  }
}

CategorySet CategorySet::FromNames(std::span<const std::string_view> names) {
  std::vector<uint64_t> hashes;
  hashes.reserve(names.size());
  for (std::string_view name : names) hashes.push_back(CategoryHash(name));
  std::sort(hashes.begin(), hashes.end());
  hashes.erase(std::unique(hashes.begin(), hashes.end()), hashes.end());
  return CategorySet(std::move(hashes));
}

bool CategorySet::Contains(std::string_view name) const {
  return hashes_ &&
         std::binary_search(hashes_->begin(), hashes_->end(),
                            CategoryHash(name));
}

bool CategorySet::operator==(const CategorySet& other) const {
  if (hashes_ == other.hashes_) return true;
  if (size() != other.size()) return false;
  return *hashes_ == *other.hashes_;
}

std::string CategorySet::ToHex() const {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex(size() * 16, '0');
  for (size_t i = 0; i < size(); ++i) {
    const uint64_t h = (*hashes_)[i];
    for (int d = 0; d < 16; ++d) {
      hex[i * 16 + d] = kDigits[(h >> (60 - 4 * d)) & 0xf];
    }
  }
  return hex;
}

absl::StatusOr<CategorySet> CategorySet::FromHex(std::string_view hex) {
  if (hex.size() % 16 != 0) {
    return absl::InvalidArgumentError(
        "category hashes must be 16 hex digits each; got " +
        std::to_string(hex.size()) + " digits");
  }
  std::vector<uint64_t> hashes(hex.size() / 16);
  for (size_t i = 0; i < hashes.size(); ++i) {
    uint64_t h = 0;
    for (size_t d = 0; d < 16; ++d) {
      const char c = hex[i * 16 + d];
      int nibble;
      if (c >= '0' && c <= '9') {
        nibble = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        nibble = c - 'a' + 10;
      } else {
        return absl::InvalidArgumentError(
            "category hashes must be lowercase hex digits; got '" +
            std::string(1, c) + "' at offset " + std::to_string(i * 16 + d));
      }
      h = (h << 4) | static_cast<uint64_t>(nibble);
    }
    if (i > 0 && hashes[i - 1] >= h) {
      return absl::InvalidArgumentError(
          "category hashes must be strictly ascending; hash " +
          std::to_string(i) + " is not above the one before it");
    }
    hashes[i] = h;
  }
  return CategorySet(std::move(hashes));
}

// --- CategoricalProfile ----------------------------------------------------

CategoricalProfile CategoricalProfile::Baseline(
    std::span<const std::string_view> values, int64_t missing, int top_k) {
  std::unordered_map<std::string_view, int64_t> counts;
  for (std::string_view value : values) ++counts[value];
  std::vector<std::pair<std::string, int64_t>> category_counts;
  category_counts.reserve(counts.size());
  for (const auto& [name, count] : counts) {
    category_counts.emplace_back(std::string(name), count);
  }
  return BaselineFromCounts(std::move(category_counts), missing, top_k);
}

CategoricalProfile CategoricalProfile::BaselineFromCounts(
    std::vector<std::pair<std::string, int64_t>> category_counts,
    int64_t missing, int top_k) {
  std::erase_if(category_counts,
                [](const auto& entry) { return entry.second <= 0; });
  // Most frequent first; ties by name, so the top-k never depends on the
  // order the counts came in.
  std::sort(category_counts.begin(), category_counts.end(),
            [](const auto& a, const auto& b) {
              return a.second != b.second ? a.second > b.second
                                          : a.first < b.first;
            });
  const size_t top =
      std::min(category_counts.size(), static_cast<size_t>(std::max(top_k, 0)));

  CategoricalProfile profile;
  profile.missing = missing;
  std::vector<std::string_view> others;
  others.reserve(category_counts.size() - top);
  for (size_t i = 0; i < category_counts.size(); ++i) {
    const auto& [name, count] = category_counts[i];
    profile.count += count;
    if (i < top) {
      profile.counts.emplace(name, count);
    } else {
      profile.other += count;
      others.push_back(name);
    }
  }
  profile.other_categories = CategorySet::FromNames(others);
  return profile;
}

CategoricalProfile CategoricalProfile::EmptyLike() const {
  CategoricalProfile empty;
  for (const auto& entry : counts) {
    empty.counts.emplace_hint(empty.counts.end(), entry.first, 0);
  }
  empty.other_categories = other_categories;
  return empty;
}

void CategoricalProfile::Add(std::string_view value) {
  ++count;
  if (auto it = counts.find(value); it != counts.end()) {
    ++it->second;
  } else if (other_categories.Contains(value)) {
    ++other;
  } else {
    ++unseen;
  }
}

absl::Status CategoricalProfile::Merge(const CategoricalProfile& other) {
  RETURN_IF_ERROR(CheckMergeable(*this, other));
  if (&other == this) {
    const CategoricalProfile copy = other;
    MergeChecked(copy, this);
  } else {
    MergeChecked(other, this);
  }
  return absl::OkStatus();
}

double CategoricalProfile::MissingRate() const {
  return RateOfMissing(count, missing);
}

json CategoricalProfile::ToJson() const {
  json out = json::object();
  out["count"] = count;
  out["missing"] = missing;
  json top = json::object();
  for (const auto& [name, n] : counts) top[name] = n;
  out["counts"] = std::move(top);
  out["other"] = other;
  out["unseen"] = unseen;
  out["other_categories"] = other_categories.ToHex();
  return out;
}

absl::StatusOr<CategoricalProfile> CategoricalProfile::FromJson(
    const json& in) {
  RETURN_IF_ERROR(ExpectObject(in, "a categorical profile"));
  CategoricalProfile p;
  ASSIGN_OR_RETURN(p.count, ReadCount(in, "count"));
  ASSIGN_OR_RETURN(p.missing, ReadCount(in, "missing"));
  ASSIGN_OR_RETURN(p.other, ReadCount(in, "other"));
  ASSIGN_OR_RETURN(p.unseen, ReadCount(in, "unseen"));
  ASSIGN_OR_RETURN(const json* counts, Field(in, "counts"));
  RETURN_IF_ERROR(ExpectObject(*counts, "'counts'"));
  int64_t total = p.other + p.unseen;
  for (const auto& [name, n] : counts->items()) {
    if (!n.is_number_integer() || n.get<int64_t>() < 0) {
      return absl::InvalidArgumentError("'counts' of '" + name +
                                        "' must be a non-negative integer");
    }
    p.counts.emplace(name, n.get<int64_t>());
    total += n.get<int64_t>();
  }
  if (total != p.count) {
    return absl::InvalidArgumentError(
        "'counts', 'other' and 'unseen' add up to " + std::to_string(total) +
        " but 'count' is " + std::to_string(p.count));
  }
  ASSIGN_OR_RETURN(const json* hex, Field(in, "other_categories"));
  if (!hex->is_string()) {
    return absl::InvalidArgumentError(
        "'other_categories' must be a string of hex digits");
  }
  ASSIGN_OR_RETURN(p.other_categories,
                   CategorySet::FromHex(hex->get_ref<const std::string&>()),
                   "'other_categories'");
  return p;
}

// --- FeatureProfile --------------------------------------------------------

FeatureProfile FeatureProfile::EmptyLike() const {
  FeatureProfile empty{name, NumericProfile()};
  std::visit([&empty](const auto& p) { empty.profile = p.EmptyLike(); },
             profile);
  return empty;
}

absl::Status FeatureProfile::Merge(const FeatureProfile& other) {
  RETURN_IF_ERROR(CheckMergeable(*this, other));
  if (&other == this) {
    const FeatureProfile copy = other;
    MergeChecked(copy, this);
  } else {
    MergeChecked(other, this);
  }
  return absl::OkStatus();
}

json FeatureProfile::ToJson() const {
  json out = std::visit([](const auto& p) { return p.ToJson(); }, profile);
  out["name"] = name;
  out["kind"] = std::string(KindName(*this));
  return out;
}

absl::StatusOr<FeatureProfile> FeatureProfile::FromJson(const json& in) {
  RETURN_IF_ERROR(ExpectObject(in, "a feature profile"));
  ASSIGN_OR_RETURN(const json* name, Field(in, "name"));
  if (!name->is_string() || name->get_ref<const std::string&>().empty()) {
    return absl::InvalidArgumentError(
        "'name' must be the feature's name, a non-empty string");
  }
  FeatureProfile feature{name->get<std::string>(), NumericProfile()};
  const std::string context = "feature '" + feature.name + "'";
  ASSIGN_OR_RETURN(const json* kind, Field(in, "kind"), context);
  if (*kind == "numeric") {
    ASSIGN_OR_RETURN(feature.profile, NumericProfile::FromJson(in), context);
  } else if (*kind == "categorical") {
    ASSIGN_OR_RETURN(feature.profile, CategoricalProfile::FromJson(in),
                     context);
  } else {
    return absl::InvalidArgumentError(
        context + ": 'kind' is " + kind->dump() +
        "; expected \"numeric\" or \"categorical\"");
  }
  return feature;
}

// --- ProfileSet ------------------------------------------------------------

const FeatureProfile* ProfileSet::Find(std::string_view name) const {
  for (const FeatureProfile& feature : features) {
    if (feature.name == name) return &feature;
  }
  return nullptr;
}

FeatureProfile* ProfileSet::Find(std::string_view name) {
  return const_cast<FeatureProfile*>(std::as_const(*this).Find(name));
}

ProfileSet ProfileSet::EmptyLike() const {
  ProfileSet empty;
  empty.features.reserve(features.size());
  for (const FeatureProfile& feature : features) {
    empty.features.push_back(feature.EmptyLike());
  }
  if (prediction) empty.prediction = prediction->EmptyLike();
  return empty;
}

absl::Status ProfileSet::Merge(const ProfileSet& other) {
  if (&other == this) {
    const ProfileSet copy = other;
    return Merge(copy);
  }
  // Pair features by name (usually at the same position), and check every
  // pair before changing anything.
  std::vector<const FeatureProfile*> partners(features.size());
  for (size_t i = 0; i < features.size(); ++i) {
    const std::string& name = features[i].name;
    partners[i] = i < other.features.size() && other.features[i].name == name
                      ? &other.features[i]
                      : other.Find(name);
    if (partners[i] == nullptr) {
      return absl::InvalidArgumentError(
          "feature '" + name +
          "' is in this profile set but not in the one merged into it; "
          "merge only profile sets of the same model version");
    }
  }
  if (other.features.size() != features.size()) {
    for (const FeatureProfile& feature : other.features) {
      if (Find(feature.name) == nullptr) {
        return absl::InvalidArgumentError(
            "feature '" + feature.name +
            "' is in the profile set merged in but not in this one; merge "
            "only profile sets of the same model version");
      }
    }
    return absl::InvalidArgumentError(
        "the profile set merged in has " +
        std::to_string(other.features.size()) + " features, this one " +
        std::to_string(features.size()) + " (a name repeats)");
  }
  if (prediction.has_value() != other.prediction.has_value()) {
    return absl::InvalidArgumentError(
        std::string("the prediction is profiled in ") +
        (prediction ? "this profile set but not in the one merged in"
                    : "the profile set merged in but not in this one") +
        "; merge only profile sets of the same model version");
  }
  for (size_t i = 0; i < features.size(); ++i) {
    RETURN_IF_ERROR(CheckMergeable(features[i], *partners[i]));
  }
  if (prediction) {
    RETURN_IF_ERROR(CheckMergeable(*prediction, *other.prediction),
                    "prediction");
  }

  for (size_t i = 0; i < features.size(); ++i) {
    MergeChecked(*partners[i], &features[i]);
  }
  if (prediction) MergeChecked(*other.prediction, &*prediction);
  rows += other.rows;
  return absl::OkStatus();
}

json ProfileSet::ToJson() const {
  json out = json::object();
  out["version"] = kJsonVersion;
  out["rows"] = rows;
  json list = json::array();
  for (const FeatureProfile& feature : features) {
    list.push_back(feature.ToJson());
  }
  out["features"] = std::move(list);
  if (prediction) out["prediction"] = prediction->ToJson();
  return out;
}

absl::StatusOr<ProfileSet> ProfileSet::FromJson(const json& in) {
  RETURN_IF_ERROR(ExpectObject(in, "a profile set"));
  ASSIGN_OR_RETURN(const json* version, Field(in, "version"), "profile set");
  if (*version != kJsonVersion) {
    return absl::InvalidArgumentError(
        "profile set version " + version->dump() +
        " is not supported; this Slipway reads version " +
        std::to_string(kJsonVersion) + " (recompute the profile)");
  }
  ProfileSet set;
  ASSIGN_OR_RETURN(set.rows, ReadCount(in, "rows"), "profile set");
  ASSIGN_OR_RETURN(const json* features, Field(in, "features"), "profile set");
  if (!features->is_array()) {
    return absl::InvalidArgumentError(
        "profile set: 'features' must be an array of feature profiles");
  }
  std::unordered_set<std::string> names;
  for (size_t i = 0; i < features->size(); ++i) {
    ASSIGN_OR_RETURN(FeatureProfile feature,
                     FeatureProfile::FromJson((*features)[i]),
                     "profile set: features[" + std::to_string(i) + "]");
    if (!names.insert(feature.name).second) {
      return absl::InvalidArgumentError("profile set: feature '" +
                                        feature.name + "' appears twice");
    }
    set.features.push_back(std::move(feature));
  }
  if (const auto it = in.find("prediction"); it != in.end() && !it->is_null()) {
    ASSIGN_OR_RETURN(set.prediction, FeatureProfile::FromJson(*it),
                     "profile set: prediction");
  }
  return set;
}

}  // namespace slipway
