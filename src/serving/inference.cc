#include "serving/inference.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/strings/numbers.h"
#include "core/http_error.h"
#include "core/ids.h"
#include "core/status.h"
#include "data/csv.h"
#include "models/features.h"
#include "models/model.h"
#include "models/signature.h"
#include "nlohmann/json.hpp"
#include "serving/batcher.h"
#include "serving/fast_json.h"
#include "serving/metrics.h"
#include "serving/prediction_observer.h"
#include "serving/io_round.h"
#include "serving/shadow_runner.h"

namespace slipway {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

constexpr float kMissing = std::numeric_limits<float>::quiet_NaN();

// Request rows encoded for the model: row-major, one float per feature.
struct EncodedRows {
  std::vector<float> values;
  size_t num_rows = 0;
  EncodeStats stats;
};

absl::Status BadRequest(std::string message) {
  return absl::InvalidArgumentError(std::move(message));
}

std::string FeatureList(const Signature& signature) {
  std::string list;
  for (const FeatureSpec& spec : signature.features()) {
    if (!list.empty()) list += ", ";
    list += spec.name;
  }
  return list;
}

// How a JSON value reads in an error message: string "abc", number 4.5,
// boolean true, an array, an object, null. Long strings are cut.
std::string Describe(const json& value) {
  constexpr size_t kMaxShown = 40;
  switch (value.type()) {
    case json::value_t::string: {
      const std::string& text = value.get_ref<const std::string&>();
      if (text.size() <= kMaxShown) {
        return "string " +
               value.dump(-1, ' ', false, json::error_handler_t::replace);
      }
      return "string " +
             json(text.substr(0, kMaxShown))
                 .dump(-1, ' ', false, json::error_handler_t::replace) +
             "...";
    }
    case json::value_t::boolean:
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return std::string(value.type_name()) + " " + value.dump();
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    default:
      return "null";
  }
}

// Encodes one JSON value for feature `feature` into `*out`. null is a
// missing value. `where` ends the error message ("in record 3").
absl::Status EncodeValue(const Signature& signature, int feature,
                         const json& value, const std::string& where,
                         float* out, EncodeStats* stats) {
  const FeatureSpec& spec = signature.features()[feature];
  if (value.is_null()) {
    *out = kMissing;
    ++stats->missing_values;
    return absl::OkStatus();
  }
  if (spec.is_categorical()) {
    // Numbers and booleans are matched by their text form, as features.h
    // does for a CSV column typed as numbers.
    switch (value.type()) {
      case json::value_t::string:
        *out = EncodeCategory(signature, feature,
                              value.get_ref<const std::string&>(), stats);
        return absl::OkStatus();
      case json::value_t::number_integer:
        *out = EncodeCategory(signature, feature,
                              Int64CategoryText(value.get<int64_t>()), stats);
        return absl::OkStatus();
      case json::value_t::number_unsigned:
        *out = EncodeCategory(signature, feature,
                              std::to_string(value.get<uint64_t>()), stats);
        return absl::OkStatus();
      case json::value_t::number_float:
        *out = EncodeCategory(signature, feature,
                              Float64CategoryText(value.get<double>()), stats);
        return absl::OkStatus();
      case json::value_t::boolean:
        *out = EncodeCategory(signature, feature,
                              BoolCategoryText(value.get<bool>()), stats);
        return absl::OkStatus();
      default:
        return BadRequest("feature '" + spec.name + "' expects a string, got " +
                          Describe(value) + " " + where);
    }
  }
  if (spec.type == DataType::kBool) {
    if (value.is_boolean()) {
      *out = value.get<bool>() ? 1.0f : 0.0f;
      return absl::OkStatus();
    }
    if (value.is_number()) {
      const double number = value.get<double>();
      if (number == 0.0 || number == 1.0) {
        *out = static_cast<float>(number);
        return absl::OkStatus();
      }
    }
    return BadRequest("feature '" + spec.name +
                      "' expects true or false, got " + Describe(value) + " " +
                      where);
  }
  if (!value.is_number()) {
    return BadRequest("feature '" + spec.name + "' expects a number, got " +
                      Describe(value) + " " + where);
  }
  *out = static_cast<float>(value.get<double>());
  return absl::OkStatus();
}

absl::Status UnknownFeature(const Signature& signature, const std::string& name,
                            const std::string& where) {
  return BadRequest("unknown feature '" + name + "' " + where +
                    "; the model's features are: " + FeatureList(signature));
}

bool IsBlank(std::string_view text) {
  return text.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

// `what` names the text in the error ("request body").
absl::StatusOr<json> ParseJson(std::string_view text, const std::string& what) {
  try {
    return json::parse(text);
  } catch (const json::exception& error) {
    // A syntax error (parse_error) or a number beyond the double range
    // (out_of_range, "number overflow parsing '1e999'"): both the client's.
    // Drop nlohmann's "[json.exception.parse_error.101] " prefix; keep its
    // "parse error at line L, column C: ..." text.
    std::string message = error.what();
    size_t bracket = message.find("] ");
    if (message.rfind("[json.exception", 0) == 0 &&
        bracket != std::string::npos) {
      message = message.substr(bracket + 2);
    }
    return BadRequest(what + " is not valid JSON: " + message);
  }
}

// {"records": [{feature: value, ...}, ...]}
absl::Status EncodeRecords(const Signature& signature, const json& records,
                           EncodedRows* rows) {
  if (!records.is_array()) {
    return BadRequest(
        "\"records\" must be an array of objects {\"feature\": value, ...}, "
        "got " +
        Describe(records));
  }
  if (records.empty()) {
    return BadRequest("\"records\" is empty; send at least one record");
  }
  const size_t width = signature.features().size();
  rows->num_rows = records.size();
  rows->values.assign(rows->num_rows * width, kMissing);
  // last_seen[f] == i once record i has set feature f.
  std::vector<size_t> last_seen(width, SIZE_MAX);
  for (size_t i = 0; i < records.size(); ++i) {
    const json& record = records[i];
    const std::string where = "in record " + std::to_string(i);
    if (!record.is_object()) {
      return BadRequest("record " + std::to_string(i) +
                        " must be an object {\"feature\": value, ...}, got " +
                        Describe(record));
    }
    float* row = rows->values.data() + i * width;
    for (const auto& [name, value] : record.items()) {
      const int feature = signature.FeatureIndex(name);
      if (feature < 0) return UnknownFeature(signature, name, where);
      RETURN_IF_ERROR(EncodeValue(signature, feature, value, where,
                                  row + feature, &rows->stats));
      last_seen[feature] = i;
    }
    for (size_t f = 0; f < width; ++f) {
      if (last_seen[f] != i) {
        return BadRequest("feature '" + signature.features()[f].name +
                          "' is missing from record " + std::to_string(i) +
                          " (send null for a missing value)");
      }
    }
  }
  return absl::OkStatus();
}

// {"columns": [feature, ...], "data": [[value, ...], ...]}, the pandas
// "split" orientation (its "index" key, if any, is ignored).
absl::Status EncodeColumns(const Signature& signature, const json& body,
                           EncodedRows* rows) {
  auto columns_it = body.find("columns");
  auto data_it = body.find("data");
  if (columns_it == body.end()) {
    return BadRequest(
        "request body has \"data\" but no \"columns\"; send {\"columns\": "
        "[feature, ...], \"data\": [[value, ...], ...]}");
  }
  if (data_it == body.end()) {
    return BadRequest(
        "request body has \"columns\" but no \"data\"; send {\"columns\": "
        "[feature, ...], \"data\": [[value, ...], ...]}");
  }
  const json& columns = *columns_it;
  const json& data = *data_it;
  if (!columns.is_array()) {
    return BadRequest("\"columns\" must be an array of feature names, got " +
                      Describe(columns));
  }
  const size_t width = signature.features().size();
  std::vector<int> feature_of_column;
  std::vector<bool> present(width, false);
  for (size_t c = 0; c < columns.size(); ++c) {
    if (!columns[c].is_string()) {
      return BadRequest("\"columns\"[" + std::to_string(c) +
                        "] must be a feature name, got " +
                        Describe(columns[c]));
    }
    const std::string& name = columns[c].get_ref<const std::string&>();
    const int feature = signature.FeatureIndex(name);
    if (feature < 0) return UnknownFeature(signature, name, "in \"columns\"");
    if (present[feature]) {
      return BadRequest("feature '" + name + "' appears twice in \"columns\"");
    }
    present[feature] = true;
    feature_of_column.push_back(feature);
  }
  for (size_t f = 0; f < width; ++f) {
    if (!present[f]) {
      return BadRequest("feature '" + signature.features()[f].name +
                        "' is missing from \"columns\" (send null values "
                        "for a missing value)");
    }
  }
  if (!data.is_array()) {
    return BadRequest(
        "\"data\" must be an array of rows [[value, ...], ...], "
        "got " +
        Describe(data));
  }
  if (data.empty()) {
    return BadRequest("\"data\" is empty; send at least one row");
  }
  rows->num_rows = data.size();
  rows->values.assign(rows->num_rows * width, kMissing);
  for (size_t i = 0; i < data.size(); ++i) {
    const json& row = data[i];
    if (!row.is_array()) {
      return BadRequest("row " + std::to_string(i) +
                        " of \"data\" must be an array of values, got " +
                        Describe(row));
    }
    if (row.size() != columns.size()) {
      return BadRequest("row " + std::to_string(i) + " of \"data\" has " +
                        std::to_string(row.size()) +
                        " values but \"columns\" "
                        "names " +
                        std::to_string(columns.size()));
    }
    const std::string where = "in row " + std::to_string(i);
    float* out = rows->values.data() + i * width;
    for (size_t c = 0; c < row.size(); ++c) {
      const int feature = feature_of_column[c];
      RETURN_IF_ERROR(EncodeValue(signature, feature, row[c], where,
                                  out + feature, &rows->stats));
    }
  }
  return absl::OkStatus();
}

// Length of the CSV header record: up to the first line feed outside quotes.
size_t HeaderLength(std::string_view text) {
  bool quoted = false;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '"') {
      quoted = !quoted;
    } else if (text[i] == '\n' && !quoted) {
      return i + 1;
    }
  }
  return text.size();
}

// A CSV body: a header row, then one row per prediction. Feature columns are
// read with the feature's type (so "007" stays a category, not 7); other
// columns (an id, the target) are ignored.
absl::Status EncodeCsv(const Signature& signature, const std::string& body,
                       EncodedRows* rows) {
  const std::string_view text(body);
  // column_types may only name columns that exist, so read the header first.
  ASSIGN_OR_RETURN(Table header, ParseCsv(text.substr(0, HeaderLength(text)),
                                          "request body"));
  CsvOptions options;
  for (const Column& column : header.columns()) {
    const int feature = signature.FeatureIndex(column.name());
    if (feature < 0) continue;
    const FeatureSpec& spec = signature.features()[feature];
    options.column_types[column.name()] =
        spec.is_categorical()          ? DataType::kString
        : spec.type == DataType::kBool ? DataType::kBool
                                       : DataType::kFloat64;
  }
  ASSIGN_OR_RETURN(Table table, ParseCsv(text, "request body", options));
  if (table.num_rows() == 0) {
    return BadRequest("request body has a CSV header but no rows");
  }
  RETURN_IF_ERROR(EncodeTable(signature, table, &rows->values, &rows->stats));
  rows->num_rows = table.num_rows();
  return absl::OkStatus();
}

absl::Status EncodePredictRequest(const Signature& signature,
                                  const HttpRequest& request,
                                  EncodedRows* rows) {
  if (IsBlank(request.body)) {
    return BadRequest(
        "request body is empty; send {\"records\": [{\"feature\": value, "
        "...}]} or {\"columns\": [...], \"data\": [[...]]} as JSON, or CSV "
        "with Content-Type: text/csv");
  }
  if (request.ContentTypeIs("text/csv") ||
      request.ContentTypeIs("application/csv")) {
    return EncodeCsv(signature, request.body, rows);
  }
  // Anything else is read as JSON, so `curl -d` (form content type) works.
  if (FastEncodePredictJson(signature, request.body, &rows->values,
                            &rows->num_rows, &rows->stats)) {
    return absl::OkStatus();
  }
  // Not a plain request: the full path below encodes it or words its error.
  *rows = EncodedRows();
  ASSIGN_OR_RETURN(json body, ParseJson(request.body, "request body"));
  if (!body.is_object()) {
    return BadRequest(
        "request body must be a JSON object {\"records\": [...]} or "
        "{\"columns\": [...], \"data\": [[...]]}, got " +
        Describe(body));
  }
  auto records = body.find("records");
  if (records != body.end()) return EncodeRecords(signature, *records, rows);
  if (body.contains("columns") || body.contains("data")) {
    return EncodeColumns(signature, body, rows);
  }
  return BadRequest(
      "request body has no \"records\" key; send {\"records\": [{\"feature\": "
      "value, ...}]} or {\"columns\": [...], \"data\": [[...]]}; the model's "
      "features are: " +
      FeatureList(signature));
}

// --- Open Inference Protocol v2 requests ---

// What JSON values a tensor's datatype carries.
enum class TensorKind { kNumber, kBool, kBytes };

absl::StatusOr<TensorKind> TensorKindOf(const std::string& input,
                                        const std::string& datatype) {
  if (datatype == "BOOL") return TensorKind::kBool;
  if (datatype == "BYTES") return TensorKind::kBytes;
  for (const char* number :
       {"UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32",
        "INT64", "FP16", "FP32", "FP64"}) {
    if (datatype == number) return TensorKind::kNumber;
  }
  return BadRequest("input '" + input + "' has unknown datatype '" + datatype +
                    "'; use BOOL, INT8, INT16, INT32, INT64, UINT8, UINT16, "
                    "UINT32, UINT64, FP16, FP32, FP64 or BYTES");
}

// The OIP datatype a feature is described with in the model metadata.
std::string FeatureDatatype(const FeatureSpec& spec) {
  switch (spec.type) {
    case DataType::kString:
      return "BYTES";
    case DataType::kInt64:
      return "INT64";
    case DataType::kBool:
      return "BOOL";
    case DataType::kFloat64:
      return "FP32";
  }
  return "FP32";
}

std::string LabelDatatype(const Signature& signature) {
  switch (signature.label_type()) {
    case DataType::kInt64:
      return "INT64";
    case DataType::kBool:
      return "BOOL";
    default:
      return "BYTES";
  }
}

// Columns of the probabilities output: 2 for binary classification.
int ProbabilityColumns(const Signature& signature) {
  return signature.task() == Task::kBinaryClassification
             ? 2
             : signature.output_width();
}

std::vector<std::string> OutputNames(const Signature& signature) {
  if (signature.is_classification()) return {"probabilities", "label"};
  return {"predictions"};
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string joined;
  for (const std::string& name : names) {
    if (!joined.empty()) joined += ", ";
    joined += name;
  }
  return joined;
}

std::string ShapeText(const json& shape) { return shape.dump(); }

// Appends the scalars of `data` to `values`: flat, or nested one level
// ([[a], [b]] for shape [N, 1]) as the protocol allows.
absl::Status FlattenTensorData(const std::string& input, const json& data,
                               std::vector<const json*>* values) {
  if (!data.is_array()) {
    return BadRequest("input '" + input + "' has \"data\" " + Describe(data) +
                      "; send an array of values");
  }
  for (const json& element : data) {
    if (!element.is_array()) {
      values->push_back(&element);
      continue;
    }
    for (const json& inner : element) {
      if (inner.is_array()) {
        return BadRequest("input '" + input +
                          "' has \"data\" nested deeper than its shape [N] or "
                          "[N, 1] allows");
      }
      values->push_back(&inner);
    }
  }
  return absl::OkStatus();
}

// The binary tensor data of a request that uses Triton's binary data
// extension: the body after its JSON header, handed out in input order to
// the inputs whose parameters carry "binary_data_size".
struct BinarySection {
  bool present = false;  // the request has Inference-Header-Content-Length
  std::string_view bytes;
  size_t taken = 0;  // bytes handed out so far
};

// One validated input tensor: its JSON values, or its binary data.
struct InputTensor {
  int feature = -1;
  std::string datatype;
  bool is_binary = false;
  std::vector<const json*> values;
  std::string_view binary;
};

// Splits the body of an infer request: with the header
// Inference-Header-Content-Length: N the first N bytes are the JSON header
// and the rest binary tensor data; without it the whole body is JSON.
absl::Status SplitInferBody(const HttpRequest& http, std::string_view* text,
                            BinarySection* binary) {
  *text = http.body;
  auto header = http.headers.find("inference-header-content-length");
  if (header == http.headers.end()) return absl::OkStatus();
  uint64_t length = 0;
  if (!absl::SimpleAtoi(header->second, &length)) {
    return BadRequest("header Inference-Header-Content-Length is '" +
                      header->second +
                      "', not a byte count; send the length in bytes of the "
                      "JSON header that starts the body");
  }
  if (length > http.body.size()) {
    return BadRequest(
        "header Inference-Header-Content-Length is " + std::to_string(length) +
        " but the body has only " + std::to_string(http.body.size()) +
        " bytes; send the length in bytes of the JSON header that starts the "
        "body, followed by the inputs' binary data");
  }
  binary->present = true;
  *text = text->substr(0, length);
  binary->bytes = std::string_view(http.body).substr(length);
  return absl::OkStatus();
}

// Bytes per element of `datatype` in binary data; 0 for BYTES, whose
// elements are each a 4-byte length followed by that many bytes.
size_t ElementSize(const std::string& datatype) {
  if (datatype == "BOOL" || datatype == "INT8" || datatype == "UINT8") {
    return 1;
  }
  if (datatype == "INT16" || datatype == "UINT16" || datatype == "FP16") {
    return 2;
  }
  if (datatype == "INT32" || datatype == "UINT32" || datatype == "FP32") {
    return 4;
  }
  if (datatype == "INT64" || datatype == "UINT64" || datatype == "FP64") {
    return 8;
  }
  return 0;
}

// The tensor's parameters.binary_data_size, or null when it has none.
const json* BinaryDataSize(const json& tensor) {
  auto parameters = tensor.find("parameters");
  if (parameters == tensor.end() || !parameters->is_object()) return nullptr;
  auto size = parameters->find("binary_data_size");
  return size == parameters->end() ? nullptr : &*size;
}

// Hands input `name`, `rows` elements of `datatype`, the next `size` bytes
// of the request's binary data.
absl::Status TakeBinaryData(const std::string& name,
                            const std::string& datatype, int64_t rows,
                            const json& size, BinarySection* binary,
                            std::string_view* out) {
  if (!binary->present) {
    return BadRequest(
        "input '" + name +
        "' has parameters.binary_data_size but the request has no "
        "Inference-Header-Content-Length header; send that header with the "
        "JSON header's length in bytes and the binary data after the JSON, or "
        "send the values in \"data\"");
  }
  if (!size.is_number_unsigned()) {
    return BadRequest("input '" + name + "' has binary_data_size " +
                      Describe(size) +
                      "; send the byte count of its binary data");
  }
  if (datatype == "FP16") {
    return BadRequest("input '" + name +
                      "' sends FP16 binary data, which this server does not "
                      "read; send it as FP32");
  }
  const uint64_t bytes = size.get<uint64_t>();
  const uint64_t count = static_cast<uint64_t>(rows);
  const size_t element = ElementSize(datatype);
  if (element > 0 && (bytes % element != 0 || bytes / element != count)) {
    return BadRequest("input '" + name + "' has binary_data_size " +
                      std::to_string(bytes) + " but its " +
                      std::to_string(count) + " " + datatype + " values take " +
                      std::to_string(count) + " x " + std::to_string(element) +
                      " bytes; send binary_data_size equal to that");
  }
  if (element == 0 && count > bytes / sizeof(uint32_t)) {
    return BadRequest("input '" + name + "' has binary_data_size " +
                      std::to_string(bytes) + ", too small for its " +
                      std::to_string(count) +
                      " BYTES elements (each is a 4-byte length and then "
                      "that many bytes)");
  }
  const size_t remaining = binary->bytes.size() - binary->taken;
  if (bytes > remaining) {
    return BadRequest(
        "input '" + name + "' has binary_data_size " + std::to_string(bytes) +
        " but only " + std::to_string(remaining) +
        " bytes of binary data remain after the JSON header and the inputs "
        "before it; the body is cut short or a binary_data_size is wrong");
  }
  *out = binary->bytes.substr(binary->taken, bytes);
  binary->taken += bytes;
  return absl::OkStatus();
}

absl::StatusOr<InputTensor> ReadInputTensor(const Signature& signature,
                                            const json& tensor, size_t index,
                                            std::vector<bool>* present,
                                            std::string* rows_from,
                                            int64_t* num_rows,
                                            BinarySection* binary) {
  const std::string position = "inputs[" + std::to_string(index) + "]";
  if (!tensor.is_object()) {
    return BadRequest(position +
                      " must be an object {\"name\", \"shape\", \"datatype\", "
                      "\"data\"}, got " +
                      Describe(tensor));
  }
  auto name_it = tensor.find("name");
  if (name_it == tensor.end() || !name_it->is_string()) {
    return BadRequest(position + " has no \"name\" string");
  }
  const std::string& name = name_it->get_ref<const std::string&>();
  InputTensor input;
  input.feature = signature.FeatureIndex(name);
  if (input.feature < 0) {
    return BadRequest("unknown input '" + name +
                      "'; the model's inputs are: " + FeatureList(signature));
  }
  if ((*present)[input.feature]) {
    return BadRequest("input '" + name + "' appears twice in \"inputs\"");
  }
  (*present)[input.feature] = true;
  const FeatureSpec& spec = signature.features()[input.feature];

  auto datatype_it = tensor.find("datatype");
  if (datatype_it == tensor.end() || !datatype_it->is_string()) {
    return BadRequest("input '" + name + "' has no \"datatype\" string; use " +
                      FeatureDatatype(spec));
  }
  const std::string& datatype = datatype_it->get_ref<const std::string&>();
  ASSIGN_OR_RETURN(TensorKind kind, TensorKindOf(name, datatype));
  if (!spec.is_categorical() &&
      (kind == TensorKind::kBytes ||
       (kind == TensorKind::kBool && spec.type != DataType::kBool))) {
    return BadRequest("input '" + name + "' has datatype " + datatype +
                      " but feature '" + name + "' is numeric (" +
                      std::string(DataTypeName(spec.type)) + "); send " +
                      FeatureDatatype(spec));
  }

  auto shape_it = tensor.find("shape");
  if (shape_it == tensor.end() || !shape_it->is_array()) {
    return BadRequest("input '" + name +
                      "' has no \"shape\" array; use [N] or [N, 1] for N rows");
  }
  const json& shape = *shape_it;
  for (const json& dim : shape) {
    if (!dim.is_number_integer() || dim.get<int64_t>() < 0) {
      return BadRequest("input '" + name + "' has shape " + ShapeText(shape) +
                        "; dimensions must be non-negative integers");
    }
  }
  if (shape.empty() || shape.size() > 2 ||
      (shape.size() == 2 && shape[1].get<int64_t>() != 1)) {
    return BadRequest("input '" + name + "' has shape " + ShapeText(shape) +
                      "; each input is one feature: use [N] or [N, 1] for N "
                      "rows");
  }
  const int64_t rows = shape[0].get<int64_t>();
  if (rows_from->empty()) {
    *rows_from = name;
    *num_rows = rows;
  } else if (rows != *num_rows) {
    return BadRequest("input '" + name + "' has " + std::to_string(rows) +
                      " rows but input '" + *rows_from + "' has " +
                      std::to_string(*num_rows));
  }

  input.datatype = datatype;
  auto data_it = tensor.find("data");
  if (const json* binary_size = BinaryDataSize(tensor);
      binary_size != nullptr) {
    if (data_it != tensor.end()) {
      return BadRequest("input '" + name +
                        "' has both \"data\" and "
                        "parameters.binary_data_size; send its values in one "
                        "of them");
    }
    input.is_binary = true;
    RETURN_IF_ERROR(TakeBinaryData(name, datatype, rows, *binary_size, binary,
                                   &input.binary));
    return input;
  }
  if (data_it == tensor.end()) {
    return BadRequest("input '" + name + "' has no \"data\"");
  }
  RETURN_IF_ERROR(FlattenTensorData(name, *data_it, &input.values));
  if (static_cast<int64_t>(input.values.size()) != rows) {
    return BadRequest("input '" + name + "' has shape " + ShapeText(shape) +
                      " (" + std::to_string(rows) +
                      " values) but its \"data\" "
                      "holds " +
                      std::to_string(input.values.size()));
  }
  for (size_t i = 0; i < input.values.size(); ++i) {
    const json& value = *input.values[i];
    const bool fits = value.is_null() ||
                      (kind == TensorKind::kNumber && value.is_number()) ||
                      (kind == TensorKind::kBool && value.is_boolean()) ||
                      (kind == TensorKind::kBytes && value.is_string());
    if (!fits) {
      return BadRequest("input '" + name + "' is " + datatype + " but data[" +
                        std::to_string(i) + "] is " + Describe(value));
    }
  }
  return input;
}

static_assert(std::endian::native == std::endian::little,
              "binary tensor data is little-endian and is read in place");

template <typename T>
T LoadElement(const char* data, size_t i) {
  T value;
  std::memcpy(&value, data + i * sizeof(T), sizeof(T));
  return value;
}

// The category text of a binary number: what EncodeValue matches for a JSON
// number of the same value.
template <typename T>
std::string NumberCategoryText(T value) {
  if constexpr (std::is_floating_point_v<T>) {
    return Float64CategoryText(static_cast<double>(value));
  } else if constexpr (std::is_signed_v<T>) {
    return Int64CategoryText(value);
  } else {
    return std::to_string(static_cast<uint64_t>(value));
  }
}

// Encodes `bytes`, elements of type T for `feature`, into column[i * width]
// as EncodeValue encodes the same numbers given in JSON; a NaN is a missing
// value, as null is in JSON.
template <typename T>
absl::Status EncodeBinaryNumbers(const Signature& signature, int feature,
                                 std::string_view bytes, size_t width,
                                 float* column, EncodeStats* stats) {
  const FeatureSpec& spec = signature.features()[feature];
  const char* data = bytes.data();
  const size_t rows = bytes.size() / sizeof(T);
  if (!spec.is_categorical() && spec.type != DataType::kBool) {
    int64_t missing = 0;
    for (size_t i = 0; i < rows; ++i) {
      const T value = LoadElement<T>(data, i);
      float cell = static_cast<float>(static_cast<double>(value));
      if constexpr (std::is_floating_point_v<T>) {
        if (std::isnan(value)) {
          cell = kMissing;
          ++missing;
        }
      }
      column[i * width] = cell;
    }
    stats->missing_values += missing;
    return absl::OkStatus();
  }
  for (size_t i = 0; i < rows; ++i) {
    const T value = LoadElement<T>(data, i);
    float* cell = column + i * width;
    if constexpr (std::is_floating_point_v<T>) {
      if (std::isnan(value)) {
        *cell = kMissing;
        ++stats->missing_values;
        continue;
      }
    }
    if (spec.is_categorical()) {
      *cell =
          EncodeCategory(signature, feature, NumberCategoryText(value), stats);
    } else if (value == 0 || value == 1) {
      *cell = value == 1 ? 1.0f : 0.0f;
    } else {
      return BadRequest("feature '" + spec.name +
                        "' expects true or false, got number " +
                        NumberCategoryText(value) + " at element " +
                        std::to_string(i) + " of input '" + spec.name + "'");
    }
  }
  return absl::OkStatus();
}

// BOOL elements, one byte each: 0 is false, 1 true.
absl::Status EncodeBinaryBools(const Signature& signature, int feature,
                               std::string_view bytes, size_t width,
                               float* column, EncodeStats* stats) {
  const FeatureSpec& spec = signature.features()[feature];
  for (size_t i = 0; i < bytes.size(); ++i) {
    const unsigned char byte = static_cast<unsigned char>(bytes[i]);
    if (byte > 1) {
      return BadRequest("input '" + spec.name + "' is BOOL but element " +
                        std::to_string(i) + " is the byte " +
                        std::to_string(byte) +
                        "; a BOOL element is 0 (false) or 1 (true)");
    }
    column[i * width] = spec.is_categorical()
                            ? EncodeCategory(signature, feature,
                                             BoolCategoryText(byte == 1), stats)
                            : static_cast<float>(byte);
  }
  return absl::OkStatus();
}

// BYTES elements: each a 4-byte little-endian length, then that many bytes.
absl::Status EncodeBinaryStrings(const Signature& signature, int feature,
                                 std::string_view bytes, size_t rows,
                                 size_t width, float* column,
                                 EncodeStats* stats) {
  const std::string& name = signature.features()[feature].name;
  size_t position = 0;
  for (size_t i = 0; i < rows; ++i) {
    uint32_t length;
    if (bytes.size() - position < sizeof(length)) {
      return BadRequest(
          "input '" + name + "' ends inside the length of BYTES element " +
          std::to_string(i) + " of " + std::to_string(rows) +
          "; its binary_data_size " + std::to_string(bytes.size()) +
          " must hold every element's 4-byte length and bytes");
    }
    std::memcpy(&length, bytes.data() + position, sizeof(length));
    position += sizeof(length);
    if (length > bytes.size() - position) {
      return BadRequest(
          "input '" + name + "' BYTES element " + std::to_string(i) +
          " has length " + std::to_string(length) + " but only " +
          std::to_string(bytes.size() - position) +
          " bytes of the input's binary_data_size remain; each element is a "
          "4-byte little-endian length and then that many bytes");
    }
    column[i * width] = EncodeCategory(signature, feature,
                                       bytes.substr(position, length), stats);
    position += length;
  }
  if (position != bytes.size()) {
    return BadRequest("input '" + name + "' has binary_data_size " +
                      std::to_string(bytes.size()) + " but its " +
                      std::to_string(rows) + " BYTES elements take " +
                      std::to_string(position) +
                      " bytes; send binary_data_size equal to that");
  }
  return absl::OkStatus();
}

// Encodes a binary input into its column of `rows`.
absl::Status EncodeBinaryTensor(const Signature& signature,
                                const InputTensor& tensor, EncodedRows* rows) {
  const size_t width = signature.features().size();
  const int feature = tensor.feature;
  const std::string_view bytes = tensor.binary;
  float* column = rows->values.data() + feature;
  EncodeStats* stats = &rows->stats;
  const std::string& type = tensor.datatype;
  if (type == "BOOL") {
    return EncodeBinaryBools(signature, feature, bytes, width, column, stats);
  }
  if (type == "BYTES") {
    return EncodeBinaryStrings(signature, feature, bytes, rows->num_rows, width,
                               column, stats);
  }
  if (type == "INT8") {
    return EncodeBinaryNumbers<int8_t>(signature, feature, bytes, width, column,
                                       stats);
  }
  if (type == "INT16") {
    return EncodeBinaryNumbers<int16_t>(signature, feature, bytes, width,
                                        column, stats);
  }
  if (type == "INT32") {
    return EncodeBinaryNumbers<int32_t>(signature, feature, bytes, width,
                                        column, stats);
  }
  if (type == "INT64") {
    return EncodeBinaryNumbers<int64_t>(signature, feature, bytes, width,
                                        column, stats);
  }
  if (type == "UINT8") {
    return EncodeBinaryNumbers<uint8_t>(signature, feature, bytes, width,
                                        column, stats);
  }
  if (type == "UINT16") {
    return EncodeBinaryNumbers<uint16_t>(signature, feature, bytes, width,
                                         column, stats);
  }
  if (type == "UINT32") {
    return EncodeBinaryNumbers<uint32_t>(signature, feature, bytes, width,
                                         column, stats);
  }
  if (type == "UINT64") {
    return EncodeBinaryNumbers<uint64_t>(signature, feature, bytes, width,
                                         column, stats);
  }
  if (type == "FP32") {
    return EncodeBinaryNumbers<float>(signature, feature, bytes, width, column,
                                      stats);
  }
  // FP64: FP16 was refused when the input took its bytes (TakeBinaryData).
  return EncodeBinaryNumbers<double>(signature, feature, bytes, width, column,
                                     stats);
}

struct InferRequest {
  json id;  // null when the request has none
  std::vector<std::string> outputs;
};

// An infer request: JSON, or a JSON header and binary tensor data (Triton's
// binary data extension).
absl::Status EncodeInferRequest(const Signature& signature,
                                const HttpRequest& http, InferRequest* request,
                                EncodedRows* rows) {
  std::string_view text;
  BinarySection binary;
  RETURN_IF_ERROR(SplitInferBody(http, &text, &binary));
  if (IsBlank(text)) {
    return BadRequest(
        std::string(binary.present
                        ? "the JSON header (the first "
                          "Inference-Header-Content-Length bytes of the body)"
                        : "request body") +
        " is empty; send {\"inputs\": [{\"name\": feature, \"shape\": [N], "
        "\"datatype\": \"FP32\", \"data\": [...]}, ...]}");
  }
  // The fast path reads plain JSON and ignores tensor parameters, so a body
  // naming binary_data_size takes the full path, which reads or refuses it.
  std::optional<std::string> fast_id;
  if (!binary.present &&
      text.find("binary_data_size") == std::string_view::npos &&
      FastEncodeInferJson(signature, text, &rows->values, &rows->num_rows,
                          &rows->stats, &fast_id, &request->outputs)) {
    if (fast_id.has_value()) request->id = *std::move(fast_id);
    if (request->outputs.empty()) request->outputs = OutputNames(signature);
    return absl::OkStatus();
  }
  // Not a plain request: the full path below encodes it or words its error.
  *rows = EncodedRows();
  request->outputs.clear();
  ASSIGN_OR_RETURN(
      json body,
      ParseJson(text, binary.present ? "the JSON header (the first " +
                                           std::to_string(text.size()) +
                                           " bytes of the body, per "
                                           "Inference-Header-Content-Length)"
                                     : std::string("request body")));
  if (!body.is_object()) {
    return BadRequest(
        "request body must be a JSON object {\"inputs\": [...]}, "
        "got " +
        Describe(body));
  }
  if (auto id = body.find("id"); id != body.end()) request->id = *id;

  auto inputs_it = body.find("inputs");
  if (inputs_it == body.end() || !inputs_it->is_array()) {
    return BadRequest(
        "request body has no \"inputs\" array; send one tensor per feature "
        "{\"name\", \"shape\", \"datatype\", \"data\"}; the model's inputs "
        "are: " +
        FeatureList(signature));
  }
  const json& inputs = *inputs_it;
  const size_t width = signature.features().size();
  std::vector<bool> present(width, false);
  std::vector<InputTensor> tensors;
  std::string rows_from;
  int64_t num_rows = 0;
  for (size_t t = 0; t < inputs.size(); ++t) {
    ASSIGN_OR_RETURN(InputTensor tensor,
                     ReadInputTensor(signature, inputs[t], t, &present,
                                     &rows_from, &num_rows, &binary));
    tensors.push_back(std::move(tensor));
  }
  if (binary.taken != binary.bytes.size()) {
    return BadRequest(
        "the body has " + std::to_string(binary.bytes.size()) +
        " bytes of binary data after its JSON header but the inputs' "
        "binary_data_size values add up to " +
        std::to_string(binary.taken) +
        "; give each binary input its byte count in "
        "parameters.binary_data_size and send no other bytes");
  }
  for (size_t f = 0; f < width; ++f) {
    if (!present[f]) {
      return BadRequest(
          "input '" + signature.features()[f].name +
          "' is missing; the model's inputs are: " + FeatureList(signature));
    }
  }
  if (num_rows == 0) {
    return BadRequest("the inputs have 0 rows; send at least one");
  }

  const std::vector<std::string> known = OutputNames(signature);
  if (auto outputs = body.find("outputs"); outputs != body.end()) {
    if (!outputs->is_array()) {
      return BadRequest(
          "\"outputs\" must be an array of {\"name\": ...}, got " +
          Describe(*outputs));
    }
    for (size_t o = 0; o < outputs->size(); ++o) {
      const json& output = (*outputs)[o];
      auto name = output.is_object() ? output.find("name") : output.end();
      if (!output.is_object() || name == output.end() || !name->is_string()) {
        return BadRequest("outputs[" + std::to_string(o) +
                          "] must be an object with a \"name\" string");
      }
      const std::string& wanted = name->get_ref<const std::string&>();
      if (std::find(known.begin(), known.end(), wanted) == known.end()) {
        return BadRequest("unknown output '" + wanted +
                          "'; the model's outputs are: " + JoinNames(known));
      }
      if (std::find(request->outputs.begin(), request->outputs.end(), wanted) !=
          request->outputs.end()) {
        return BadRequest("output '" + wanted + "' is requested twice");
      }
      request->outputs.push_back(wanted);
    }
  }
  if (request->outputs.empty()) request->outputs = known;

  rows->num_rows = static_cast<size_t>(num_rows);
  rows->values.assign(rows->num_rows * width, kMissing);
  for (const InputTensor& tensor : tensors) {
    if (tensor.is_binary) {
      RETURN_IF_ERROR(EncodeBinaryTensor(signature, tensor, rows));
      continue;
    }
    const std::string& name = signature.features()[tensor.feature].name;
    for (size_t i = 0; i < tensor.values.size(); ++i) {
      RETURN_IF_ERROR(EncodeValue(
          signature, tensor.feature, *tensor.values[i],
          "at data[" + std::to_string(i) + "] of input '" + name + "'",
          rows->values.data() + i * width + tensor.feature, &rows->stats));
    }
  }
  return absl::OkStatus();
}

// --- Predictions and answers ---

std::string ModelName(const std::string& app, int version) {
  return "model " + app + " v" + std::to_string(version);
}

// Probability of class `k` for row `row`.
float Probability(const Signature& signature, const std::vector<float>& outputs,
                  size_t row, int k) {
  if (signature.task() == Task::kBinaryClassification) {
    const float p1 = outputs[row];
    return k == 1 ? p1 : 1.0f - p1;
  }
  return outputs[row * signature.output_width() + k];
}

// The most probable class of `row` (the lowest index on a tie).
int PredictedClass(const Signature& signature,
                   const std::vector<float>& outputs, size_t row) {
  const int classes = ProbabilityColumns(signature);
  int best = 0;
  for (int k = 1; k < classes; ++k) {
    if (Probability(signature, outputs, row, k) >
        Probability(signature, outputs, row, best)) {
      best = k;
    }
  }
  return best;
}

// Class k's label as text: its entry in class_labels, or its index when
// the signature lists none.
std::string LabelText(const Signature& signature, int k) {
  const std::vector<std::string>& labels = signature.class_labels();
  return static_cast<size_t>(k) < labels.size() ? labels[k] : std::to_string(k);
}

// Appends class k's label as JSON: a number for int64 labels, true/false for
// bool labels, a string otherwise (or when the text does not parse).
void AppendLabelJson(const Signature& signature, int k, std::string* out) {
  const std::string text = LabelText(signature, k);
  if (signature.label_type() == DataType::kInt64) {
    int64_t number;
    if (absl::SimpleAtoi(text, &number)) {
      out->append(std::to_string(number));
      return;
    }
  } else if (signature.label_type() == DataType::kBool) {
    bool value;
    if (absl::SimpleAtob(text, &value)) {
      out->append(value ? "true" : "false");
      return;
    }
  }
  FastAppendJsonString(text, out);
}

HttpResponse JsonAnswer(int status, const ordered_json& body) {
  return HttpResponse::Json(
      status, body.dump(-1, ' ', false, json::error_handler_t::replace));
}

void AddPredictionHeaders(const std::string& request_id, int version,
                          HttpResponse* response) {
  response->headers.reserve(response->headers.size() + 2);
  response->headers.emplace_back("X-Request-Id", request_id);
  response->headers.emplace_back("X-Model-Version", std::to_string(version));
}

std::string Platform(std::string_view format) {
  // "xgboost-json" -> "xgboost": the framework, not its file format.
  return std::string(format.substr(0, format.find('-')));
}

// The served version named by the path: {app} alone is the serving version,
// {app}/versions/{version} a specific one ("7" or "v7").
absl::StatusOr<ServableHandle> LookUp(const ModelManager& models,
                                      const PathParams& params) {
  const std::string& app = params.at("app");
  auto version_it = params.find("version");
  if (version_it == params.end()) return models.Get(app);
  std::string text = version_it->second;
  if (!text.empty() && (text[0] == 'v' || text[0] == 'V')) text.erase(0, 1);
  int version = 0;
  if (!absl::SimpleAtoi(text, &version) || version <= 0) {
    return BadRequest("model version '" + version_it->second +
                      "' is not a positive integer (for example /v2/models/" +
                      app + "/versions/3)");
  }
  return models.Get(app, version);
}

// OK when the manager has finished every load it started.
absl::Status Readiness(const ModelManager& models) {
  for (const VersionState& state : models.States()) {
    if (state.state == VersionStateKind::kLoading) {
      return absl::UnavailableError(ModelName(state.app, state.version) +
                                    " is loading");
    }
  }
  return absl::OkStatus();
}

ordered_json TensorMetadata(const std::string& name,
                            const std::string& datatype, ordered_json shape) {
  return ordered_json{{"name", name}, {"datatype", datatype}, {"shape", shape}};
}

HttpResponse ModelMetadata(const std::string& app,
                           const ServableHandle& handle) {
  const Signature& signature = handle.model->signature();
  ordered_json inputs = ordered_json::array();
  for (const FeatureSpec& spec : signature.features()) {
    inputs.push_back(
        TensorMetadata(spec.name, FeatureDatatype(spec), ordered_json{-1}));
  }
  ordered_json outputs = ordered_json::array();
  if (signature.is_classification()) {
    outputs.push_back(
        TensorMetadata("probabilities", "FP32",
                       ordered_json{-1, ProbabilityColumns(signature)}));
    outputs.push_back(
        TensorMetadata("label", LabelDatatype(signature), ordered_json{-1}));
  } else {
    outputs.push_back(TensorMetadata("predictions", "FP32", ordered_json{-1}));
  }
  ordered_json body{
      {"name", app},
      {"versions", ordered_json::array({std::to_string(handle.version)})},
      {"platform", Platform(handle.model->format())},
      {"inputs", std::move(inputs)},
      {"outputs", std::move(outputs)}};
  return JsonAnswer(200, body);
}

HttpResponse ModelReady(const ModelManager& models, const PathParams& params) {
  absl::StatusOr<ServableHandle> handle = LookUp(models, params);
  if (handle.ok()) {
    return JsonAnswer(200, {{"name", params.at("app")}, {"ready", true}});
  }
  if (handle.status().code() != absl::StatusCode::kUnavailable) {
    return HttpResponse::Error(handle.status());
  }
  // Not ready yet: the protocol's answer plus the one error field.
  return JsonAnswer(503, {{"name", params.at("app")},
                          {"ready", false},
                          {"error", std::string(handle.status().message())}});
}

// Answers one data-plane request and records it: RequestStarted when
// made, RecordRequest and RequestFinished with the answer. Copies share the
// one responder, so it can travel in a batch callback.
class MeteredResponder {
 public:
  MeteredResponder(std::string app, std::string_view endpoint, Clock* clock,
                   ServingMetrics* metrics, HttpResponder respond)
      : app_(std::move(app)),
        endpoint_(endpoint),
        clock_(clock),
        metrics_(metrics),
        start_us_(clock->MonotonicMicros()),
        respond_(std::move(respond)) {
    if (metrics_ != nullptr) metrics_->RequestStarted();
  }

  const std::string& app() const { return app_; }
  // Microseconds since the handler started.
  int64_t elapsed_micros() const {
    return clock_->MonotonicMicros() - start_us_;
  }

  // `version` is 0 when no model was chosen (unknown app, no model yet).
  void operator()(int version, HttpResponse response) const {
    if (metrics_ != nullptr) {
      metrics_->RecordRequest(app_, version, endpoint_, response.status,
                              clock_->MonotonicMicros() - start_us_);
      metrics_->RequestFinished();
    }
    respond_(std::move(response));
  }

 private:
  std::string app_;
  std::string_view endpoint_;  // a string literal
  Clock* clock_;
  ServingMetrics* metrics_;
  int64_t start_us_;
  HttpResponder respond_;
};

// The answer when the scheduler refused a request it never took: a full
// queue or a batcher shutting down is 503 with Retry-After, so clients
// back off and retry.
HttpResponse Refusal(const absl::Status& status) {
  if (status.code() != absl::StatusCode::kResourceExhausted &&
      status.code() != absl::StatusCode::kUnavailable) {
    return HttpResponse::Error(status);
  }
  HttpResponse response = HttpResponse::Json(503, ErrorBody(status));
  response.headers.emplace_back("Retry-After", "1");
  return response;
}

// --- Shadow traffic ---

// The routing key of a request (header X-Routing-Key), "" without one.
std::string_view RoutingKey(const HttpRequest& request) {
  auto it = request.headers.find("x-routing-key");
  if (it == request.headers.end()) return {};
  return it->second;
}

// What the app's shadow needs of one request, copied while the handler runs:
// the HttpRequest is gone by the time the primary has answered. Owns the
// shadow's scheduler, so it must never be owned by that scheduler's `done`
// callbacks (batcher.h).
struct ShadowCopy {
  std::string app;
  ServableHandle shadow;
  bool infer = false;   // which encoder reads `request`
  HttpRequest request;  // the body and the headers the encoders read
  Clock* clock = nullptr;
  ServingMetrics* metrics = nullptr;       // may be null
  PredictionObserver* observer = nullptr;  // may be null
  ShadowRunner* runner = nullptr;          // predicts the copy
};

// The answer a shadow's prediction is compared with, and where its outcome
// goes; what the shadow's batch callback holds.
struct ShadowedAnswer {
  std::string app;
  int shadow_version = 0;
  int primary_version = 0;
  std::vector<float> primary_outputs;
  size_t primary_width = 0;
  std::string request_id;
  Clock* clock = nullptr;
  ServingMetrics* metrics = nullptr;
  PredictionObserver* observer = nullptr;
};

void CountShadow(const ShadowedAnswer& answer, ShadowOutcome outcome) {
  if (answer.metrics != nullptr) {
    answer.metrics->RecordShadowPrediction(answer.app, answer.shadow_version,
                                           outcome);
  }
}

// The copy of `request` for the app's shadow when it has one other than
// the `answering` version; null (and nothing copied) otherwise.
std::shared_ptr<const ShadowCopy> CopyForShadow(
    const ModelManager& models, const std::string& app, int answering,
    bool infer, const HttpRequest& request, Clock* clock,
    ServingMetrics* metrics, PredictionObserver* observer,
    ShadowRunner* runner) {
  std::optional<ServableHandle> shadow = models.Shadow(app);
  if (!shadow.has_value() || shadow->version == answering) return nullptr;
  auto copy = std::make_shared<ShadowCopy>();
  copy->app = app;
  copy->shadow = *std::move(shadow);
  copy->infer = infer;
  copy->request.body = request.body;
  for (const char* name : {"content-type", "inference-header-content-length"}) {
    auto it = request.headers.find(name);
    if (it != request.headers.end()) copy->request.headers.insert(*it);
  }
  copy->clock = clock;
  copy->metrics = metrics;
  copy->observer = observer;
  copy->runner = runner;
  return copy;
}

// Encodes the copy for the shadow's signature and queues it on the shadow's
// scheduler; its outputs go to the observer. Errors and refusals are only
// counted: the client has its answer already.
void RunShadow(const ShadowCopy& copy,
               std::shared_ptr<const ShadowedAnswer> answered) {
  const Signature& signature = copy.shadow.model->signature();
  EncodedRows rows;
  absl::Status status;
  if (copy.infer) {
    InferRequest unused;
    status = EncodeInferRequest(signature, copy.request, &unused, &rows);
  } else {
    status = EncodePredictRequest(signature, copy.request, &rows);
  }
  if (!status.ok()) return CountShadow(*answered, ShadowOutcome::kError);
  const int64_t started_us = copy.clock->MonotonicMicros();
  std::vector<float> outputs;
  status =
      copy.shadow.model->Predict(rows.values.data(), rows.num_rows, &outputs);
  if (!status.ok()) return CountShadow(*answered, ShadowOutcome::kError);
  // Counted once observed: a count seen is a prediction logged.
  if (answered->observer != nullptr && rows.num_rows > 0) {
    ObservedPrediction observed;
    observed.app = answered->app;
    observed.version = answered->shadow_version;
    observed.request_id = answered->request_id;
    observed.answered_at_micros = answered->clock->NowMicros();
    observed.latency_micros = answered->clock->MonotonicMicros() - started_us;
    observed.rows = rows.values.data();
    observed.num_rows = rows.num_rows;
    observed.outputs = outputs.data();
    observed.width = outputs.size() / rows.num_rows;
    observed.shadow = true;
    observed.primary_version = answered->primary_version;
    observed.primary_outputs = answered->primary_outputs.data();
    observed.primary_width = answered->primary_width;
    answered->observer->Observe(observed);
  }
  CountShadow(*answered, ShadowOutcome::kOk);
}

// Sends the copy to the shadow once the primary answered `request_id` with
// `outputs`: queued for the ShadowRunner's idle-priority thread (dropped
// when its queue is full), so it never takes a thread or CPU time from the
// requests clients wait for.
void ForwardToShadow(std::shared_ptr<const ShadowCopy> copy,
                     int primary_version, std::vector<float> outputs,
                     size_t num_rows, std::string request_id) {
  auto answered = std::make_shared<ShadowedAnswer>();
  answered->app = copy->app;
  answered->shadow_version = copy->shadow.version;
  answered->primary_version = primary_version;
  answered->primary_width = num_rows == 0 ? 0 : outputs.size() / num_rows;
  answered->primary_outputs = std::move(outputs);
  answered->request_id = std::move(request_id);
  answered->clock = copy->clock;
  answered->metrics = copy->metrics;
  answered->observer = copy->observer;
  ShadowRunner* runner = copy->runner;
  if (!runner->TrySubmit([copy = std::move(copy), answered] {
        RunShadow(*copy, answered);
      })) {
    CountShadow(*answered, ShadowOutcome::kDropped);
  }
}

// Hands `rows` to the version's scheduler; `on_outputs` builds the answer
// from the rows' outputs and the request id. Whatever happens, `answer` is
// called once: by the scheduler's callback, or here when the scheduler
// refused the request (BatchScheduler's ownership rule). Once answered, a
// predicted request is reported to `observer` (may be null), then sent to
// `shadow` when there is one (null: none).
// `on_outputs` is a callable HttpResponse(const std::vector<float>&,
// const std::string& request_id), held by value in the callback rather than
// in a std::function of its own.
template <typename OnOutputs>
void Submit(const ServableHandle& handle, EncodedRows rows,
            const MeteredResponder& answer, Clock* clock,
            PredictionObserver* observer,
            std::shared_ptr<const ShadowCopy> shadow, OnOutputs on_outputs) {
  auto request = std::make_unique<BatchRequest>();
  request->rows = std::move(rows.values);
  request->num_rows = rows.num_rows;
  // The callback reads the rows through the request that owns it: a
  // scheduler calls `done` while its request is alive (batcher.h).
  const BatchRequest* self = request.get();
  // Captures the model through `on_outputs` at most, never this version's
  // scheduler: the callback runs on the batcher's worker (see batcher.h).
  // `shadow` holds the shadow's scheduler, another version's.
  request->done = [answer, version = handle.version, clock, observer, self,
                   shadow = std::move(shadow),
                   on_outputs = std::move(on_outputs)](
                      absl::StatusOr<std::vector<float>> outputs) {
    if (!outputs.ok()) {
      answer(version, HttpResponse::Error(outputs.status()));
      if (observer != nullptr) observer->ObserveFailure(answer.app(), version);
      return;
    }
    const int64_t now = clock->NowMicros();
    std::string request_id = NewId("req", now);
    const int64_t latency = answer.elapsed_micros();
    HttpResponse response = on_outputs(*outputs, request_id);
    // Observed before the client has the answer, so feedback sent the
    // moment it arrives finds the prediction in the log.
    if (observer != nullptr && self->num_rows > 0) {
      ObservedPrediction observed;
      observed.app = answer.app();
      observed.version = version;
      observed.request_id = request_id;
      observed.answered_at_micros = now;
      observed.latency_micros = latency;
      observed.rows = self->rows.data();
      observed.num_rows = self->num_rows;
      observed.outputs = outputs->data();
      observed.width = outputs->size() / self->num_rows;
      observer->Observe(observed);
    }
    answer(version, std::move(response));
    if (shadow == nullptr) return;
    // On an I/O thread the answers of this pass are written once it ends:
    // the copy goes after them, so it never delays one.
    auto forward = [shadow, version, outputs = *std::move(outputs),
                    num_rows = self->num_rows,
                    request_id = std::move(request_id)]() mutable {
      ForwardToShadow(shadow, version, std::move(outputs), num_rows,
                      std::move(request_id));
    };
    if (IoRound::Active()) {
      IoRound::Defer(std::move(forward));
    } else {
      forward();
    }
  };
  absl::Status status = handle.scheduler->Enqueue(request);
  if (!status.ok()) {
    answer(handle.version, Refusal(status));
    if (observer != nullptr) {
      observer->ObserveFailure(answer.app(), handle.version);
    }
  }
}

// The JSON text of each class's label (AppendLabelJson) and of its name as
// an object key, written once per answer rather than once per row. Short
// labels (a binary model's "0" and "1") fit in the strings and the inline
// vectors: building these costs no allocation.
struct ClassTexts {
  absl::InlinedVector<std::string, 2> labels;
  absl::InlinedVector<std::string, 2> keys;
};

ClassTexts MakeClassTexts(const Signature& signature) {
  ClassTexts texts;
  const int classes = ProbabilityColumns(signature);
  for (int k = 0; k < classes; ++k) {
    AppendLabelJson(signature, k, &texts.labels.emplace_back());
    FastAppendJsonString(LabelText(signature, k), &texts.keys.emplace_back());
  }
  return texts;
}

// The answers are written straight into one string, byte for byte what
// dumping the equivalent ordered_json gives, without building that DOM.
HttpResponse PredictAnswer(const Signature& signature, int version,
                           const std::vector<float>& outputs, size_t num_rows,
                           const EncodeStats& stats,
                           const std::string& request_id) {
  const bool classification = signature.is_classification();
  const int classes = classification ? ProbabilityColumns(signature) : 0;
  std::string body;
  // The whole answer usually fits (the request id and version take about
  // 64 bytes), so appending does not reallocate.
  body.reserve(classification ? 128 + num_rows * (40 + classes * 32)
                              : 128 + outputs.size() * 24);
  body.append("{\"predictions\":[");
  if (!classification) {
    for (size_t i = 0; i < outputs.size(); ++i) {
      if (i > 0) body.push_back(',');
      AppendJsonDouble(static_cast<double>(outputs[i]), &body);
    }
  } else {
    const ClassTexts texts = MakeClassTexts(signature);
    for (size_t row = 0; row < num_rows; ++row) {
      if (row > 0) body.push_back(',');
      body.append("{\"label\":");
      body.append(texts.labels[PredictedClass(signature, outputs, row)]);
      body.append(",\"probabilities\":{");
      for (int k = 0; k < classes; ++k) {
        if (k > 0) body.push_back(',');
        body.append(texts.keys[k]);
        body.push_back(':');
        AppendJsonDouble(
            static_cast<double>(Probability(signature, outputs, row, k)),
            &body);
      }
      body.append("}}");
    }
  }
  body.append("],\"model_version\":");
  body.append(std::to_string(version));
  body.append(",\"request_id\":");
  FastAppendJsonString(request_id, &body);
  if (stats.unseen_categories > 0) {
    body.append(",\"unseen_categories\":");
    body.append(std::to_string(stats.unseen_categories));
  }
  body.push_back('}');
  HttpResponse response = HttpResponse::Json(200, std::move(body));
  AddPredictionHeaders(request_id, version, &response);
  return response;
}

void Predict(const ModelManager& models, Clock* clock, ServingMetrics* metrics,
             PredictionObserver* observer, ShadowRunner* runner,
             const HttpRequest& request, const PathParams& params,
             HttpResponder respond) {
  const std::string& app = params.at("app");
  const MeteredResponder answer(app, "predict", clock, metrics,
                                std::move(respond));
  absl::StatusOr<ServableHandle> handle =
      models.Route(app, RoutingKey(request));
  if (!handle.ok()) return answer(0, HttpResponse::Error(handle.status()));
  EncodedRows rows;
  absl::Status status =
      EncodePredictRequest(handle->model->signature(), request, &rows);
  if (!status.ok()) return answer(handle->version, HttpResponse::Error(status));
  const size_t num_rows = rows.num_rows;
  const EncodeStats stats = rows.stats;
  Submit(*handle, std::move(rows), answer, clock, observer,
         CopyForShadow(models, app, handle->version, /*infer=*/false, request,
                       clock, metrics, observer, runner),
         [model = handle->model, version = handle->version, num_rows,
          stats](const std::vector<float>& outputs,
                 const std::string& request_id) {
           return PredictAnswer(model->signature(), version, outputs, num_rows,
                                stats, request_id);
         });
}

// Appends {"name", "datatype", "shape", "data": [ (the caller writes the
// values and closes with "]}").
void OpenOutputTensor(std::string_view name, std::string_view datatype,
                      int64_t rows, int columns, std::string* body) {
  body->append("{\"name\":");
  FastAppendJsonString(name, body);
  body->append(",\"datatype\":");
  FastAppendJsonString(datatype, body);
  body->append(",\"shape\":[");
  body->append(std::to_string(rows));
  if (columns > 0) {
    body->push_back(',');
    body->append(std::to_string(columns));
  }
  body->append("],\"data\":[");
}

HttpResponse InferAnswer(const std::string& app, const Signature& signature,
                         int version, const InferRequest& infer,
                         const std::vector<float>& outputs, size_t num_rows,
                         const EncodeStats& stats,
                         const std::string& request_id) {
  const int64_t n = static_cast<int64_t>(num_rows);
  std::string body;
  body.reserve(256 + outputs.size() * 24 + num_rows * 64);
  body.append("{\"model_name\":");
  FastAppendJsonString(app, &body);
  body.append(",\"model_version\":");
  FastAppendJsonString(std::to_string(version), &body);
  if (!infer.id.is_null()) {
    body.append(",\"id\":");
    body.append(infer.id.dump(-1, ' ', false, json::error_handler_t::replace));
  }
  body.append(",\"parameters\":{\"request_id\":");
  FastAppendJsonString(request_id, &body);
  if (stats.unseen_categories > 0) {
    body.append(",\"unseen_categories\":");
    body.append(std::to_string(stats.unseen_categories));
  }
  body.append("},\"outputs\":[");
  bool first_tensor = true;
  for (const std::string& name : infer.outputs) {
    if (!first_tensor) body.push_back(',');
    first_tensor = false;
    if (name == "predictions") {
      OpenOutputTensor(name, "FP32", n, 0, &body);
      for (size_t i = 0; i < outputs.size(); ++i) {
        if (i > 0) body.push_back(',');
        AppendJsonDouble(static_cast<double>(outputs[i]), &body);
      }
    } else if (name == "probabilities") {
      const int classes = ProbabilityColumns(signature);
      OpenOutputTensor(name, "FP32", n, classes, &body);
      for (size_t row = 0; row < num_rows; ++row) {
        for (int k = 0; k < classes; ++k) {
          if (row > 0 || k > 0) body.push_back(',');
          AppendJsonDouble(
              static_cast<double>(Probability(signature, outputs, row, k)),
              &body);
        }
      }
    } else {  // "label"
      const ClassTexts texts = MakeClassTexts(signature);
      OpenOutputTensor(name, LabelDatatype(signature), n, 0, &body);
      for (size_t row = 0; row < num_rows; ++row) {
        if (row > 0) body.push_back(',');
        body.append(texts.labels[PredictedClass(signature, outputs, row)]);
      }
    }
    body.append("]}");
  }
  body.append("]}");
  HttpResponse response = HttpResponse::Json(200, std::move(body));
  AddPredictionHeaders(request_id, version, &response);
  return response;
}

void Infer(const ModelManager& models, Clock* clock, ServingMetrics* metrics,
           PredictionObserver* observer, ShadowRunner* runner,
           const HttpRequest& request, const PathParams& params,
           HttpResponder respond) {
  const std::string& app = params.at("app");
  const MeteredResponder answer(app, "infer", clock, metrics,
                                std::move(respond));
  // Without a version in the path the app routes the request (canary,
  // shadow); with one, that version answers alone.
  const bool routed = params.find("version") == params.end();
  absl::StatusOr<ServableHandle> handle =
      routed ? models.Route(app, RoutingKey(request)) : LookUp(models, params);
  if (!handle.ok()) return answer(0, HttpResponse::Error(handle.status()));
  InferRequest infer;
  EncodedRows rows;
  absl::Status status =
      EncodeInferRequest(handle->model->signature(), request, &infer, &rows);
  if (!status.ok()) return answer(handle->version, HttpResponse::Error(status));
  const size_t num_rows = rows.num_rows;
  const EncodeStats stats = rows.stats;
  Submit(*handle, std::move(rows), answer, clock, observer,
         routed ? CopyForShadow(models, app, handle->version, /*infer=*/true,
                                request, clock, metrics, observer, runner)
                : nullptr,
         [app, model = handle->model, version = handle->version,
          infer = std::move(infer), num_rows,
          stats](const std::vector<float>& outputs,
                 const std::string& request_id) {
           return InferAnswer(app, model->signature(), version, infer, outputs,
                              num_rows, stats, request_id);
         });
}

}  // namespace

void AddInferenceRoutes(Router* router, ModelManager* models, Clock* clock,
                        ServingMetrics* metrics, PredictionGuard guard,
                        PredictionObserver* observer,
                        std::shared_ptr<ShadowRunner> shadow_runner) {
  router->Add("GET", "/healthz", [](const HttpRequest&, const PathParams&) {
    return JsonAnswer(200, {{"status", "ok"}});
  });
  router->Add("GET", "/readyz",
              [models](const HttpRequest&, const PathParams&) {
                absl::Status ready = Readiness(*models);
                if (!ready.ok()) return HttpResponse::Error(ready);
                return JsonAnswer(200, {{"status", "ready"}});
              });
  router->Add("GET", "/v2/health/live",
              [](const HttpRequest&, const PathParams&) {
                return JsonAnswer(200, {{"live", true}});
              });
  router->Add(
      "GET", "/v2/health/ready",
      [models](const HttpRequest&, const PathParams&) {
        absl::Status ready = Readiness(*models);
        if (!ready.ok()) {
          return JsonAnswer(
              503, {{"ready", false}, {"error", std::string(ready.message())}});
        }
        return JsonAnswer(200, {{"ready", true}});
      });
  router->Add("GET", "/v2", [](const HttpRequest&, const PathParams&) {
    return JsonAnswer(
        200, {{"name", kInferenceServerName},
              {"version", kInferenceServerVersion},
              {"extensions", ordered_json::array({"binary_tensor_data"})}});
  });

  // Predicts shadow copies at idle priority; shared by the handlers, so it
  // goes (dropping what is queued) with the router and its other owners.
  std::shared_ptr<ShadowRunner> runner =
      shadow_runner != nullptr ? std::move(shadow_runner)
                               : std::make_shared<ShadowRunner>();
  router->AddAsync("POST", "/v1/apps/{app}/predict",
                   [models, clock, metrics, guard, observer, runner](
                       const HttpRequest& request, const PathParams& params,
                       HttpResponder respond) {
                     if (guard) {
                       if (auto refusal = guard(params.at("app"), request)) {
                         return respond(*std::move(refusal));
                       }
                     }
                     Predict(*models, clock, metrics, observer, runner.get(),
                             request, params, std::move(respond));
                   });

  auto metadata = [models](const HttpRequest&, const PathParams& params) {
    absl::StatusOr<ServableHandle> handle = LookUp(*models, params);
    if (!handle.ok()) return HttpResponse::Error(handle.status());
    return ModelMetadata(params.at("app"), *handle);
  };
  router->Add("GET", "/v2/models/{app}", metadata);
  router->Add("GET", "/v2/models/{app}/versions/{version}", metadata);

  auto ready = [models](const HttpRequest&, const PathParams& params) {
    return ModelReady(*models, params);
  };
  router->Add("GET", "/v2/models/{app}/ready", ready);
  router->Add("GET", "/v2/models/{app}/versions/{version}/ready", ready);

  auto infer = [models, clock, metrics, guard, observer, runner](
                   const HttpRequest& request, const PathParams& params,
                   HttpResponder respond) {
    if (guard) {
      if (auto refusal = guard(params.at("app"), request)) {
        return respond(*std::move(refusal));
      }
    }
    Infer(*models, clock, metrics, observer, runner.get(), request, params,
          std::move(respond));
  };
  router->AddAsync("POST", "/v2/models/{app}/infer", infer);
  router->AddAsync("POST", "/v2/models/{app}/versions/{version}/infer", infer);
}

}  // namespace slipway
