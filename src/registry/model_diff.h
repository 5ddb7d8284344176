// DiffModelVersions: what changed between two model versions of an app, for
// `slipway models diff APP V1 V2` and GET .../models/{v1}/diff/{v2}.
//
// A pure function of the two stored records (their params, metrics and
// signature JSON); it reads nothing else. Unparsable stored JSON counts as
// empty, so a diff always answers.
//
// The answer:
//   {"app", "from": V1, "to": V2,
//    "params":  [{"name", "from", "to"}]   changed, added (from null) and
//                                          removed (to null), by name
//    "metrics": [{"name", "from", "to", "difference"}]  every metric of
//               either; difference = to - from when both are numbers, else
//               null
//    "signature": {"task", "target", "class_labels": {"from", "to"} or null
//                  when equal, "features_added": [{"name", "type"}],
//                  "features_removed": [{"name", "type"}],
//                  "features_retyped": [{"name", "from", "to"}],
//                  "categories_changed": [{"name", "added", "removed",
//                  "reordered"}] (reordered: same values, new codes),
//                  "order_changed": true when the common features are in a
//                  different order}}
// Thread safety: a pure function.
#ifndef SLIPWAY_REGISTRY_MODEL_DIFF_H_
#define SLIPWAY_REGISTRY_MODEL_DIFF_H_

#include "nlohmann/json.hpp"
#include "store/store.h"

namespace slipway {

nlohmann::json DiffModelVersions(const ModelVersionRecord& from,
                                 const ModelVersionRecord& to);

}  // namespace slipway

#endif  // SLIPWAY_REGISTRY_MODEL_DIFF_H_
