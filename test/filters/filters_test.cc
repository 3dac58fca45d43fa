#include <gtest/gtest.h>

#include "api/filter_registry.h"
#include "api/services.h"
#include "filters/access_log/access_log_filter.h"
#include "filters/builtins.h"
#include "filters/headers/headers_filter.h"

namespace portico::filters {
namespace {

class FakeSink : public api::LogSink {
 public:
  void write(std::string_view line) override { lines.emplace_back(line); }
  std::vector<std::string> lines;
};

class FakeServices : public api::Services {
 public:
  std::shared_ptr<api::LogSink> logSink(const std::string&, const api::LogSinkOptions&) override {
    return sink;
  }
  std::shared_ptr<FakeSink> sink = std::make_shared<FakeSink>();
};

struct Built {
  std::shared_ptr<const api::FilterFactory> factory;
  std::string errors;
};

Built build(const std::string& name, const nlohmann::json& config, FakeServices& services) {
  api::FilterRegistry registry;
  registerBuiltins(registry);
  config::Diagnostics diag;
  api::FilterBuildContext ctx{config, "plugins[0].config", diag, services, nullptr};
  Built b;
  b.factory = registry.find(name)->build(ctx);
  b.errors = diag.format();
  return b;
}

TEST(HeadersFilter, EditsInOrderRemoveSetAdd) {
  HeaderEdits e;
  e.remove = {"x-drop"};
  e.set = {{"X-Set", "1"}};
  e.add = {{"X-Add", "2"}};
  http::HeaderList h;
  h.add("X-Drop", "a");
  h.add("x-set", "old");
  h.add("X-Add", "1");
  e.apply(h);
  EXPECT_EQ(h.find("x-drop"), nullptr);
  EXPECT_EQ(*h.find("x-set"), "1");
  EXPECT_EQ(h.count("x-add"), 2u);
}

TEST(HeadersFilter, ValidatesConfig) {
  FakeServices s;
  auto b = build("headers", {{"request", {{"set", {{"Bad Name", "v"}}}, {"bogus", 1}}}}, s);
  EXPECT_NE(b.errors.find("plugins[0].config.request.set.Bad Name: invalid header name"),
            std::string::npos)
      << b.errors;
  EXPECT_NE(b.errors.find("plugins[0].config.request.bogus: unknown key"), std::string::npos);
}

TEST(StaticResponse, ValidatesStatus) {
  FakeServices s;
  auto b = build("static-response", {{"status", 99}}, s);
  EXPECT_NE(b.errors.find("status: must be between 200 and 599"), std::string::npos);
}

TEST(AccessLog, WritesOneJsonLinePerRequest) {
  FakeServices s;
  auto b = build("access-log", {{"path", "stdout"}, {"fields", {"status", "path", "client"}}}, s);
  ASSERT_EQ(b.errors, "");
  auto filter = b.factory->create();
  api::RequestContext ctx;
  ctx.status = 201;
  ctx.original_path = "/a\"b";
  ctx.client_ip = "::1";
  filter->onLog(ctx);
  ASSERT_EQ(s.sink->lines.size(), 1u);
  EXPECT_EQ(s.sink->lines[0], R"({"status":201,"path":"/a\"b","client":"::1"})");
  auto bad = build("access-log", {{"fields", {"nope"}}}, s);
  EXPECT_NE(bad.errors.find("fields[0]: unknown field \"nope\""), std::string::npos);
}

// Sampling keeps a share of the successful requests, decided by the request id under a key of
// the process (a client sending its own ids cannot pick ones that stay out of the log), the
// same way for the same id; errors are always kept.
TEST(AccessLog, SamplingKeepsAShareByRequestIdAndEveryError) {
  FakeServices s;
  auto b =
      build("access-log", {{"path", "stdout"}, {"fields", {"request_id"}}, {"sample", 0.25}}, s);
  ASSERT_EQ(b.errors, "");
  auto filter = b.factory->create();
  api::RequestContext ctx;
  ctx.status = 200;
  for (int i = 0; i < 4000; ++i) {
    ctx.request_id = "id-" + std::to_string(i);
    filter->onLog(ctx);
  }
  const std::size_t kept = s.sink->lines.size();
  EXPECT_GT(kept, 800u);  // 1,000 expected; the bounds are ~6.5 standard deviations away
  EXPECT_LT(kept, 1200u);
  s.sink->lines.clear();
  for (int round = 0; round < 2; ++round) {  // the same ids: the same decisions
    for (int i = 0; i < 4000; ++i) {
      ctx.request_id = "id-" + std::to_string(i);
      filter->onLog(ctx);
    }
  }
  EXPECT_EQ(s.sink->lines.size(), 2 * kept);
  s.sink->lines.clear();
  ctx.status = 503;
  for (int i = 0; i < 100; ++i) {
    ctx.request_id = "id-" + std::to_string(i);
    filter->onLog(ctx);
  }
  EXPECT_EQ(s.sink->lines.size(), 100u);
}

TEST(AccessLog, TemplateLinesEscapeWhatCouldForgeALine) {
  FakeServices s;
  auto b = build(
      "access-log",
      {{"path", "stdout"}, {"template", "$client \"$method $path\" $status $$$consumer."}}, s);
  ASSERT_EQ(b.errors, "");
  auto filter = b.factory->create();
  api::RequestContext ctx;
  ctx.status = 404;
  ctx.original_method = "GET";
  ctx.original_path = "/a\"b\n\\c";
  ctx.client_ip = "10.0.0.1";
  filter->onLog(ctx);
  ASSERT_EQ(s.sink->lines.size(), 1u);
  // Quote, newline and backslash as \xHH; an empty field as "-"; "$$" a dollar sign.
  EXPECT_EQ(s.sink->lines[0], R"(10.0.0.1 "GET /a\x22b\x0A\x5Cc" 404 $-.)");
}

TEST(AccessLog, TemplateParsing) {
  auto t = parseAccessLogTemplate("[$time] $status_x");
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().message.find("unknown field \"$status_x\" at offset 8"), std::string::npos);
  auto ok = parseAccessLogTemplate("$status-$latency_ms ms");
  ASSERT_TRUE(ok);
  ASSERT_EQ(ok->parts.size(), 3u);
  EXPECT_EQ(ok->parts[1].literal, "-");
  EXPECT_EQ(ok->parts[1].field, "latency_ms");
  EXPECT_EQ(ok->parts[2].literal, " ms");
  EXPECT_EQ(ok->parts[2].field, "");
  FakeServices s;
  auto both = build("access-log", {{"fields", {"status"}}, {"template", "$status"}}, s);
  EXPECT_NE(both.errors.find("template: use either fields"), std::string::npos);
  auto http_only = build("access-log", {{"path", "stdout"}, {"http", {{"batch_size", 5}}}}, s);
  EXPECT_NE(http_only.errors.find("http: only for an http:// or https:// path"), std::string::npos);
}

}  // namespace
}  // namespace portico::filters
