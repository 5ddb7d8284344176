// IoRound: lets code running on an HTTP I/O thread defer work to the end of
// the current pass of that thread's event loop, after the other requests
// that became ready in the same pass have been read and handled.
//
// The dynamic batcher uses it to batch without a thread hop: requests read
// in one pass queue up, and one deferred call predicts them together on the
// I/O thread (batcher.h). The HTTP server installs the hook on each of its
// threads (http_server.cc); on any other thread Active() is false and
// callers fall back to their own threads.
//
// Thread safety: the hook is per thread; Defer may only be called on a
// thread where Active() is true.
#ifndef SLIPWAY_SERVING_IO_ROUND_H_
#define SLIPWAY_SERVING_IO_ROUND_H_

#include <functional>

namespace slipway {

class IoRound {
 public:
  using Hook = std::function<void(std::function<void()>)>;

  // True on a thread whose event loop accepts deferred work.
  static bool Active();
  // Runs `work` on this thread once the work already queued in this pass
  // of its event loop has run. REQUIRES: Active().
  static void Defer(std::function<void()> work);

  // Installs `hook` for the calling thread for the scope's lifetime. `hook`
  // must queue its argument behind the work its loop already has.
  class Scope {
   public:
    explicit Scope(Hook hook);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    Hook hook_;
    const Hook* previous_;
  };
};

}  // namespace slipway

#endif  // SLIPWAY_SERVING_IO_ROUND_H_
