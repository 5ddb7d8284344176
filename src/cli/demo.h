// `slipway demo`: the whole lifecycle on a real data set that a Debian
// package ships. It starts `slipway server` as a child process on a free
// port over a fresh data directory, applies the example app, trains,
// registers and promotes version 1, sends predictions over HTTP, and prints
// the metrics, the version, sample rows with their predictions and true
// labels, drift and alerts on replayed traffic, then the improvement loop
// on a simulated clock (demo_loop.h), the URL and a curl line. With --serve the server keeps running in
// the foreground until interrupted.
#ifndef SLIPWAY_CLI_DEMO_H_
#define SLIPWAY_CLI_DEMO_H_

#include <string>

namespace slipway {

struct DemoFlags {
  bool serve = false;
  std::string data_dir;  // empty: a new directory under $TMPDIR or /tmp
  std::string example;   // empty: examples/breast-cancer/slipway.yaml
};

// `self` is argv[0], used to find the examples next to the binary.
int DemoCommand(const DemoFlags& flags, const std::string& self);

}  // namespace slipway

#endif  // SLIPWAY_CLI_DEMO_H_
