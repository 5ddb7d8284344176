#include "serving/fast_json.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "core/json.h"
#include "nlohmann/json.hpp"
#include "simdjson.h"

namespace slipway {
namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

constexpr float kMissing = std::numeric_limits<float>::quiet_NaN();

// The calling thread's parser: its buffers grow to the largest body seen
// and are reused, so a request costs no parser allocation.
simdjson::dom::parser& ThreadParser() {
  thread_local simdjson::dom::parser parser;
  return parser;
}

// Parses `body` (copied into simdjson's padded buffer) with this thread's
// parser; false on any error (the full path words it).
bool Parse(std::string_view body, element* root) {
  return !ThreadParser()
              .parse(body.data(), body.size(), /*realloc_if_needed=*/true)
              .get(*root);
}

// EncodeValue of inference.cc for the values it accepts without an error,
// except categorical values given as numbers or booleans (their text form
// is the full path's business). False: use the full path.
bool EncodeValue(const Signature& signature, int feature, element value,
                 float* out, EncodeStats* stats) {
  const FeatureSpec& spec = signature.features()[feature];
  const element_type type = value.type();
  if (type == element_type::NULL_VALUE) {
    *out = kMissing;
    ++stats->missing_values;
    return true;
  }
  if (spec.is_categorical()) {
    if (type != element_type::STRING) return false;
    *out = EncodeCategory(signature, feature, value.get_string().value_unsafe(),
                          stats);
    return true;
  }
  if (type == element_type::BOOL) {
    if (spec.type != DataType::kBool) return false;
    *out = value.get_bool().value_unsafe() ? 1.0f : 0.0f;
    return true;
  }
  double number = 0;
  if (value.get_double().get(number)) return false;  // not a number
  if (spec.type == DataType::kBool) {
    if (number != 0.0 && number != 1.0) return false;
  }
  *out = static_cast<float>(number);
  return true;
}

// The feature `name` is, trying `guess` first: clients send every record's
// keys in the same order, so the previous record's feature at this position
// usually matches without a hash lookup, and the first record's keys
// usually come in the signature's order (the training table's columns).
int FeatureOf(const Signature& signature, std::string_view name, int guess) {
  const std::vector<FeatureSpec>& features = signature.features();
  if (guess >= 0 && static_cast<size_t>(guess) < features.size() &&
      features[guess].name == name) {
    return guess;
  }
  return signature.FeatureIndex(name);
}

// {"records": [{feature: value, ...}, ...]}: every record names every
// feature exactly once.
bool EncodeRecords(const Signature& signature, element records_value,
                   std::vector<float>* values, size_t* num_rows,
                   EncodeStats* stats) {
  array records;
  if (records_value.get_array().get(records)) return false;
  const size_t count = records.size();
  if (count == 0) return false;
  const size_t width = signature.features().size();
  values->assign(count * width, kMissing);
  *num_rows = count;
  // On the stack for up to 64 features.
  absl::InlinedVector<size_t, 64> last_seen(width, SIZE_MAX);
  // Features by key position in the last record.
  absl::InlinedVector<int, 64> order;
  size_t i = 0;
  for (element record_value : records) {
    object record;
    if (record_value.get_object().get(record)) return false;
    float* row = values->data() + i * width;
    size_t position = 0;
    size_t fields = 0;
    for (auto field : record) {
      const int guess = position < order.size() ? order[position]
                                                : static_cast<int>(position);
      const int feature = FeatureOf(signature, field.key, guess);
      if (feature < 0) return false;
      // A repeated key: nlohmann keeps the last value only, so the full
      // path encodes it.
      if (last_seen[feature] == i) return false;
      if (!EncodeValue(signature, feature, field.value, row + feature, stats)) {
        return false;
      }
      last_seen[feature] = i;
      if (position < order.size()) {
        order[position] = feature;
      } else {
        order.push_back(feature);
      }
      ++position;
      ++fields;
    }
    if (fields != width) return false;  // a feature is missing
    ++i;
  }
  return true;
}

// {"columns": [feature, ...], "data": [[value, ...], ...]}: every feature
// named once, every row as long as "columns".
bool EncodeColumns(const Signature& signature, element columns_value,
                   element data_value, std::vector<float>* values,
                   size_t* num_rows, EncodeStats* stats) {
  array columns;
  array data;
  if (columns_value.get_array().get(columns)) return false;
  if (data_value.get_array().get(data)) return false;
  const size_t width = signature.features().size();
  std::vector<int> feature_of_column;
  std::vector<bool> present(width, false);
  for (element column : columns) {
    std::string_view name;
    if (column.get_string().get(name)) return false;
    const int feature = signature.FeatureIndex(name);
    if (feature < 0 || present[feature]) return false;
    present[feature] = true;
    feature_of_column.push_back(feature);
  }
  if (feature_of_column.size() != width) return false;
  const size_t count = data.size();
  if (count == 0) return false;
  values->assign(count * width, kMissing);
  *num_rows = count;
  size_t i = 0;
  for (element row_value : data) {
    array row;
    if (row_value.get_array().get(row)) return false;
    float* out = values->data() + i * width;
    size_t c = 0;
    for (element value : row) {
      if (c == width) return false;
      const int feature = feature_of_column[c];
      if (!EncodeValue(signature, feature, value, out + feature, stats)) {
        return false;
      }
      ++c;
    }
    if (c != width) return false;
    ++i;
  }
  return true;
}

// The OIP datatypes inference.cc accepts, by what their data holds.
enum class Kind { kNumber, kBool, kBytes, kUnknown };

Kind KindOf(std::string_view datatype) {
  if (datatype == "BOOL") return Kind::kBool;
  if (datatype == "BYTES") return Kind::kBytes;
  for (std::string_view number :
       {"FP32", "FP64", "INT64", "INT32", "INT16", "INT8", "UINT8", "UINT16",
        "UINT32", "UINT64", "FP16"}) {
    if (datatype == number) return Kind::kNumber;
  }
  return Kind::kUnknown;
}

bool Fits(Kind kind, element_type type) {
  switch (type) {
    case element_type::NULL_VALUE:
      return true;
    case element_type::INT64:
    case element_type::UINT64:
    case element_type::DOUBLE:
      return kind == Kind::kNumber;
    case element_type::BOOL:
      return kind == Kind::kBool;
    case element_type::STRING:
      return kind == Kind::kBytes;
    default:
      return false;
  }
}

// A non-negative integer shape dimension.
bool Dimension(element dim, int64_t* out) {
  if (dim.type() == element_type::INT64) {
    *out = dim.get_int64().value_unsafe();
    return *out >= 0;
  }
  return false;
}

// One input tensor of an infer body, checked as inference.cc's
// ReadInputTensor does; `data` is its values, flattened one level.
struct Tensor {
  int feature = -1;
  std::vector<element> data;
};

bool ReadTensor(const Signature& signature, element tensor_value,
                std::vector<bool>* present, int64_t* num_rows, bool first,
                Tensor* tensor) {
  object fields;
  if (tensor_value.get_object().get(fields)) return false;
  std::string_view name;
  std::string_view datatype;
  element shape_value;
  element data_value;
  int seen_name = 0, seen_datatype = 0, seen_shape = 0, seen_data = 0;
  for (auto field : fields) {
    if (field.key == "name") {
      if (++seen_name > 1 || field.value.get_string().get(name)) return false;
    } else if (field.key == "datatype") {
      if (++seen_datatype > 1 || field.value.get_string().get(datatype)) {
        return false;
      }
    } else if (field.key == "shape") {
      if (++seen_shape > 1) return false;
      shape_value = field.value;
    } else if (field.key == "data") {
      if (++seen_data > 1) return false;
      data_value = field.value;
    }
  }
  if (seen_name != 1 || seen_datatype != 1 || seen_shape != 1 ||
      seen_data != 1) {
    return false;
  }
  tensor->feature = signature.FeatureIndex(name);
  if (tensor->feature < 0 || (*present)[tensor->feature]) return false;
  (*present)[tensor->feature] = true;
  const FeatureSpec& spec = signature.features()[tensor->feature];
  const Kind kind = KindOf(datatype);
  if (kind == Kind::kUnknown) return false;
  if (!spec.is_categorical() &&
      (kind == Kind::kBytes ||
       (kind == Kind::kBool && spec.type != DataType::kBool))) {
    return false;
  }
  array shape;
  if (shape_value.get_array().get(shape)) return false;
  const size_t dims = shape.size();
  if (dims == 0 || dims > 2) return false;
  int64_t rows = 0;
  int64_t second = 1;
  if (!Dimension(shape.at(0).value_unsafe(), &rows)) return false;
  if (dims == 2 &&
      (!Dimension(shape.at(1).value_unsafe(), &second) || second != 1)) {
    return false;
  }
  if (first) {
    *num_rows = rows;
  } else if (rows != *num_rows) {
    return false;
  }
  array data;
  if (data_value.get_array().get(data)) return false;
  tensor->data.reserve(static_cast<size_t>(rows));
  for (element value : data) {
    if (value.type() != element_type::ARRAY) {
      tensor->data.push_back(value);
      continue;
    }
    array nested;
    if (value.get_array().get(nested)) return false;
    for (element inner : nested) {
      if (inner.type() == element_type::ARRAY) return false;
      tensor->data.push_back(inner);
    }
  }
  if (static_cast<int64_t>(tensor->data.size()) != rows) return false;
  for (element value : tensor->data) {
    if (!Fits(kind, value.type())) return false;
  }
  return true;
}

// The output names the signature has (inference.cc's OutputNames).
bool KnownOutput(const Signature& signature, std::string_view name) {
  if (signature.is_classification()) {
    return name == "probabilities" || name == "label";
  }
  return name == "predictions";
}

}  // namespace

bool FastEncodePredictJson(const Signature& signature, std::string_view body,
                           std::vector<float>* values, size_t* num_rows,
                           EncodeStats* stats) {
  element root;
  if (!Parse(body, &root)) return false;
  object fields;
  if (root.get_object().get(fields)) return false;
  element records, columns, data;
  int seen_records = 0, seen_columns = 0, seen_data = 0;
  for (auto field : fields) {
    // A repeated key: nlohmann keeps the last one; the full path reads it.
    if (field.key == "records") {
      if (++seen_records > 1) return false;
      records = field.value;
    } else if (field.key == "columns") {
      if (++seen_columns > 1) return false;
      columns = field.value;
    } else if (field.key == "data") {
      if (++seen_data > 1) return false;
      data = field.value;
    }
  }
  if (seen_records == 1) {
    return EncodeRecords(signature, records, values, num_rows, stats);
  }
  if (seen_columns == 1 && seen_data == 1) {
    return EncodeColumns(signature, columns, data, values, num_rows, stats);
  }
  return false;
}

bool FastEncodeInferJson(const Signature& signature, std::string_view body,
                         std::vector<float>* values, size_t* num_rows,
                         EncodeStats* stats, std::optional<std::string>* id,
                         std::vector<std::string>* outputs) {
  element root;
  if (!Parse(body, &root)) return false;
  object fields;
  if (root.get_object().get(fields)) return false;
  element inputs_value;
  element outputs_value;
  int seen_id = 0, seen_inputs = 0, seen_outputs = 0;
  for (auto field : fields) {
    if (field.key == "id") {
      std::string_view text;
      if (++seen_id > 1 || field.value.get_string().get(text)) return false;
      *id = std::string(text);
    } else if (field.key == "inputs") {
      if (++seen_inputs > 1) return false;
      inputs_value = field.value;
    } else if (field.key == "outputs") {
      if (++seen_outputs > 1) return false;
      outputs_value = field.value;
    }
  }
  array inputs;
  if (seen_inputs != 1 || inputs_value.get_array().get(inputs)) return false;
  const size_t width = signature.features().size();
  std::vector<bool> present(width, false);
  std::vector<Tensor> tensors;
  tensors.reserve(width);
  int64_t rows = 0;
  for (element tensor_value : inputs) {
    Tensor tensor;
    if (!ReadTensor(signature, tensor_value, &present, &rows, tensors.empty(),
                    &tensor)) {
      return false;
    }
    tensors.push_back(std::move(tensor));
  }
  if (tensors.size() != width || rows == 0) return false;

  if (seen_outputs == 1) {
    array wanted;
    if (outputs_value.get_array().get(wanted)) return false;
    for (element output : wanted) {
      object output_fields;
      if (output.get_object().get(output_fields)) return false;
      std::string_view name;
      int seen_name = 0;
      for (auto field : output_fields) {
        if (field.key != "name") continue;
        if (++seen_name > 1 || field.value.get_string().get(name)) return false;
      }
      if (seen_name != 1 || !KnownOutput(signature, name)) return false;
      for (const std::string& earlier : *outputs) {
        if (earlier == name) return false;
      }
      outputs->emplace_back(name);
    }
  }

  *num_rows = static_cast<size_t>(rows);
  values->assign(*num_rows * width, kMissing);
  for (const Tensor& tensor : tensors) {
    float* out = values->data() + tensor.feature;
    for (element value : tensor.data) {
      if (!EncodeValue(signature, tensor.feature, value, out, stats)) {
        return false;
      }
      out += width;
    }
  }
  return true;
}

void AppendJsonDouble(double value, std::string* out) {
  if (!std::isfinite(value)) {
    out->append("null");
    return;
  }
  // nlohmann's own formatter (what dump calls for a double): its grisu2
  // digits are not always the shortest (6.5578197785247744e+16 where
  // std::to_chars gives 6.557819778524774e+16), and answers stay byte for
  // byte what they were.
  char buffer[64];
  char* end =
      nlohmann::detail::to_chars(buffer, buffer + sizeof(buffer), value);
  out->append(buffer, static_cast<size_t>(end - buffer));
}

void FastAppendJsonString(std::string_view text, std::string* out) {
  for (char c : text) {
    if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') {
      AppendJsonString(text, out);
      return;
    }
  }
  out->push_back('"');
  out->append(text);
  out->push_back('"');
}

}  // namespace slipway
