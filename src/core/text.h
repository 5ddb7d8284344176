// Small text helpers for messages.
// Thread safety: pure functions.
#ifndef SLIPWAY_CORE_TEXT_H_
#define SLIPWAY_CORE_TEXT_H_

#include <string>
#include <vector>

namespace slipway {

// "'a', 'b', 'c'": names quoted and joined for an error message.
std::string QuotedList(const std::vector<std::string>& names);

}  // namespace slipway

#endif  // SLIPWAY_CORE_TEXT_H_
