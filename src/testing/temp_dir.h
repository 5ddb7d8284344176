// A fresh directory under $TMPDIR (or /tmp) for one test, removed with
// everything in it when the object goes out of scope.
#ifndef SLIPWAY_TESTING_TEMP_DIR_H_
#define SLIPWAY_TESTING_TEMP_DIR_H_

#include <string>

namespace slipway {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace slipway

#endif  // SLIPWAY_TESTING_TEMP_DIR_H_
