// The story of an app, told from its audit records: one entry per event
// (a spec applied, a run started or finished, a version registered or
// evaluated against the champion, an alias moved, an approval asked for or decided, an alert fired or
// resolved), each with a one-line summary that carries the numbers behind
// it ("v3 registered by run run-...: auc=0.8396 accuracy=0.7633 on 600 test
// rows"; "alert accuracy-low firing: kpi.accuracy = 0.48 (below 0.65),
// fires kpi_decay"). `slipway history APP` and GET
// /api/v1/apps/{app}/history show it.
//
// Thread safety: pure functions.
#ifndef SLIPWAY_AUDIT_TIMELINE_H_
#define SLIPWAY_AUDIT_TIMELINE_H_

#include <cstdint>
#include <string>

#include "nlohmann/json.hpp"
#include "store/store.h"

namespace slipway {

struct TimelineEntry {
  int64_t seq = 0;  // the audit record's
  int64_t at = 0;   // unix micros
  std::string actor;
  std::string action;  // the audit action: "alert.fire", "alias.move", ...
  std::string object;
  std::string summary;

  // {"seq", "at": RFC 3339, "actor", "action", "object", "summary"}
  nlohmann::json ToJson() const;
};

// The entry of one audit record. A record whose after/before JSON lacks a
// field the summary would show is still summarized, without it.
TimelineEntry ToTimelineEntry(const AuditRecord& record);

}  // namespace slipway

#endif  // SLIPWAY_AUDIT_TIMELINE_H_
