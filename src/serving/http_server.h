// The HTTP/1.1 server that hosts every Slipway endpoint (data plane and
// control plane). It accepts connections, parses requests, hands each one to
// a Router and writes the answer; it knows nothing about what the handlers do.
//
// Behaviour callers can rely on:
// - keep-alive: requests on one connection are handled one after another, in
//   order, so pipelined requests are answered in the order sent; HTTP/1.0
//   requests without "Connection: keep-alive" are answered then closed.
// - limits: a body over `max_body_bytes` is answered 413, a malformed request
//   400, headers over 64 KiB 431; connections beyond `max_connections` get
//   503 and are closed. All with the JSON error body {"error": "..."}.
// - timeouts: a client gets `header_timeout_ms` to send the request line and
//   headers, `body_timeout_ms` to send the body (and to read the response);
//   an idle keep-alive connection is closed after `idle_timeout_ms`. A
//   timed-out connection is closed without an answer.
// - every response carries Content-Type, Content-Length and
//   "Server: slipway" (except 204 and 304, which must not carry a body).
//   The server owns those and Connection/Transfer-Encoding: a handler's
//   extra headers with these names, or with a line break, are dropped.
// - a handler that throws gets 500 with the JSON error body; the exception is
//   logged and the server keeps serving.
//
// Threading: an asynchronous server on an event loop run by `threads`
// threads. Handlers are called on those threads and must be safe to call
// concurrently. A synchronous handler (Router::Add) holds its thread until
// it returns; an asynchronous one (Router::AddAsync) may answer later from
// any thread through its HttpResponder, and the connection waits (holding
// no thread) until it does.
// Ownership: the Router is borrowed and must outlive the server.
// Thread safety: port() may be called from any thread; Shutdown and Wait may
// be called from any thread except one running a handler.
#ifndef SLIPWAY_SERVING_HTTP_SERVER_H_
#define SLIPWAY_SERVING_HTTP_SERVER_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "serving/http.h"

namespace slipway {

class HttpServer {
 public:
  struct Options {
    std::string host = "127.0.0.1";
    int port = 8080;  // 0 = any free port; read it back with port()
    int threads = 0;  // 0 = hardware concurrency
    size_t max_body_bytes = 64 << 20;
    int header_timeout_ms = 10000;
    int body_timeout_ms = 30000;
    int idle_timeout_ms = 60000;  // keep-alive connection between requests
    int max_connections = 1024;
  };

  // Binds host:port, starts the threads, and returns once the server accepts
  // connections. Errors name the address, e.g. "cannot listen on
  // 127.0.0.1:8080: Address already in use".
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      Options options, const Router* router);

  // Shuts down with no drain time if Shutdown was not called.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The bound port (the chosen one when Options::port was 0).
  int port() const;

  // Stops accepting, closes idle keep-alive connections, lets requests in
  // flight finish (asynchronous ones included) and answers them with
  // "Connection: close". Connections still open after `drain_timeout_ms`
  // are closed; a handler still running then, or an asynchronous request
  // not answered yet, is waited for (neither can be interrupted) but its
  // answer is dropped, so an async handler must eventually call or drop its
  // responder. Returns when every server thread has exited. A second call
  // waits for the first to finish.
  void Shutdown(int drain_timeout_ms);

  // Blocks until Shutdown has completed.
  void Wait();

 private:
  class Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

}  // namespace slipway

#endif  // SLIPWAY_SERVING_HTTP_SERVER_H_
