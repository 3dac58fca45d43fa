#include "core/error_body.h"

#include <gtest/gtest.h>

namespace portico {
namespace {

TEST(ErrorBody, IsJsonWithTheRequestId) {
  EXPECT_EQ(errorBody(404, "no \"route\"", "id1"),
            R"({"error":"no \"route\"","status":404,"request_id":"id1"})");
}

TEST(ErrorBody, ExtraFieldsFollowTheStatus) {
  EXPECT_EQ(errorBody(404, "no book", "id1", R"("grpc_status":5)"),
            R"({"error":"no book","status":404,"grpc_status":5,"request_id":"id1"})");
  // bytes that are not printable ASCII are escaped: the body stays JSON whatever they are
  EXPECT_EQ(errorBody(500, "\xff", "id1"), R"({"error":"\u00ff","status":500,"request_id":"id1"})");
}

}  // namespace
}  // namespace portico
