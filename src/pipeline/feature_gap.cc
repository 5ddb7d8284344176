#include "pipeline/feature_gap.h"

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "core/text.h"
#include "data/connector.h"
#include "pipeline/data_io.h"

namespace slipway {
namespace {

constexpr char kChampion[] = "champion";

// The champion's features that `columns` lacks, in signature order.
std::vector<std::string> MissingFeatures(const Signature& champion,
                                         const std::set<std::string>& columns) {
  std::vector<std::string> missing;
  for (const FeatureSpec& feature : champion.features()) {
    if (columns.count(feature.name) == 0) missing.push_back(feature.name);
  }
  return missing;
}

// What reading a source's first chunk told: its columns, or why it could
// not be checked.
struct SourceColumns {
  std::string description;  // the source's Describe(), or the entry's name
  std::optional<std::set<std::string>> columns;
  std::string skipped_because;
};

SourceColumns ReadColumns(const DataSourceSpec& spec,
                          const std::string& source_dir, Filesystem* fs) {
  SourceColumns result;
  result.description = "data entry '" + spec.name + "'";
  absl::StatusOr<std::unique_ptr<DataSource>> source =
      OpenSpecSource(spec, source_dir, fs);
  if (!source.ok()) {
    result.skipped_because = std::string(source.status().message());
    return result;
  }
  result.description += " (" + (*source)->Describe() + ")";
  absl::StatusOr<std::optional<Table>> chunk = (*source)->NextChunk();
  if (!chunk.ok()) {
    result.skipped_because = std::string(chunk.status().message());
  } else if (!chunk->has_value()) {
    result.skipped_because = "it has no rows";
  } else {
    result.columns.emplace();
    for (const Column& column : (*chunk)->columns()) {
      result.columns->insert(column.name());
    }
  }
  return result;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> CheckFeatureGap(
    const AppSpec& spec, const Signature& champion,
    const std::string& source_dir, Filesystem* fs) {
  std::vector<std::string> warnings;
  // Keyed by data entry and chunk size: each source is read once.
  std::map<std::pair<std::string, int64_t>, SourceColumns> read;
  for (const PipelineSpec& pipeline : spec.pipelines) {
    for (const StepSpec& step : pipeline.steps) {
      const auto* score = std::get_if<ScoreStepSpec>(&step.params);
      if (score == nullptr || score->model != kChampion) continue;
      const DataSourceSpec* entry = spec.FindDataSource(score->source);
      if (entry == nullptr) continue;  // ParseAppSpec refuses this
      DataSourceSpec source = *entry;
      if (score->chunk_rows > 0) source.chunk_rows = score->chunk_rows;
      const auto key = std::make_pair(source.name, source.chunk_rows);
      auto it = read.find(key);
      const bool first_read = it == read.end();
      if (first_read) {
        it = read.emplace(key, ReadColumns(source, source_dir, fs)).first;
      }
      const SourceColumns& columns = it->second;
      const std::string where = FormatLocation(spec.file_name, step.location) +
                                ": pipeline '" + pipeline.name + "' step '" +
                                step.name + "'";
      if (!columns.columns.has_value()) {
        if (first_read) {
          warnings.push_back(where + ": feature gap not checked, " +
                             columns.description + " could not be read: " +
                             columns.skipped_because);
        }
        continue;
      }
      const std::vector<std::string> missing =
          MissingFeatures(champion, *columns.columns);
      if (!missing.empty()) {
        return absl::FailedPreconditionError(
            where + ": " + columns.description + " lacks the champion's " +
            (missing.size() > 1 ? "features " : "feature ") +
            QuotedList(missing) + "; add " +
            (missing.size() > 1 ? "them" : "it") +
            " to the source, or train a model without " +
            (missing.size() > 1 ? "them" : "it"));
      }
    }
  }
  if (!spec.endpoint.fields.empty() && spec.endpoint.model == kChampion) {
    const std::set<std::string> fields(spec.endpoint.fields.begin(),
                                       spec.endpoint.fields.end());
    const std::vector<std::string> missing = MissingFeatures(champion, fields);
    if (!missing.empty()) {
      return absl::FailedPreconditionError(
          spec.file_name + ": endpoint.fields lacks the champion's " +
          (missing.size() > 1 ? "features " : "feature ") +
          QuotedList(missing) + "; callers must send " +
          (missing.size() > 1 ? "them" : "it") + ", so add " +
          (missing.size() > 1 ? "them" : "it") + " to endpoint.fields");
    }
  }
  return warnings;
}

}  // namespace slipway
