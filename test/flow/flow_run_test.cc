// Flows run against a scripted UpstreamCalls: the test sees each call as it starts and answers
// in whatever order it likes.
#include "flow/flow_run.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace portico::flow {
namespace {

class ScriptedCalls : public api::UpstreamCalls {
 public:
  struct Started {
    api::CallRequest request;
    Done done;
    bool answered = false;
  };
  api::CallId start(api::CallRequest request, Done done) override {
    if (refuse_with) throw std::runtime_error(refuse_with);
    started.push_back({std::move(request), std::move(done)});
    ++in_flight;
    max_in_flight = std::max(max_in_flight, in_flight);
    return started.size();
  }
  std::pair<std::shared_ptr<api::BodyWriter>, api::CallId> startStreamed(api::CallRequest,
                                                                         Done) override {
    return {nullptr, 0};
  }
  void cancel(api::CallId) override {}
  void mirrorDropped(const std::string&) override {}

  // Answers the call started `index`-th with `status` and a JSON `body`.
  void answer(std::size_t index, int status, const json& body) {
    Started& s = started.at(index);
    ASSERT_FALSE(s.answered);
    s.answered = true;
    --in_flight;
    api::CallResponse r;
    r.status = status;
    r.headers.add("Content-Type", "application/json");
    r.body = body.is_null() ? std::string() : body.dump();
    s.done(std::move(r));
  }
  void failCall(std::size_t index) {
    Started& s = started.at(index);
    s.answered = true;
    --in_flight;
    api::CallResponse r;
    r.error_status = 504;
    r.error = "upstream timeout";
    s.done(std::move(r));
  }
  std::size_t find(const std::string& target_prefix) const {
    for (std::size_t i = 0; i < started.size(); ++i)
      if (started[i].request.target.rfind(target_prefix, 0) == 0) return i;
    ADD_FAILURE() << "no call to " << target_prefix;
    return 0;
  }

  // Answers `body` as it is, with `content_type`.
  void answerText(std::size_t index, const std::string& content_type, std::string body) {
    Started& s = started.at(index);
    s.answered = true;
    --in_flight;
    api::CallResponse r;
    r.status = 200;
    r.headers.add("Content-Type", content_type);
    r.body = std::move(body);
    s.done(std::move(r));
  }

  const char* refuse_with = nullptr;  // start() throws this (a bug below the flow)
  std::vector<Started> started;
  int in_flight = 0;
  int max_in_flight = 0;
};

class FlowRunTest : public ::testing::Test {
 protected:
  FlowRunTest() {
    req_.method = "GET";
    req_.target = req_.path = "/p/7";
    req_.query = "lang=fr&x=a%20b";
    req_.headers.add("X-Tenant", "acme");
    ctx_.request = &req_;
    ctx_.calls = &calls_;
    ctx_.path_params = {{"id", "7"}};
  }

  std::shared_ptr<const Flow> compile(const std::string& yamlish_json) {
    config::Diagnostics diag;
    FlowNames names;
    names.upstream_exists = [](const std::string& n) { return n != "nowhere"; };
    names.internal_route_exists = [](const std::string& n) { return n == "inner"; };
    auto f = compileFlow(json::parse(yamlish_json), "routes[0].flow", names, diag);
    errors_ = diag.format();
    return f;
  }

  void run(const Flow& flow, std::string body = {}) {
    run_ = std::make_unique<FlowRun>(flow, ctx_, std::move(body), 64);
    run_->start([this] { done_ = true; });
  }

  http::RequestHead req_;
  api::RequestContext ctx_;
  ScriptedCalls calls_;
  std::unique_ptr<FlowRun> run_;
  bool done_ = false;
  std::string errors_;
};

TEST_F(FlowRunTest, IndependentCallsStartTogetherDependentOnesAfter) {
  auto flow = compile(R"({"calls": [
      {"name": "user", "upstream": "users", "path": "/u/{request.path.id}",
       "query": {"lang": "{request.query.lang}", "gone": "{request.query.none}"},
       "headers": {"X-Tenant": "{request.header.x-tenant}"}},
      {"name": "stats", "upstream": "stats", "path": "/s"},
      {"name": "orders", "upstream": "orders", "method": "post", "path": "/o/{user.body.id}",
       "body": {"who": "{user.body}", "x": "{request.query.x}"}}]})");
  ASSERT_TRUE(flow) << errors_;
  run(*flow);
  ASSERT_EQ(calls_.started.size(), 2u);  // user and stats; orders waits for user
  const auto& u = calls_.started[0].request;
  EXPECT_EQ(u.upstream, "users");
  EXPECT_EQ(u.target, "/u/7?lang=fr");
  EXPECT_EQ(*u.headers.find("x-tenant"), "acme");
  calls_.answer(1, 200, {{"stats", 1}});
  EXPECT_EQ(calls_.started.size(), 2u);
  calls_.answer(0, 200, {{"id", "u 1"}, {"name", "Ann"}});
  ASSERT_EQ(calls_.started.size(), 3u);
  const auto& o = calls_.started[2].request;
  EXPECT_EQ(o.method, "POST");
  EXPECT_EQ(o.target, "/o/u%201");
  EXPECT_EQ(json::parse(o.body),
            json::parse(R"({"who": {"id": "u 1", "name": "Ann"}, "x": "a b"})"));
  EXPECT_EQ(*o.headers.find("content-type"), "application/json");
  EXPECT_FALSE(done_);
  calls_.answer(2, 201, {{"name", "from orders"}});
  ASSERT_TRUE(done_);
  EXPECT_FALSE(run_->failed);
  EXPECT_EQ(run_->status, 200);
  // Declared order: orders (declared last) wins "name", although stats answered first.
  EXPECT_EQ(json::parse(run_->body),
            json::parse(R"({"id": "u 1", "name": "from orders", "stats": 1})"));
  EXPECT_EQ(run_->headers.find("portico-completed"), nullptr);
}

TEST_F(FlowRunTest, ForEachKeepsItsConcurrencyAndItsOrder) {
  auto flow = compile(R"({"calls": [
      {"name": "list", "upstream": "s", "path": "/list"},
      {"name": "items", "upstream": "s", "path": "/item/{item.sku}", "for_each": "{list.body.skus}",
       "concurrency": 3}],
      "respond": {"body": {"prices": "{items[*].body.price}", "second": "{items[1].body.price}"}}})");
  ASSERT_TRUE(flow) << errors_;
  run(*flow);
  json skus = json::array();
  for (int i = 0; i < 7; ++i) skus.push_back({{"sku", "s" + std::to_string(i)}});
  calls_.answer(0, 200, {{"skus", skus}});
  EXPECT_EQ(calls_.in_flight, 3);
  // Answer the newest first, always: the composed order is still the list's.
  while (calls_.in_flight > 0) {
    for (std::size_t i = calls_.started.size(); i-- > 1;) {
      if (calls_.started[i].answered) continue;
      const std::string sku = calls_.started[i].request.target.substr(6);
      calls_.answer(i, 200, {{"price", std::stoi(sku.substr(1)) * 10}});
      break;
    }
  }
  EXPECT_EQ(calls_.max_in_flight, 3);
  ASSERT_TRUE(done_);
  EXPECT_EQ(json::parse(run_->body),
            json::parse(R"({"prices": [0, 10, 20, 30, 40, 50, 60], "second": 10})"));
}

TEST_F(FlowRunTest, FailuresRequiredOptionalAndSkipped) {
  auto flow = compile(R"({"calls": [
      {"name": "a", "upstream": "s", "path": "/a", "required": false, "group": "a"},
      {"name": "b", "upstream": "s", "path": "/b/{a.body.x}", "required": false, "group": "b"},
      {"name": "c", "upstream": "s", "path": "/c"}]})");
  ASSERT_TRUE(flow) << errors_;
  run(*flow);
  ASSERT_EQ(calls_.started.size(), 2u);
  calls_.answer(calls_.find("/a"), 500, {{"x", 1}});  // b will not run
  calls_.answer(calls_.find("/c"), 204, nullptr);
  ASSERT_TRUE(done_);
  EXPECT_EQ(calls_.started.size(), 2u);
  EXPECT_FALSE(run_->failed);
  EXPECT_EQ(json::parse(run_->body), json::parse(R"({"a": null, "b": null})"));
  EXPECT_EQ(*run_->headers.find("portico-completed"), "false");

  calls_.started.clear();
  done_ = false;
  run(*flow);
  calls_.answer(calls_.find("/a"), 200, {{"x", 1}});
  calls_.failCall(calls_.find("/c"));
  calls_.answer(calls_.find("/b"), 200, json::object());
  ASSERT_TRUE(done_);
  EXPECT_TRUE(run_->failed);
  EXPECT_EQ(run_->status, 502);
  EXPECT_EQ(run_->error, "call \"c\" failed: upstream timeout");
}

TEST_F(FlowRunTest, PropagatedStatusMergeConflictAndBadHeaderValues) {
  auto prop = compile(R"({"calls": [{"name": "a", "upstream": "s", "propagate_status": true}]})");
  ASSERT_TRUE(prop) << errors_;
  run(*prop);
  calls_.answer(0, 404, {{"error", "no"}});
  EXPECT_TRUE(run_->failed);
  EXPECT_EQ(run_->status, 404);

  auto strict =
      compile(R"({"calls": [{"name": "a", "upstream": "s"}, {"name": "b", "upstream": "s"}],
                            "respond": {"merge": "error"}})");
  ASSERT_TRUE(strict) << errors_;
  calls_.started.clear();
  run(*strict);
  calls_.answer(1, 200, {{"k", 2}});
  calls_.answer(0, 200, {{"k", 1}});
  EXPECT_TRUE(run_->failed);
  EXPECT_EQ(run_->error, "key \"k\" set by calls \"a\" and \"b\"");

  auto header = compile(R"({"calls": [{"name": "a", "upstream": "s", "required": false,
                                        "headers": {"X-Evil": "{request.query.v}"}}]})");
  ASSERT_TRUE(header) << errors_;
  calls_.started.clear();
  req_.query = "v=a%0D%0AInjected:%201";
  done_ = false;
  run(*header);
  EXPECT_TRUE(calls_.started.empty());  // never sent
  EXPECT_TRUE(done_);
  EXPECT_EQ(*run_->headers.find("portico-completed"), "false");
}

// A path parameter is captured as the client wrote it; templates see what it spells (as they
// see a query value), and a path or url gets it percent-encoded once. A value that is all dots
// would be a segment that climbs (`/u/..` is `/`): that call is not made.
TEST_F(FlowRunTest, PathParametersAreDecodedThenEncodedOnceAndNeverClimb) {
  auto flow = compile(R"({"calls": [
      {"name": "a", "upstream": "s", "path": "/u/{request.path.id}/x", "required": false,
       "body": {"id": "{request.path.id}"}},
      {"name": "b", "url": "http://h/u/{request.path.id}", "required": false}]})");
  ASSERT_TRUE(flow) << errors_;
  ctx_.path_params = {{"id", "j%C3%B6rg%20k%2Fl"}};
  run(*flow);
  ASSERT_EQ(calls_.started.size(), 2u);
  EXPECT_EQ(calls_.started[0].request.target, "/u/j%C3%B6rg%20k%2Fl/x");  // not %25C3...
  EXPECT_EQ(json::parse(calls_.started[0].request.body), json({{"id", "j\xC3\xB6rg k/l"}}));
  EXPECT_EQ(calls_.started[1].request.url, "http://h/u/j%C3%B6rg%20k%2Fl");

  for (const char* climbing : {"..", "%2E%2E", ".", "%2e"}) {
    calls_.started.clear();
    done_ = false;
    ctx_.path_params = {{"id", climbing}};
    run(*flow);
    EXPECT_TRUE(calls_.started.empty()) << climbing;  // neither call is sent
    EXPECT_TRUE(done_) << climbing;
    EXPECT_EQ(*run_->headers.find("portico-completed"), "false") << climbing;
  }
  // A dot segment written in the config is refused when it loads.
  EXPECT_FALSE(
      compile(R"({"calls": [{"name": "a", "upstream": "s", "path": "/v1/../{request.path.id}"},
                                     {"name": "b", "url": "http://h/./x"}]})"));
  EXPECT_NE(errors_.find("routes[0].flow.calls[0].path: must not hold a . or .. segment"),
            std::string::npos)
      << errors_;
  EXPECT_NE(errors_.find("routes[0].flow.calls[1].url: must not hold a . or .. segment"),
            std::string::npos)
      << errors_;
}

TEST_F(FlowRunTest, MalformedJsonAnswerFailsTheCall) {
  auto flow = compile(R"({"calls": [{"name": "a", "upstream": "s"}]})");
  run(*flow);
  api::CallResponse r;
  r.status = 200;
  r.headers.add("Content-Type", "application/problem+json");
  r.body = "{oops";
  calls_.started[0].done(std::move(r));
  EXPECT_TRUE(run_->failed);
  EXPECT_EQ(run_->error, "call \"a\" failed: answer is not valid JSON");
}

// JSON holds UTF-8 only. A form answer whose escape decodes to other bytes fails its call;
// a text answer is opaque, and its bytes that are not UTF-8 become U+FFFD where the flow
// writes JSON (a later call's body, the composed answer). Both threw before, and the request
// waited for an answer that never came.
TEST_F(FlowRunTest, AnswersThatAreNotUtf8) {
  auto flow = compile(R"({"calls": [
      {"name": "f", "upstream": "s", "path": "/f", "format": "form", "required": false},
      {"name": "t", "upstream": "s", "path": "/t", "format": "text"},
      {"name": "u", "upstream": "s", "method": "post", "path": "/u", "body": {"t": "{t.body}"}}],
      "respond": {"body": {"t": "{t.body}", "f": "{f.body}", "u": "{u.body}"}}})");
  ASSERT_TRUE(flow) << errors_;
  run(*flow);
  ASSERT_EQ(calls_.started.size(), 2u);
  calls_.answerText(0, "application/x-www-form-urlencoded", "a=1&b=caf%E9");
  calls_.answerText(1, "text/plain", "caf\xe9");
  ASSERT_EQ(calls_.started.size(), 3u);
  EXPECT_EQ(json::parse(calls_.started[2].request.body), json::parse(R"({"t": "caf\ufffd"})"));
  calls_.answer(2, 200, {{"ok", true}});
  ASSERT_TRUE(done_);
  EXPECT_FALSE(run_->failed);
  EXPECT_EQ(json::parse(run_->body),
            json::parse(R"({"t": "caf\ufffd", "f": null, "u": {"ok": true}})"));
  EXPECT_EQ(*run_->headers.find("portico-completed"), "false");  // f failed (optional)
}

// An exception below the flow (a bug) ends it with a 502 at once, whether it comes while the
// flow starts or inside an answer's callback; before, the request waited forever.
TEST_F(FlowRunTest, AnExceptionEndsTheFlowWithA502) {
  auto flow = compile(R"({"calls": [{"name": "a", "upstream": "s", "path": "/a"},
      {"name": "b", "upstream": "s", "path": "/b/{a.body.id}"}]})");
  ASSERT_TRUE(flow) << errors_;
  calls_.refuse_with = "no room";
  run(*flow);
  ASSERT_TRUE(done_);
  EXPECT_TRUE(run_->failed);
  EXPECT_EQ(run_->status, 502);
  EXPECT_EQ(run_->error, "the flow failed");

  done_ = false;
  calls_.refuse_with = nullptr;
  run(*flow);
  ASSERT_EQ(calls_.started.size(), 1u);
  calls_.refuse_with = "no room";  // b's start, inside a's callback
  calls_.answer(0, 200, {{"id", 1}});
  ASSERT_TRUE(done_);
  EXPECT_TRUE(run_->failed);
  EXPECT_EQ(run_->status, 502);
}

TEST_F(FlowRunTest, RequestBodyFieldsAndForwardedBody) {
  auto flow = compile(R"({"calls": [
      {"name": "a", "upstream": "s", "path": "/a/{request.body.user.id}", "forward_body": true}]})");
  ASSERT_TRUE(flow) << errors_;
  EXPECT_TRUE(flow->needs_request_body);
  req_.headers.add("Content-Type", "application/json");
  run(*flow, R"({"user": {"id": 9}})");
  ASSERT_EQ(calls_.started.size(), 1u);
  EXPECT_EQ(calls_.started[0].request.target, "/a/9");
  EXPECT_EQ(calls_.started[0].request.body, R"({"user": {"id": 9}})");
  EXPECT_EQ(*calls_.started[0].request.headers.find("content-type"), "application/json");
}

TEST_F(FlowRunTest, CompileRefusesWhatCannotRun) {
  EXPECT_FALSE(compile(R"({"calls": [
      {"name": "a", "upstream": "s", "path": "/{b.body.x}"},
      {"name": "b", "upstream": "s", "path": "/{a.body.x}"},
      {"name": "c", "upstream": "s", "path": "/{c.body.x}"},
      {"name": "d", "upstream": "nowhere"},
      {"name": "e", "route": "public"},
      {"name": "f", "upstream": "s", "url": "http://x/"},
      {"name": "a", "upstream": "s"},
      {"name": "item", "upstream": "s", "path": "/{item.x}"}],
      "respond": {"body": "{zed.body}", "merge": "sometimes"}})"));
  for (const char* expected :
       {"part of a cycle", "cannot use its own answer", "unknown upstream \"nowhere\"",
        "no internal route \"public\"", "give one of upstream, url, route",
        "duplicate call name \"a\"", "\"item\" is reserved", "item is only known inside for_each",
        "no call named \"zed\"", "unknown merge"})
    EXPECT_NE(errors_.find(expected), std::string::npos) << expected << "\n" << errors_;
}

}  // namespace
}  // namespace portico::flow
