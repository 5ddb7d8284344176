// SHA-256, for content addresses (artifacts) and data fingerprints (the
// bytes of an input as it was read). Backed by OpenSSL.
// Thread safety: a Sha256 object is used by one thread at a time.
#ifndef SLIPWAY_CORE_HASH_H_
#define SLIPWAY_CORE_HASH_H_

#include <memory>
#include <string>
#include <string_view>

namespace slipway {

// Incremental SHA-256: Update() any number of times, then HexDigest() once.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(std::string_view data);
  // 64 lowercase hex characters: the hash of everything passed to Update so
  // far. Updating afterwards continues the same stream.
  std::string HexDigest() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// SHA-256 of `data` as 64 lowercase hex characters.
std::string Sha256Hex(std::string_view data);

// True when `s` is 64 lowercase hex characters.
bool IsSha256Hex(std::string_view s);

}  // namespace slipway

#endif  // SLIPWAY_CORE_HASH_H_
