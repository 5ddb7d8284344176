#include "cli/gen.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <limits>
#include <memory>
#include <string_view>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/filesystem.h"
#include "core/status.h"
#include "data/connector.h"
#include "data/drift_stream.h"

namespace slipway {
namespace {

absl::Status BadFlag(const std::string& flag, const std::string& problem) {
  return absl::InvalidArgumentError(absl::StrCat(flag, ": ", problem));
}

absl::Status CheckRow(const std::string& flag, int64_t row) {
  if (row >= -1) return absl::OkStatus();
  return BadFlag(flag, absl::StrCat("must be a row (0 or more) or -1 for "
                                    "none, got ",
                                    row));
}

absl::Status WriteStdout(std::string_view text) {
  if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size()) {
    return absl::UnavailableError(absl::StrCat(
        "gen: cannot write to standard output: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status Write(const DriftStreamOptions& options, const std::string& out) {
  if (out.empty()) {
    RETURN_IF_ERROR(WriteDriftCsv(options, WriteStdout));
    if (std::fflush(stdout) != 0) {
      return absl::UnavailableError(absl::StrCat(
          "gen: cannot write to standard output: ", std::strerror(errno)));
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::unique_ptr<StagedFile>> created =
      StagedFile::Create(LocalFilesystem(), out, "gen --out " + out);
  if (absl::IsNotFound(created.status())) {
    return absl::NotFoundError(absl::StrCat(created.status().message(),
                                            "; create the directory first"));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<StagedFile> file, std::move(created));
  RETURN_IF_ERROR(WriteDriftCsv(
      options, [&](std::string_view text) { return file->Append(text); }));
  return file->Commit();
}

// The stream the flags ask for; InvalidArgument naming the flag and the fix.
absl::StatusOr<DriftStreamOptions> DriftOptionsFromFlags(
    const GenFlags& flags) {
  if (flags.rows < 0) {
    return BadFlag("--rows",
                   absl::StrCat("must be 0 or more, got ", flags.rows));
  }
  if (flags.seed < 0) {
    return BadFlag("--seed",
                   absl::StrCat("must be 0 or more, got ", flags.seed));
  }
  if (flags.start < 0) {
    return BadFlag("--start",
                   absl::StrCat("must be 0 or more, got ", flags.start));
  }
  RETURN_IF_ERROR(CheckRow("--covariate-shift-at", flags.covariate_shift_at));
  RETURN_IF_ERROR(CheckRow("--concept-drift-at", flags.concept_drift_at));
  if (!(flags.missing >= 0 && flags.missing < 1)) {
    return BadFlag("--missing", absl::StrCat("must be a fraction in [0, 1), "
                                             "got ",
                                             flags.missing));
  }
  if (flags.extra_numeric < 0 || flags.extra_numeric > 10000) {
    return BadFlag("--extra-numeric",
                   absl::StrCat("must be 0..10000, got ", flags.extra_numeric));
  }

  DriftStreamOptions options;
  options.seed = static_cast<uint64_t>(flags.seed);
  options.start = flags.start;
  options.rows = flags.rows;
  options.covariate_shift_at = flags.covariate_shift_at;
  options.concept_drift_at = flags.concept_drift_at;
  options.missing_fraction = flags.missing;
  options.with_label = !flags.no_label;
  options.extra_numeric = flags.extra_numeric;
  options.shifted_features.clear();
  for (absl::string_view name :
       absl::StrSplit(flags.shift, ',', absl::SkipWhitespace())) {
    const absl::string_view trimmed = absl::StripAsciiWhitespace(name);
    options.shifted_features.emplace_back(trimmed.data(), trimmed.size());
  }
  RETURN_IF_ERROR(
      CheckShiftedFeatures(options.shifted_features, flags.extra_numeric),
      "--shift");
  if (options.covariate_shift_at >= 0 && options.shifted_features.empty()) {
    return BadFlag("--shift",
                   "names no feature while --covariate-shift-at "
                   "is set; name one, e.g. --shift income");
  }
  if (options.rows > std::numeric_limits<int64_t>::max() - options.start) {
    return BadFlag("--rows",
                   "--start plus --rows overflows a 64-bit row "
                   "index; lower one of them");
  }
  RETURN_IF_ERROR(ValidateDriftStreamOptions(options));
  return options;
}

}  // namespace

int GenCommand(const GenFlags& flags) {
  absl::StatusOr<DriftStreamOptions> options = DriftOptionsFromFlags(flags);
  if (!options.ok()) {
    std::cerr << "error: " << options.status().message() << "\n";
    return 2;
  }
  const absl::Status written = Write(*options, flags.out);
  if (!written.ok()) {
    std::cerr << "error: " << written.message() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace slipway
