#include "cli/table.h"

#include <algorithm>
#include <iostream>

namespace slipway {

std::string FormatTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows,
                        const std::string& indent) {
  std::vector<size_t> widths(header.size());
  for (size_t i = 0; i < header.size(); ++i) widths[i] = header[i].size();
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  std::string out;
  auto add_row = [&](const std::vector<std::string>& row) {
    out += indent;
    for (size_t i = 0; i < row.size(); ++i) {
      out += row[i];
      if (i + 1 < row.size() && i < widths.size()) {
        out += std::string(widths[i] - row[i].size() + 2, ' ');
      }
    }
    out += "\n";
  };
  add_row(header);
  for (const auto& row : rows) add_row(row);
  return out;
}

void PrintTable(const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows) {
  std::cout << FormatTable(header, rows);
}

}  // namespace slipway
