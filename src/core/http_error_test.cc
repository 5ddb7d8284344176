#include "core/http_error.h"

#include "gtest/gtest.h"

namespace slipway {
namespace {

TEST(HttpErrorTest, MapsEveryCode) {
  struct Case {
    absl::Status status;
    int http;
  };
  const Case cases[] = {
      {absl::OkStatus(), 200},
      {absl::InvalidArgumentError("x"), 400},
      {absl::OutOfRangeError("x"), 400},
      {absl::UnauthenticatedError("x"), 401},
      {absl::PermissionDeniedError("x"), 403},
      {absl::NotFoundError("x"), 404},
      {absl::AlreadyExistsError("x"), 409},
      {absl::AbortedError("x"), 409},
      {absl::FailedPreconditionError("x"), 409},
      {absl::ResourceExhaustedError("x"), 429},
      {absl::UnimplementedError("x"), 501},
      {absl::UnavailableError("x"), 503},
      {absl::DeadlineExceededError("x"), 504},
      {absl::InternalError("x"), 500},
      {absl::DataLossError("x"), 500},
      {absl::UnknownError("x"), 500},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(HttpStatusCode(c.status), c.http) << c.status;
  }
}

TEST(HttpErrorTest, BodyIsEscapedJson) {
  EXPECT_EQ(ErrorBody(absl::InvalidArgumentError("feature \"age\" missing")),
            R"({"error":"feature \"age\" missing"})");
}

}  // namespace
}  // namespace slipway
