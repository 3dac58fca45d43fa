#include "observability/tracing.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace portico::observability {
namespace {

TEST(OtlpJsonTest, SpansWithParentsAttributesAndStatus) {
  FinishedTrace t;
  t.trace_hi = 0x4bf92f3577b34da6;
  t.trace_lo = 0xa3ce929d0e0e4736;
  api::Span server;
  server.id = 1;
  server.kind = 2;
  server.name = "GET \"orders\"";
  server.start_ns = 10;
  server.end_ns = 20;
  server.attr("http.response.status_code", std::int64_t{503});
  server.attr("url.path", "/a\nb");
  server.error = true;
  api::Span child;
  child.id = 0xabc;
  child.parent = 1;
  child.kind = 3;
  child.name = "upstream";
  t.spans = {server, child};
  const auto doc = nlohmann::json::parse(otlpJson({t}, "edge"));
  const auto& rs = doc["resourceSpans"][0];
  EXPECT_EQ(rs["resource"]["attributes"][0]["value"]["stringValue"], "edge");
  const auto& spans = rs["scopeSpans"][0]["spans"];
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(spans[0]["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(spans[0]["spanId"], "0000000000000001");
  EXPECT_FALSE(spans[0].contains("parentSpanId"));
  EXPECT_EQ(spans[0]["name"], "GET \"orders\"");
  EXPECT_EQ(spans[0]["kind"], 2);
  EXPECT_EQ(spans[0]["startTimeUnixNano"], "10");
  EXPECT_EQ(spans[0]["attributes"][0]["value"]["intValue"], "503");
  EXPECT_EQ(spans[0]["attributes"][1]["value"]["stringValue"], "/a\nb");
  EXPECT_EQ(spans[0]["status"]["code"], 2);
  EXPECT_EQ(spans[1]["parentSpanId"], "0000000000000001");
  EXPECT_EQ(spans[1]["spanId"], "0000000000000abc");
  EXPECT_TRUE(spans[1]["attributes"].empty());
  EXPECT_EQ(spans[1]["status"]["code"], 0);
}

}  // namespace
}  // namespace portico::observability
