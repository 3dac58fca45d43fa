#include "grpc/grpc_status.h"

#include <gtest/gtest.h>

namespace portico::grpc {
namespace {

using namespace std::chrono;

TEST(GrpcTimeout, ParsesEveryUnit) {
  EXPECT_EQ(parseTimeout("1H"), nanoseconds(hours(1)));
  EXPECT_EQ(parseTimeout("2M"), nanoseconds(minutes(2)));
  EXPECT_EQ(parseTimeout("3S"), nanoseconds(seconds(3)));
  EXPECT_EQ(parseTimeout("1500m"), nanoseconds(milliseconds(1500)));
  EXPECT_EQ(parseTimeout("7u"), nanoseconds(microseconds(7)));
  EXPECT_EQ(parseTimeout("99999999n"), nanoseconds(99999999));
}

TEST(GrpcTimeout, RefusesMalformedValues) {
  EXPECT_FALSE(parseTimeout(""));
  EXPECT_FALSE(parseTimeout("S"));
  EXPECT_FALSE(parseTimeout("10"));
  EXPECT_FALSE(parseTimeout("10s"));         // units are case-sensitive
  EXPECT_FALSE(parseTimeout("123456789S"));  // at most 8 digits
  EXPECT_FALSE(parseTimeout("-1S"));
  EXPECT_FALSE(parseTimeout("1 S"));
}

TEST(GrpcRequest, RecognisesContentTypes) {
  http::HeaderList h;
  h.add("Content-Type", "application/grpc");
  EXPECT_TRUE(isGrpcRequest(h));
  h.clear();
  h.add("content-type", "application/grpc+proto");
  EXPECT_TRUE(isGrpcRequest(h));
  h.clear();
  h.add("content-type", "application/grpcx");
  EXPECT_FALSE(isGrpcRequest(h));
  h.clear();
  h.add("content-type", "application/json");
  EXPECT_FALSE(isGrpcRequest(h));
  h.clear();
  EXPECT_FALSE(isGrpcRequest(h));
}

TEST(GrpcStatus, MapsGatewayErrors) {
  EXPECT_EQ(statusForHttp(503), 14);
  EXPECT_EQ(statusForHttp(502), 14);
  EXPECT_EQ(statusForHttp(504), 4);
  EXPECT_EQ(statusForHttp(404), 12);
  EXPECT_EQ(statusForHttp(401), 16);
  EXPECT_EQ(statusForHttp(403), 7);
  EXPECT_EQ(statusForHttp(413), 8);
  EXPECT_EQ(statusForHttp(418), 2);
}

TEST(GrpcStatus, PercentEncodesMessages) {
  EXPECT_EQ(encodeMessage("no route matched"), "no route matched");
  EXPECT_EQ(encodeMessage("100% \xc3\xa9\n"), "100%25 %C3%A9%0A");
}

}  // namespace
}  // namespace portico::grpc
