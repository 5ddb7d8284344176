#include "core/status.h"

#include "gtest/gtest.h"

namespace slipway {
namespace {

absl::Status Fails() { return absl::InvalidArgumentError("column 'age'"); }
absl::StatusOr<int> Seven() { return 7; }
absl::StatusOr<int> NotFound() { return absl::NotFoundError("app 'x'"); }

absl::Status UsesReturnIfError() {
  RETURN_IF_ERROR(Fails(), "reading train.csv");
  return absl::OkStatus();
}

absl::StatusOr<int> UsesAssignOrReturn(bool fail) {
  ASSIGN_OR_RETURN(int a, Seven());
  ASSIGN_OR_RETURN(int b, fail ? NotFound() : Seven(), "loading");
  return a + b;
}

TEST(StatusTest, ReturnIfErrorKeepsCodeAndAddsContext) {
  absl::Status s = UsesReturnIfError();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "reading train.csv: column 'age'");
}

TEST(StatusTest, AssignOrReturn) {
  EXPECT_EQ(*UsesAssignOrReturn(false), 14);
  absl::StatusOr<int> r = UsesAssignOrReturn(true);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(r.status().message(), "loading: app 'x'");
}

TEST(StatusTest, AnnotateLeavesOkAlone) {
  EXPECT_TRUE(Annotate(absl::OkStatus(), "ctx").ok());
}

}  // namespace
}  // namespace slipway
