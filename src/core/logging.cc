#include "core/logging.h"

#include <cstdlib>
#include <memory>

#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace slipway {
namespace {

spdlog::logger* Logger() {
  static spdlog::logger* logger = [] {
    auto* l = new spdlog::logger(
        "slipway", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    l->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v",
                   spdlog::pattern_time_type::utc);
    l->set_level(spdlog::level::info);
    if (const char* env = std::getenv("SLIPWAY_LOG_LEVEL")) {
      l->set_level(spdlog::level::from_str(env));
    }
    return l;
  }();
  return logger;
}

bool NeedsQuotes(std::string_view value) {
  if (value.empty()) return true;
  for (char c : value) {
    if (c == ' ' || c == '"' || c == '=' || c == '\n' || c == '\t') return true;
  }
  return false;
}

void Write(spdlog::level::level_enum level, std::string_view event,
           std::initializer_list<LogField> fields) {
  spdlog::logger* logger = Logger();
  if (!logger->should_log(level)) return;
  std::string line(event);
  for (const auto& [key, value] : fields) {
    line.push_back(' ');
    line.append(key);
    line.push_back('=');
    if (!NeedsQuotes(value)) {
      line.append(value);
      continue;
    }
    line.push_back('"');
    for (char c : value) {
      if (c == '"' || c == '\\') line.push_back('\\');
      if (c == '\n') {
        line.append("\\n");
        continue;
      }
      line.push_back(c);
    }
    line.push_back('"');
  }
  logger->log(level, "{}", line);
}

}  // namespace

void SetLogLevel(LogLevel level) {
  static constexpr spdlog::level::level_enum kLevels[] = {
      spdlog::level::debug, spdlog::level::info, spdlog::level::warn,
      spdlog::level::err, spdlog::level::off};
  Logger()->set_level(kLevels[static_cast<int>(level)]);
}

void LogDebug(std::string_view event, std::initializer_list<LogField> fields) {
  Write(spdlog::level::debug, event, fields);
}
void LogInfo(std::string_view event, std::initializer_list<LogField> fields) {
  Write(spdlog::level::info, event, fields);
}
void LogWarning(std::string_view event,
                std::initializer_list<LogField> fields) {
  Write(spdlog::level::warn, event, fields);
}
void LogError(std::string_view event, std::initializer_list<LogField> fields) {
  Write(spdlog::level::err, event, fields);
}

}  // namespace slipway
