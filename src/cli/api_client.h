// ApiClient: the CLI's HTTP client for a Slipway server (libcurl).
// Sends its token (ClientToken: SLIPWAY_TOKEN, else the data directory's
// admin.token) as a bearer token when there is one. Non-2xx answers become a
// Status carrying the server's {"error": ...} message, with the code derived
// from the HTTP status, so commands print what the server said.
// Thread safety: one client per thread.
#ifndef SLIPWAY_CLI_API_CLIENT_H_
#define SLIPWAY_CLI_API_CLIENT_H_

#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace slipway {

struct HttpReply {
  int status = 0;
  std::string content_type;
  std::string body;
};

class ApiClient {
 public:
  // `base_url` like "http://127.0.0.1:8080" (no trailing slash needed).
  explicit ApiClient(std::string base_url, std::string token = "");

  // Raw exchange: any HTTP status is returned as a reply; only transport
  // failures ("cannot reach the Slipway server at ...") are errors.
  absl::StatusOr<HttpReply> Send(
      const std::string& method, const std::string& path,
      const std::string& body = "",
      const std::string& content_type = "application/json") const;

  // JSON exchange: a non-2xx status becomes an error with the server's
  // message; the body of a 2xx answer is parsed.
  absl::StatusOr<nlohmann::json> Get(const std::string& path) const;
  absl::StatusOr<nlohmann::json> Post(const std::string& path,
                                      const nlohmann::json& body) const;
  absl::StatusOr<nlohmann::json> Put(const std::string& path,
                                     const nlohmann::json& body) const;
  absl::StatusOr<nlohmann::json> Delete(const std::string& path) const;
  // The raw body of a GET (a model file); errors as for Get.
  absl::StatusOr<std::string> Download(const std::string& path) const;

  const std::string& base_url() const { return base_url_; }

 private:
  absl::StatusOr<nlohmann::json> Exchange(const std::string& method,
                                          const std::string& path,
                                          const std::string& body) const;

  std::string base_url_;
  std::string token_;
};

// The token the CLI sends (DESIGN.md's token rule): $SLIPWAY_TOKEN when set,
// else the first line of `data_dir`/admin.token when that file exists (the
// admin token a server writes on first start), else "" (no token).
// `data_dir` is --data-dir, else $SLIPWAY_DATA_DIR, else ./.slipway. A file
// that exists but cannot be read is an error naming it.
absl::StatusOr<std::string> ClientToken(const std::string& data_dir);

// A Status for a non-2xx reply: the message from {"error": ...} (or the raw
// body), the code from the HTTP status.
absl::Status StatusFromReply(const HttpReply& reply);

}  // namespace slipway

#endif  // SLIPWAY_CLI_API_CLIENT_H_
