// Plain-text tables for the commands' output: columns padded to their
// widest cell, two spaces apart, the last column unpadded.
#ifndef SLIPWAY_CLI_TABLE_H_
#define SLIPWAY_CLI_TABLE_H_

#include <string>
#include <vector>

namespace slipway {

// The header line and one line per row, each prefixed by `indent`. A row
// may have fewer cells than the header.
std::string FormatTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows,
                        const std::string& indent = "");

// FormatTable written to standard output.
void PrintTable(const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows);

}  // namespace slipway

#endif  // SLIPWAY_CLI_TABLE_H_
