// JSON text helpers shared by the writers that build JSON by hand (the
// data plane's answers, JSON Lines sinks) instead of through a DOM.
#ifndef SLIPWAY_CORE_JSON_H_
#define SLIPWAY_CORE_JSON_H_

#include <string>
#include <string_view>

namespace slipway {

// Appends `text` as a JSON string (quoted and escaped as nlohmann's dump
// does; invalid UTF-8 replaced with U+FFFD).
void AppendJsonString(std::string_view text, std::string* out);

}  // namespace slipway

#endif  // SLIPWAY_CORE_JSON_H_
