#include "store/store.h"

#include <string_view>

#include "core/hash.h"

namespace slipway {
namespace {

// "<length>:<bytes>;" so that field boundaries are part of what is hashed.
void AddField(Sha256& hash, std::string_view field) {
  hash.Update(std::to_string(field.size()));
  hash.Update(":");
  hash.Update(field);
  hash.Update(";");
}

}  // namespace

std::string AuditRecordHash(const AuditRecord& record) {
  Sha256 hash;
  AddField(hash, "slipway-audit-v1");
  AddField(hash, std::to_string(record.seq));
  AddField(hash, std::to_string(record.at));
  AddField(hash, record.actor);
  AddField(hash, record.action);
  AddField(hash, record.app);
  AddField(hash, record.object);
  AddField(hash, record.before_json);
  AddField(hash, record.after_json);
  AddField(hash, record.prev_hash);
  return hash.HexDigest();
}

}  // namespace slipway
