#include "api/handlers.h"

#include <charconv>

#include "core/clock.h"

namespace slipway {

using nlohmann::json;

HttpResponse JsonResponse(int status, const json& body) {
  return HttpResponse::Json(
      status, body.dump(-1, ' ', false, json::error_handler_t::replace));
}

json StoredJson(const std::string& text) {
  if (text.empty()) return json::object();
  json parsed = json::parse(text, nullptr, false);
  return parsed.is_discarded() ? json(text) : parsed;
}

json Timestamp(int64_t micros) {
  return micros == 0 ? json(nullptr) : json(FormatTimestamp(micros));
}

absl::StatusOr<uint64_t> QueryNumber(const HttpRequest& request,
                                     const std::string& name,
                                     uint64_t fallback) {
  auto it = request.query.find(name);
  if (it == request.query.end()) return fallback;
  uint64_t value = 0;
  const std::string& text = it->second;
  auto [end, ec] =
      std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
    return absl::InvalidArgumentError("query parameter '" + name + "' is '" +
                                      text + "'; give a non-negative integer");
  }
  return value;
}

std::string QueryText(const HttpRequest& request, const std::string& name) {
  auto it = request.query.find(name);
  return it == request.query.end() ? std::string() : it->second;
}

}  // namespace slipway
