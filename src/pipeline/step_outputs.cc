#include "pipeline/step_outputs.h"

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <utility>

#include "core/hash.h"
#include "core/status.h"
#include "data/csv.h"

namespace slipway {
namespace {

using nlohmann::json;
namespace stdfs = std::filesystem;

constexpr char kTypesSuffix[] = ".types.json";

absl::Status FileError(const std::string& what, const std::string& path,
                       const std::error_code& error) {
  return absl::InternalError(what + " '" + path + "': " + error.message());
}

// "data.csv" -> "data.types.json".
std::string TypesPath(const std::string& csv_path) {
  return csv_path.substr(0, csv_path.size() - 4) + kTypesSuffix;
}

json TypesJson(const Table& table) {
  json columns = json::array();
  for (const Column& c : table.columns()) {
    columns.push_back(
        {{"name", c.name()}, {"type", std::string(DataTypeName(c.type()))}});
  }
  return {{"columns", columns}};
}

absl::StatusOr<Table> ReadTableFile(Filesystem* fs, const std::string& path) {
  CsvOptions options;
  const std::string types_path = TypesPath(path);
  if (fs->Exists(types_path)) {
    ASSIGN_OR_RETURN(std::string text, fs->ReadFile(types_path));
    json types = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!types.is_object() || !types["columns"].is_array()) {
      return absl::InvalidArgumentError(
          "'" + types_path + "' is not a column types file ({\"columns\": "
          "[{\"name\": ..., \"type\": ...}]}); remove it to infer the types");
    }
    for (const json& c : types["columns"]) {
      if (!c.is_object() || !c.value("name", json()).is_string() ||
          !c.value("type", json()).is_string()) {
        return absl::InvalidArgumentError("'" + types_path +
                                          "': every column needs a name and "
                                          "a type");
      }
      ASSIGN_OR_RETURN(DataType type,
                       ParseDataType(c["type"].get<std::string>()),
                       "'" + types_path + "'");
      options.column_types[c["name"].get<std::string>()] = type;
    }
  }
  // Written tables keep every cell: only an empty cell is missing.
  options.missing_values = {""};
  ASSIGN_OR_RETURN(CsvData data, ReadCsv(fs, path, options));
  return std::move(data.table);
}

absl::StatusOr<std::shared_ptr<StepOutput>> NewOutput(
    Filesystem* fs, const std::string& step, const std::string& name,
    OutputKind kind, const std::string& path, Lineage lineage) {
  ASSIGN_OR_RETURN(std::string fingerprint, FingerprintPath(fs, path));
  return std::make_shared<StepOutput>(step, name, kind, path,
                                      std::move(fingerprint),
                                      std::move(lineage));
}

absl::StatusOr<OutputKind> ParseOutputKind(std::string_view name) {
  for (OutputKind kind : {OutputKind::kTable, OutputKind::kModel,
                          OutputKind::kMetrics, OutputKind::kTransform,
                          OutputKind::kFiles}) {
    if (OutputKindName(kind) == name) return kind;
  }
  return absl::InvalidArgumentError("unknown output kind '" +
                                    std::string(name) + "'");
}

// Hashes `dir` into `sha`: each regular file as its relative path, size and
// bytes, in sorted order.
absl::Status HashTree(Filesystem* fs, const std::string& root, Sha256* sha) {
  std::error_code error;
  std::vector<std::string> files;
  for (stdfs::recursive_directory_iterator it(root, error), end;
       !error && it != end; it.increment(error)) {
    if (it->is_regular_file()) {
      files.push_back(stdfs::relative(it->path(), root).string());
    }
  }
  if (error) return FileError("cannot list", root, error);
  std::sort(files.begin(), files.end());
  for (const std::string& file : files) {
    ASSIGN_OR_RETURN(std::string bytes, fs->ReadFile(JoinPath(root, file)));
    sha->Update(std::to_string(file.size()));
    sha->Update(":");
    sha->Update(file);
    sha->Update(std::to_string(bytes.size()));
    sha->Update(":");
    sha->Update(bytes);
  }
  return absl::OkStatus();
}

}  // namespace

std::string_view OutputKindName(OutputKind kind) {
  switch (kind) {
    case OutputKind::kTable:
      return "table";
    case OutputKind::kModel:
      return "model";
    case OutputKind::kMetrics:
      return "metrics";
    case OutputKind::kTransform:
      return "transform";
    case OutputKind::kFiles:
      return "files";
  }
  return "files";
}

StepOutput::StepOutput(std::string step, std::string name, OutputKind kind,
                       std::string path, std::string fingerprint,
                       Lineage lineage)
    : step_(std::move(step)),
      name_(std::move(name)),
      kind_(kind),
      path_(std::move(path)),
      fingerprint_(std::move(fingerprint)),
      lineage_(std::move(lineage)) {}

absl::Status StepOutput::CheckKind(OutputKind want) const {
  if (kind_ == want) return absl::OkStatus();
  return absl::FailedPreconditionError(
      "output '" + name_ + "' of step '" + step_ + "' is a " +
      std::string(OutputKindName(kind_)) + ", not a " +
      std::string(OutputKindName(want)));
}

absl::StatusOr<std::shared_ptr<const Table>> StepOutput::LoadTable(
    Filesystem* fs) const {
  RETURN_IF_ERROR(CheckKind(OutputKind::kTable));
  absl::MutexLock lock(&mu_);
  if (table_ == nullptr) {
    ASSIGN_OR_RETURN(Table table, ReadTableFile(fs, path_),
                     "reading output '" + name_ + "' of step '" + step_ + "'");
    table_ = std::make_shared<const Table>(std::move(table));
  }
  return table_;
}

absl::StatusOr<std::shared_ptr<const ModelDir>> StepOutput::LoadModel(
    Filesystem* fs, const Table* input, std::string_view fallback_target,
    const ModelLoadOptions& loading) const {
  RETURN_IF_ERROR(CheckKind(OutputKind::kModel));
  absl::MutexLock lock(&mu_);
  if (model_ == nullptr) {
    ASSIGN_OR_RETURN(ModelDir model,
                     ReadModelDir(fs, path_, input, fallback_target, loading),
                     "model of step '" + step_ + "'");
    model_ = std::make_shared<const ModelDir>(std::move(model));
  }
  return model_;
}

absl::StatusOr<json> StepOutput::LoadMetrics(Filesystem* fs) const {
  RETURN_IF_ERROR(CheckKind(OutputKind::kMetrics));
  ASSIGN_OR_RETURN(std::string text, fs->ReadFile(path_));
  json metrics = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!metrics.is_object()) {
    return absl::InvalidArgumentError(
        "'" + path_ + "' (step '" + step_ +
        "') is not a JSON object of metrics; write e.g. {\"auc\": 0.91}");
  }
  return metrics;
}

absl::StatusOr<std::string> StepOutput::LoadTransform(Filesystem* fs) const {
  RETURN_IF_ERROR(CheckKind(OutputKind::kTransform));
  return fs->ReadFile(path_);
}

std::shared_ptr<const Table> StepOutput::KeptTable() const {
  absl::MutexLock lock(&mu_);
  return table_;
}

void StepOutput::KeepTable(std::shared_ptr<const Table> table) {
  absl::MutexLock lock(&mu_);
  table_ = std::move(table);
}

void StepOutput::KeepModel(std::shared_ptr<const ModelDir> model) {
  absl::MutexLock lock(&mu_);
  model_ = std::move(model);
}

json StepOutput::ToJson(const std::string& step_dir) const {
  std::string relative = stdfs::path(path_).lexically_relative(step_dir);
  json out = {{"kind", std::string(OutputKindName(kind_))},
              {"path", relative},
              {"sha256", fingerprint_}};
  if (!lineage_.data_fingerprint.empty()) {
    out["data_sha256"] = lineage_.data_fingerprint;
    out["data_rows"] = lineage_.data_rows;
  }
  if (transformed_) out["transformed"] = true;
  return out;
}

absl::StatusOr<std::shared_ptr<StepOutput>> StepOutput::FromJson(
    const std::string& step, const std::string& name, const json& j,
    const std::string& step_dir) {
  if (!j.is_object() || !j.value("kind", json()).is_string() ||
      !j.value("path", json()).is_string() ||
      !j.value("sha256", json()).is_string()) {
    return absl::InvalidArgumentError("output '" + name + "' of step '" +
                                      step + "' has no kind, path or sha256");
  }
  ASSIGN_OR_RETURN(OutputKind kind,
                   ParseOutputKind(j["kind"].get<std::string>()));
  Lineage lineage;
  lineage.data_fingerprint = j.value("data_sha256", std::string());
  lineage.data_rows = j.value("data_rows", int64_t{0});
  auto output = std::make_shared<StepOutput>(
      step, name, kind, JoinPath(step_dir, j["path"].get<std::string>()),
      j["sha256"].get<std::string>(), lineage);
  output->set_transformed(j.value("transformed", false));
  return output;
}

absl::StatusOr<std::shared_ptr<StepOutput>> WriteTableOutput(
    Filesystem* fs, const std::string& step, const std::string& step_dir,
    const std::string& name, std::shared_ptr<const Table> table,
    Lineage lineage, std::string fingerprint) {
  const std::string path = JoinPath(step_dir, name + ".csv");
  std::string csv = WriteCsv(*table);
  std::string types = TypesJson(*table).dump();
  RETURN_IF_ERROR(fs->WriteFileAtomic(path, csv));
  RETURN_IF_ERROR(fs->WriteFileAtomic(TypesPath(path), types));
  if (fingerprint.empty()) {
    Sha256 sha;
    sha.Update(csv);
    sha.Update(types);
    fingerprint = sha.HexDigest();
  }
  auto output = std::make_shared<StepOutput>(step, name, OutputKind::kTable,
                                             path, std::move(fingerprint),
                                             std::move(lineage));
  output->KeepTable(std::move(table));
  return output;
}

absl::StatusOr<std::shared_ptr<StepOutput>> WriteModelOutput(
    Filesystem* fs, const std::string& step, const std::string& step_dir,
    std::shared_ptr<const ModelDir> model, Lineage lineage) {
  const std::string path = JoinPath(step_dir, "model");
  RETURN_IF_ERROR(WriteModelDir(fs, path, model->format, model->model_bytes,
                                model->signature, model->params,
                                model->transform_json));
  ASSIGN_OR_RETURN(std::shared_ptr<StepOutput> output,
                   NewOutput(fs, step, "model", OutputKind::kModel, path,
                             std::move(lineage)));
  output->KeepModel(std::move(model));
  return output;
}

absl::StatusOr<std::shared_ptr<StepOutput>> WriteMetricsOutput(
    Filesystem* fs, const std::string& step, const std::string& step_dir,
    const json& metrics, Lineage lineage) {
  const std::string path = JoinPath(step_dir, "metrics.json");
  RETURN_IF_ERROR(fs->WriteFileAtomic(path, metrics.dump(2) + "\n"));
  return NewOutput(fs, step, "metrics", OutputKind::kMetrics, path,
                   std::move(lineage));
}

absl::StatusOr<std::shared_ptr<StepOutput>> WriteTransformOutput(
    Filesystem* fs, const std::string& step, const std::string& step_dir,
    const std::string& transform_json, Lineage lineage) {
  const std::string path = JoinPath(step_dir, "transform.json");
  RETURN_IF_ERROR(fs->WriteFileAtomic(path, transform_json));
  return NewOutput(fs, step, "transform", OutputKind::kTransform, path,
                   std::move(lineage));
}

absl::StatusOr<std::shared_ptr<StepOutput>> PassThroughOutput(
    const StepOutput& from, const std::string& step,
    const std::string& step_dir, const std::string& name) {
  std::string path = JoinPath(step_dir, BaseName(from.path()));
  RETURN_IF_ERROR(LinkOrCopy(from.path(), path));
  if (from.kind() == OutputKind::kTable && stdfs::exists(TypesPath(from.path()))) {
    RETURN_IF_ERROR(LinkOrCopy(TypesPath(from.path()), TypesPath(path)));
  }
  auto output = std::make_shared<StepOutput>(step, name, from.kind(), path,
                                             from.fingerprint(), from.lineage());
  output->set_transformed(from.transformed());
  output->KeepTable(from.KeptTable());
  return output;
}

absl::StatusOr<StepOutputs> FindProgramOutputs(
    Filesystem* fs, const std::string& step, const std::string& step_dir,
    const std::vector<std::string>& declared, Lineage lineage) {
  StepOutputs outputs;
  for (const std::string& name : declared) {
    const std::string csv = JoinPath(step_dir, name + ".csv");
    const std::string plain = JoinPath(step_dir, name);
    if (stdfs::is_regular_file(csv)) {
      ASSIGN_OR_RETURN(std::shared_ptr<StepOutput> output,
                       NewOutput(fs, step, name, OutputKind::kTable, csv,
                                 lineage));
      outputs.push_back(std::move(output));
    } else if (stdfs::exists(plain)) {
      OutputKind kind =
          name == "model" ? OutputKind::kModel : OutputKind::kFiles;
      ASSIGN_OR_RETURN(std::shared_ptr<StepOutput> output,
                       NewOutput(fs, step, name, kind, plain, lineage));
      outputs.push_back(std::move(output));
    } else {
      return absl::InvalidArgumentError(
          "step '" + step + "' declares output '" + name +
          "' but did not write it: write " + name + ".csv (a table) or " +
          name + "/ into $SLIPWAY_OUTPUT_DIR, or remove it from `outputs`");
    }
  }
  auto declared_has = [&](const char* name) {
    return std::find(declared.begin(), declared.end(), name) != declared.end();
  };
  const std::string model = JoinPath(step_dir, "model");
  if (!declared_has("model") && stdfs::is_directory(model)) {
    ASSIGN_OR_RETURN(std::shared_ptr<StepOutput> output,
                     NewOutput(fs, step, "model", OutputKind::kModel, model,
                               lineage));
    outputs.push_back(std::move(output));
  }
  const std::string metrics = JoinPath(step_dir, "metrics.json");
  if (!declared_has("metrics") && stdfs::is_regular_file(metrics)) {
    ASSIGN_OR_RETURN(std::shared_ptr<StepOutput> output,
                     NewOutput(fs, step, "metrics", OutputKind::kMetrics,
                               metrics, lineage));
    outputs.push_back(std::move(output));
  }
  return outputs;
}

json OutputsToJson(const StepOutputs& outputs, const std::string& step_dir) {
  json artifacts = json::object();
  for (const std::shared_ptr<StepOutput>& output : outputs) {
    artifacts[output->name()] = output->ToJson(step_dir);
  }
  return artifacts;
}

absl::StatusOr<StepOutputs> OutputsFromJson(const std::string& step,
                                            const json& artifacts,
                                            const std::string& step_dir) {
  StepOutputs outputs;
  if (!artifacts.is_object()) return outputs;
  for (const auto& [name, value] : artifacts.items()) {
    ASSIGN_OR_RETURN(std::shared_ptr<StepOutput> output,
                     StepOutput::FromJson(step, name, value, step_dir));
    outputs.push_back(std::move(output));
  }
  return outputs;
}

absl::Status LinkOrCopy(const std::string& from, const std::string& to) {
  std::error_code error;
  if (stdfs::is_directory(from)) {
    stdfs::copy(from, to,
                stdfs::copy_options::recursive |
                    stdfs::copy_options::create_hard_links,
                error);
    if (error) {
      RemoveTree(to).IgnoreError();
      error.clear();
      stdfs::copy(from, to, stdfs::copy_options::recursive, error);
    }
  } else {
    stdfs::create_hard_link(from, to, error);
    if (error) {
      error.clear();
      stdfs::copy_file(from, to, error);
    }
  }
  if (error) return FileError("cannot copy '" + from + "' to", to, error);
  return absl::OkStatus();
}

absl::Status RemoveTree(const std::string& path) {
  std::error_code error;
  stdfs::remove_all(path, error);
  if (error) return FileError("cannot remove", path, error);
  return absl::OkStatus();
}

absl::Status LinkInputs(const std::string& input_dir,
                        const StepOutputs& inputs) {
  std::error_code error;
  for (const std::shared_ptr<StepOutput>& input : inputs) {
    const std::string dir = JoinPath(input_dir, input->step());
    stdfs::create_directories(dir, error);
    if (error) return FileError("cannot create", dir, error);
    std::vector<std::string> paths = {input->path()};
    if (input->kind() == OutputKind::kTable &&
        stdfs::exists(TypesPath(input->path()))) {
      paths.push_back(TypesPath(input->path()));
    }
    for (const std::string& path : paths) {
      const std::string link = JoinPath(dir, BaseName(path));
      if (stdfs::exists(stdfs::symlink_status(link))) continue;
      stdfs::create_symlink(path, link, error);
      if (error) return FileError("cannot link '" + path + "' as", link, error);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> FingerprintPath(Filesystem* fs,
                                            const std::string& path) {
  Sha256 sha;
  if (stdfs::is_directory(path)) {
    RETURN_IF_ERROR(HashTree(fs, path, &sha));
    return sha.HexDigest();
  }
  ASSIGN_OR_RETURN(std::unique_ptr<SequentialFile> file,
                   fs->OpenSequential(path));
  std::string buffer(1 << 20, '\0');
  while (true) {
    ASSIGN_OR_RETURN(size_t n, file->Read(buffer.size(), buffer.data()));
    if (n == 0) break;
    sha.Update(std::string_view(buffer.data(), n));
  }
  return sha.HexDigest();
}

}  // namespace slipway
