#include "cli/api_client.h"

#include <curl/curl.h>

#include <cstdlib>
#include <memory>

#include "core/filesystem.h"
#include "core/status.h"

namespace slipway {
namespace {

size_t AppendBody(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

absl::StatusCode CodeForHttpStatus(int status) {
  switch (status) {
    case 400:
    case 413:
    case 415:
    case 422:
      return absl::StatusCode::kInvalidArgument;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kNotFound;
    case 409:
      return absl::StatusCode::kFailedPrecondition;
    case 429:
      return absl::StatusCode::kResourceExhausted;
    case 501:
      return absl::StatusCode::kUnimplemented;
    case 503:
      return absl::StatusCode::kUnavailable;
    case 504:
      return absl::StatusCode::kDeadlineExceeded;
    default:
      return absl::StatusCode::kInternal;
  }
}

}  // namespace

ApiClient::ApiClient(std::string base_url, std::string token)
    : base_url_(std::move(base_url)), token_(std::move(token)) {
  while (!base_url_.empty() && base_url_.back() == '/') base_url_.pop_back();
  static const bool initialised = [] {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return true;
  }();
  (void)initialised;
}

absl::StatusOr<HttpReply> ApiClient::Send(
    const std::string& method, const std::string& path, const std::string& body,
    const std::string& content_type) const {
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(),
                                              curl_easy_cleanup);
  if (!curl) return absl::InternalError("cannot initialise libcurl");
  std::string url = base_url_ + path;
  HttpReply reply;
  curl_slist* headers = nullptr;
  std::string content_header = "Content-Type: " + content_type;
  headers = curl_slist_append(headers, content_header.c_str());
  // Who is calling, for the audit log ("cli:<token name>").
  headers = curl_slist_append(headers, "X-Slipway-Client: cli");
  std::string auth;
  if (!token_.empty()) {
    auth = "Authorization: Bearer " + token_;
    headers = curl_slist_append(headers, auth.c_str());
  }
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> header_list(
      headers, curl_slist_free_all);
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, header_list.get());
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  if (method != "GET") {
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(body.size()));
  }
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, AppendBody);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &reply.body);
  CURLcode rc = curl_easy_perform(curl.get());
  if (rc != CURLE_OK) {
    return absl::UnavailableError(
        "cannot reach the Slipway server at " + base_url_ + ": " +
        curl_easy_strerror(rc) +
        " (start it with `slipway server`, or point --server / "
        "SLIPWAY_SERVER at it)");
  }
  long status = 0;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);
  reply.status = static_cast<int>(status);
  char* type = nullptr;
  curl_easy_getinfo(curl.get(), CURLINFO_CONTENT_TYPE, &type);
  if (type != nullptr) reply.content_type = type;
  return reply;
}

absl::Status StatusFromReply(const HttpReply& reply) {
  if (reply.status >= 200 && reply.status < 300) return absl::OkStatus();
  std::string message = reply.body;
  nlohmann::json parsed = nlohmann::json::parse(reply.body, nullptr, false);
  if (parsed.is_object() && parsed.contains("error") &&
      parsed["error"].is_string()) {
    message = parsed["error"].get<std::string>();
  }
  if (message.empty()) message = "HTTP " + std::to_string(reply.status);
  return absl::Status(CodeForHttpStatus(reply.status), message);
}

absl::StatusOr<nlohmann::json> ApiClient::Exchange(
    const std::string& method, const std::string& path,
    const std::string& body) const {
  ASSIGN_OR_RETURN(HttpReply reply, Send(method, path, body));
  RETURN_IF_ERROR(StatusFromReply(reply));
  nlohmann::json parsed = nlohmann::json::parse(reply.body, nullptr, false);
  if (parsed.is_discarded()) {
    return absl::InternalError("the server's answer to " + method + " " + path +
                               " is not JSON");
  }
  return parsed;
}

absl::StatusOr<nlohmann::json> ApiClient::Get(const std::string& path) const {
  return Exchange("GET", path, "");
}

absl::StatusOr<nlohmann::json> ApiClient::Post(
    const std::string& path, const nlohmann::json& body) const {
  return Exchange("POST", path, body.dump());
}

absl::StatusOr<nlohmann::json> ApiClient::Put(
    const std::string& path, const nlohmann::json& body) const {
  return Exchange("PUT", path, body.dump());
}

absl::StatusOr<nlohmann::json> ApiClient::Delete(
    const std::string& path) const {
  return Exchange("DELETE", path, "");
}

absl::StatusOr<std::string> ClientToken(const std::string& data_dir) {
  const char* env = std::getenv("SLIPWAY_TOKEN");
  if (env != nullptr && *env != '\0') return std::string(env);
  Filesystem* fs = LocalFilesystem();
  const std::string path = JoinPath(data_dir, "admin.token");
  if (!fs->Exists(path)) return std::string();
  ASSIGN_OR_RETURN(std::string text, fs->ReadFile(path),
                   "reading the admin token (set SLIPWAY_TOKEN instead)");
  const size_t end = text.find_first_of("\r\n");
  return end == std::string::npos ? text : text.substr(0, end);
}

absl::StatusOr<std::string> ApiClient::Download(const std::string& path) const {
  ASSIGN_OR_RETURN(HttpReply reply, Send("GET", path));
  RETURN_IF_ERROR(StatusFromReply(reply));
  return std::move(reply.body);
}

}  // namespace slipway
