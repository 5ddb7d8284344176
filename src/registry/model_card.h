// RenderModelCard: the MODEL_CARD.md `slipway models export` writes beside
// the model file: the use case (from the app spec's use_case block), the
// data it was trained on (each source with fingerprint and rows), metrics,
// params, lineage (run, app revision, code hash, parent version, runtime,
// created by), the signature as a table, the aliases pointing at it and
// the approval requests that would move an alias to it, with their
// decisions.
//
// A pure function of its input; stored JSON that does not parse is shown
// as text. Markdown table cells have '|' and newlines escaped.
// Thread safety: a pure function.
#ifndef SLIPWAY_REGISTRY_MODEL_CARD_H_
#define SLIPWAY_REGISTRY_MODEL_CARD_H_

#include <string>
#include <utility>
#include <vector>

#include "store/store.h"

namespace slipway {

struct ModelCardInput {
  ModelVersionRecord version;
  // Every alias of the app; the card lists those naming `version`.
  std::vector<AliasRecord> aliases;
  // The app spec's use_case block as (field, value) pairs in spec order;
  // empty when the spec has none.
  std::vector<std::pair<std::string, std::string>> use_case;
  // Approval requests of the app, any state; the card lists the promotions
  // whose moves name `version`.
  std::vector<ApprovalRecord> approvals;
};

std::string RenderModelCard(const ModelCardInput& input);

}  // namespace slipway

#endif  // SLIPWAY_REGISTRY_MODEL_CARD_H_
