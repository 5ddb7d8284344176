// `slipway gen`: writes a deterministic churn-like CSV stream with scheduled
// covariate shift and concept drift (data/drift_stream.h), for tests, the
// demo and monitoring scenarios. It runs locally; no server is involved.
// With --out the file appears complete or not at all (written beside it and
// renamed); without it the rows go to standard output.
#ifndef SLIPWAY_CLI_GEN_H_
#define SLIPWAY_CLI_GEN_H_

#include <cstdint>
#include <string>

namespace slipway {

struct GenFlags {
  int64_t rows = 1000;
  int64_t seed = 1;
  int64_t start = 0;
  int64_t covariate_shift_at = -1;
  std::string shift = "income,region";  // comma-separated feature names
  int64_t concept_drift_at = -1;
  double missing = 0.02;
  bool no_label = false;
  int extra_numeric = 0;
  std::string out;  // empty: standard output
};

// 0 when the rows were written; 2 for bad flags, with a message naming the
// flag and the fix ("--shift: unknown feature 'incme'; choose from age,
// income, ..."); 1 when writing failed.
int GenCommand(const GenFlags& flags);

}  // namespace slipway

#endif  // SLIPWAY_CLI_GEN_H_
