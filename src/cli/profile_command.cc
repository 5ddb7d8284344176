#include "cli/profile_command.h"

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "cli/commands.h"
#include "cli/table.h"
#include "core/filesystem.h"
#include "core/status.h"
#include "stats/drift.h"
#include "stats/profile.h"
#include "train/baseline.h"

namespace slipway {
namespace {

using nlohmann::json;

// Exit codes; 1, an error, is Fail's (cli/commands.h).
constexpr int kNoDrift = 0;
constexpr int kBadFlags = 2;
constexpr int kDrift = 3;

int BadFlag(std::string_view message) {
  std::cerr << "error: " << message << "\n";
  return kBadFlags;
}

std::string Number(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.6g", value);
  return buffer;
}

std::string Optional(const std::optional<double>& value) {
  return value ? Number(*value) : "-";
}

std::string Percent(int64_t part, int64_t whole) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.1f%%",
                whole == 0 ? 0.0
                           : 100.0 * static_cast<double>(part) /
                                 static_cast<double>(whole));
  return buffer;
}

// Prints rows as aligned columns under a header.
// "a, b,c" -> {"a", "b", "c"}; blanks around names and empty names dropped.
std::vector<std::string> SplitNames(std::string_view list) {
  std::vector<std::string> names;
  while (!list.empty()) {
    const size_t comma = list.find(',');
    std::string_view name = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view()
                                           : list.substr(comma + 1);
    while (!name.empty() && (name.front() == ' ' || name.front() == '\t')) {
      name.remove_prefix(1);
    }
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) {
      name.remove_suffix(1);
    }
    if (!name.empty()) names.emplace_back(name);
  }
  return names;
}

struct AppVersion {
  std::string app;
  int version = 0;
};

std::optional<AppVersion> ParseAppVersion(const std::string& text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    return std::nullopt;
  }
  const std::string digits = text.substr(colon + 1);
  if (digits.size() > 9 ||
      !std::all_of(digits.begin(), digits.end(),
                   [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  AppVersion parsed{text.substr(0, colon), std::stoi(digits)};
  if (parsed.version < 1) return std::nullopt;
  return parsed;
}

bool EndsWithJson(const std::string& path) {
  if (path.size() < 5) return false;
  std::string suffix = path.substr(path.size() - 5);
  for (char& c : suffix) c = static_cast<char>(std::tolower(c));
  return suffix == ".json";
}

absl::StatusOr<ProfileSet> ReadProfileJson(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, LocalFilesystem()->ReadFile(path));
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return absl::InvalidArgumentError(
        path +
        " is not JSON; give a profile that `slipway profile FILE.csv "
        "--json` printed, or a CSV file");
  }
  ASSIGN_OR_RETURN(ProfileSet set, ProfileSet::FromJson(parsed), path);
  return set;
}

// A baseline to compare with, without skipped features or a prediction.
struct Baseline {
  ProfileSet profile;
  std::string source;
  bool had_prediction = false;
};

// The stored baseline --against names, or the saved profile --baseline
// names.
absl::StatusOr<Baseline> LoadBaseline(const ProfileFlags& flags,
                                      const std::optional<AppVersion>& against,
                                      const std::vector<std::string>& skip,
                                      const ApiClient* client) {
  Baseline baseline;
  if (against) {
    baseline.source = against->app + " v" + std::to_string(against->version);
    ASSIGN_OR_RETURN(
        json body,
        client->Get("/api/v1/apps/" + against->app + "/models/" +
                    std::to_string(against->version) + "/baseline"),
        "fetching the baseline of " + baseline.source);
    ASSIGN_OR_RETURN(baseline.profile, ProfileSet::FromJson(body),
                     "the baseline of " + baseline.source);
  } else {
    baseline.source = flags.baseline;
    ASSIGN_OR_RETURN(baseline.profile, ReadProfileJson(flags.baseline));
  }
  std::erase_if(baseline.profile.features, [&](const FeatureProfile& f) {
    return std::find(skip.begin(), skip.end(), f.name) != skip.end();
  });
  baseline.had_prediction = baseline.profile.prediction.has_value();
  baseline.profile.prediction.reset();
  return baseline;
}

// --- Printing ---------------------------------------------------------------

std::string TopCategories(const CategoricalProfile& profile) {
  std::vector<std::pair<std::string, int64_t>> top(profile.counts.begin(),
                                                   profile.counts.end());
  std::sort(top.begin(), top.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  constexpr size_t kShown = 3;
  std::string text;
  for (size_t i = 0; i < top.size() && i < kShown; ++i) {
    if (!text.empty()) text += ", ";
    text += top[i].first + " " + Percent(top[i].second, profile.count);
  }
  const size_t more = top.size() - std::min(top.size(), kShown) +
                      profile.other_categories.size();
  if (more > 0) text += " (+" + std::to_string(more) + " more)";
  return text.empty() ? "-" : text;
}

void PrintProfile(const std::string& file, const ProfileSet& set) {
  std::cout << file << ": " << set.rows << " rows, " << set.features.size()
            << " columns profiled\n";
  std::vector<std::vector<std::string>> rows;
  for (const FeatureProfile& feature : set.features) {
    if (const auto* p = std::get_if<NumericProfile>(&feature.profile)) {
      const bool any = p->count > 0;
      rows.push_back({feature.name, "numeric", std::to_string(p->count),
                      std::to_string(p->missing), any ? Number(p->min) : "-",
                      any ? Number(p->max) : "-", any ? Number(p->mean) : "-",
                      any ? Number(p->Stddev()) : "-", "-"});
    } else {
      const auto& c = std::get<CategoricalProfile>(feature.profile);
      rows.push_back({feature.name, "categorical", std::to_string(c.count),
                      std::to_string(c.missing), "-", "-", "-", "-",
                      TopCategories(c)});
    }
  }
  PrintTable({"COLUMN", "KIND", "COUNT", "MISSING", "MIN", "MAX", "MEAN", "STD",
              "TOP CATEGORIES"},
             rows);
}

std::string DriftText(const FeatureDrift& drift) {
  if (drift.insufficient) return "too few rows";
  if (drift.drift) return "DRIFT";
  if (drift.warn) return "warn";
  return "-";
}

void PrintDrift(const std::string& file, const ProfileSet& window,
                const Baseline& baseline,
                const std::vector<FeatureDrift>& drifts,
                const std::vector<std::string>& drifted) {
  std::cout << file << " (" << window.rows << " rows) against "
            << baseline.source << " (" << baseline.profile.rows << " rows)\n";
  std::vector<std::vector<std::string>> rows;
  for (const FeatureDrift& d : drifts) {
    rows.push_back({d.name, d.numeric ? "numeric" : "categorical",
                    std::string(DriftMethodName(d.method)), Optional(d.score),
                    Optional(d.psi), Optional(d.js), Optional(d.ks),
                    Optional(d.ks_pvalue), Optional(d.wasserstein),
                    Optional(d.chi2_pvalue), Number(d.missing_fraction),
                    DriftText(d)});
  }
  PrintTable({"FEATURE", "KIND", "METHOD", "SCORE", "PSI", "JS", "KS",
              "KS_PVALUE", "WASSERSTEIN", "CHI2_PVALUE", "MISSING", "DRIFT"},
             rows);
  std::cout << drifted.size() << " of " << drifts.size() << " features drifted";
  for (size_t i = 0; i < drifted.size(); ++i) {
    std::cout << (i == 0 ? ": " : ", ") << drifted[i];
  }
  std::cout << "\n";
}

}  // namespace

int ProfileCommand(const ProfileFlags& flags, const ApiClient* client) {
  if (flags.file.empty())
    return BadFlag("profile: give the CSV file to profile");
  if (!flags.against.empty() && !flags.baseline.empty()) {
    return BadFlag(
        "profile: --against and --baseline both name a baseline; give one");
  }
  std::optional<AppVersion> against;
  if (!flags.against.empty()) {
    against = ParseAppVersion(flags.against);
    if (!against) {
      return BadFlag("--against: expected APP:VERSION such as churn:3, got '" +
                     flags.against + "'");
    }
  }
  const std::vector<std::string> skip = SplitNames(flags.skip);

  if (!against && flags.baseline.empty()) {
    CsvProfileOptions options;
    options.skip = skip;
    absl::StatusOr<ProfileSet> set =
        ProfileCsv(LocalFilesystem(), flags.file, options);
    if (!set.ok()) return Fail(set.status());
    if (flags.json) {
      std::cout << set->ToJson().dump() << "\n";
    } else {
      PrintProfile(flags.file, *set);
    }
    return kNoDrift;
  }

  absl::StatusOr<Baseline> baseline;
  absl::StatusOr<ProfileSet> window;
  if (!against && !EndsWithJson(flags.baseline)) {
    // Two CSV files: profiled together, the window beside the baseline's
    // second pass.
    CsvProfileOptions options;
    options.skip = skip;
    absl::StatusOr<CsvProfilePair> pair =
        ProfileCsvPair(LocalFilesystem(), flags.baseline, flags.file, options);
    if (!pair.ok()) return Fail(pair.status());
    baseline = Baseline{std::move(pair->baseline), flags.baseline};
    window = std::move(pair->window);
  } else {
    baseline = LoadBaseline(flags, against, skip, client);
    if (!baseline.ok()) return Fail(baseline.status());
    if (baseline->had_prediction) {
      (flags.json ? std::cerr : std::cout)
          << "note: " << baseline->source
          << "'s baseline also profiles the model's prediction; a CSV file "
             "holds no predictions, so only the features are compared\n";
    }
    window =
        ProfileCsvAgainst(baseline->profile, LocalFilesystem(), flags.file);
    if (!window.ok()) return Fail(window.status());
  }
  absl::StatusOr<std::vector<FeatureDrift>> drifts =
      CompareProfiles(baseline->profile, *window, DriftPolicy());
  if (!drifts.ok()) return Fail(drifts.status());

  std::vector<std::string> drifted;
  for (const FeatureDrift& d : *drifts) {
    if (d.drift) drifted.push_back(d.name);
  }
  if (flags.json) {
    json features = json::array();
    for (const FeatureDrift& d : *drifts) features.push_back(ToJson(d));
    std::cout << json{{"file", flags.file},
                      {"rows", window->rows},
                      {"baseline",
                       {{"source", baseline->source},
                        {"rows", baseline->profile.rows}}},
                      {"drifted", drifted},
                      {"features", std::move(features)}}
                     .dump()
              << "\n";
  } else {
    PrintDrift(flags.file, *window, *baseline, *drifts, drifted);
  }
  return drifted.empty() ? kNoDrift : kDrift;
}

}  // namespace slipway
