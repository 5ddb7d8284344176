#include "core/prometheus_text.h"

#include <charconv>
#include <cmath>

namespace slipway {

std::string PrometheusNumber(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[64];
  std::to_chars_result scientific_end = std::to_chars(
      buffer, buffer + sizeof(buffer), value, std::chars_format::scientific);
  std::string scientific(buffer, scientific_end.ptr);
  // "d.ddde-05": the exponent follows the 'e', with a sign.
  size_t e = scientific.find('e');
  int exponent = std::stoi(scientific.substr(e + 1));
  if (exponent < -4 || exponent >= 6) return scientific;
  std::to_chars_result fixed_end = std::to_chars(
      buffer, buffer + sizeof(buffer), value, std::chars_format::fixed);
  return std::string(buffer, fixed_end.ptr);
}

std::string PrometheusLabel(std::string_view name, std::string_view value) {
  std::string label(name);
  label += "=\"";
  for (char c : value) {
    switch (c) {
      case '\\':
        label += "\\\\";
        break;
      case '"':
        label += "\\\"";
        break;
      case '\n':
        label += "\\n";
        break;
      default:
        label += c;
    }
  }
  label += '"';
  return label;
}

std::string PrometheusFamilyHeader(std::string_view name, std::string_view help,
                                   std::string_view type) {
  std::string header = "# HELP ";
  header += name;
  header += ' ';
  header += help;
  header += "\n# TYPE ";
  header += name;
  header += ' ';
  header += type;
  header += '\n';
  return header;
}

void AppendPrometheusSample(std::string* out, std::string_view name,
                            std::string_view labels, std::string_view value) {
  *out += name;
  if (!labels.empty()) {
    *out += '{';
    *out += labels;
    *out += '}';
  }
  *out += ' ';
  *out += value;
  *out += '\n';
}

}  // namespace slipway
