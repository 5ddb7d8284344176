// Fast paths of the data plane's JSON: request bodies read with simdjson
// straight into the row-major float buffer a Model takes, and answers'
// numbers and strings appended to one string, so that neither builds an
// nlohmann DOM per request (profiled: parsing 1024-row bodies through that
// DOM cost several times XGBoost's own prediction time).
//
// The readers accept only well-formed requests: on anything unusual (a
// syntax error, a wrong type, an unknown or repeated feature, a categorical
// value given as a number, a non-string OIP request id, ...) they return
// false and leave their outputs unspecified, and the caller reads the body
// again through its complete nlohmann path, which produces the exact answer
// (the error message, or the encoding of the unusual but valid request). So
// both paths accept the same requests, encode them to the same floats and
// the full path alone words every error.
//
// Thread safety: the readers use one simdjson parser per thread (kept
// between requests so its buffers are reused); every function may be
// called concurrently.
#ifndef SLIPWAY_SERVING_FAST_JSON_H_
#define SLIPWAY_SERVING_FAST_JSON_H_

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "models/features.h"
#include "models/signature.h"

namespace slipway {

// A /v1 predict body, {"records": [...]} or {"columns": [...], "data":
// [[...]]}, encoded into `values` (num_rows x features, NaN = missing).
// False: use the full path (see above).
bool FastEncodePredictJson(const Signature& signature, std::string_view body,
                           std::vector<float>* values, size_t* num_rows,
                           EncodeStats* stats);

// An OIP v2 infer body. `id` is the request's "id" when it has one (only a
// string id takes the fast path); `outputs` the requested output names in
// request order (empty when the request names none). False: use the full
// path.
bool FastEncodeInferJson(const Signature& signature, std::string_view body,
                         std::vector<float>* values, size_t* num_rows,
                         EncodeStats* stats, std::optional<std::string>* id,
                         std::vector<std::string>* outputs);

// Appends `value` as a JSON number exactly as nlohmann::json::dump writes a
// double: text that reads back as the same double, ".0" added to integral
// values, null for NaN and infinities.
void AppendJsonDouble(double value, std::string* out);

// Appends `text` as a JSON string, byte for byte what AppendJsonString
// (core/json.h) appends. Text that needs no escaping (printable ASCII other
// than '"' and '\\', as labels, ids and names are) is copied between quotes
// without AppendJsonString's round trip through an nlohmann value, which
// costs several allocations; anything else goes through AppendJsonString.
void FastAppendJsonString(std::string_view text, std::string* out);

}  // namespace slipway

#endif  // SLIPWAY_SERVING_FAST_JSON_H_
