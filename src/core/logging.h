// Structured logging on spdlog. One process-wide logger writing to stderr
// (stdout is kept for program output such as the "listening on" line).
// Messages are key=value pairs after a short event name:
//   LogInfo("model.loaded", {{"app", app}, {"version", "7"}});
// Thread safety: safe for concurrent use.
#ifndef SLIPWAY_CORE_LOGGING_H_
#define SLIPWAY_CORE_LOGGING_H_

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace slipway {

enum class LogLevel { kDebug, kInfo, kWarning, kError, kOff };

// Sets the minimum level written; the default is kInfo (or SLIPWAY_LOG_LEVEL:
// debug, info, warning, error, off).
void SetLogLevel(LogLevel level);

using LogField = std::pair<std::string_view, std::string_view>;

void LogDebug(std::string_view event,
              std::initializer_list<LogField> fields = {});
void LogInfo(std::string_view event,
             std::initializer_list<LogField> fields = {});
void LogWarning(std::string_view event,
                std::initializer_list<LogField> fields = {});
void LogError(std::string_view event,
              std::initializer_list<LogField> fields = {});

}  // namespace slipway

#endif  // SLIPWAY_CORE_LOGGING_H_
