#include "core/json.h"

#include "nlohmann/json.hpp"

namespace slipway {

void AppendJsonString(std::string_view text, std::string* out) {
  out->append(
      nlohmann::json(std::string(text))
          .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

}  // namespace slipway
