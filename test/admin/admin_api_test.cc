#include "admin/admin_api.h"

#include <gtest/gtest.h>

#include "admin/openapi_import.h"
#include "core/sha256.h"

namespace portico::admin {
namespace {

using nlohmann::json;

// A store in memory that records commits: enough for the API's logic without SQLite.
class MemoryStore : public store::EntityStore {
 public:
  std::string_view type() const override { return "memory"; }
  bool writable() const override { return true; }
  Result<store::EntitySet> load() override { return store::EntitySet{}; }
  Result<std::uint64_t> commit(std::uint64_t base, const std::vector<store::Change>& changes,
                               const std::string&) override {
    if (base != revision) return makeError(std::string(store::kConflict));
    commits.push_back(changes);
    return ++revision;
  }
  Result<bool> appendAudit(const store::AuditRecord& r) override {
    audit_log.push_back(r);
    return true;
  }
  Result<std::vector<store::AuditRecord>> audit(std::size_t) override { return audit_log; }

  std::uint64_t revision = 0;
  std::vector<std::vector<store::Change>> commits;
  std::vector<store::AuditRecord> audit_log;
};

struct Fixture {
  MemoryStore store;
  int published = 0;
  // The compile step: a route must name an upstream that exists (enough to see refusals).
  AdminApi api{
      store,
      ControlHooks{[](const store::EntitySet& set, const std::vector<store::Change>&,
                      std::shared_ptr<const void>& prepared) {
                     std::vector<FieldError> errors;
                     const auto& routes = set.list(store::Kind::Routes);
                     for (std::size_t i = 0; i < routes.size(); ++i)
                       if (!set.find(store::Kind::Upstreams, routes[i].body.value("upstream", "")))
                         errors.push_back(
                             {"/routes/" + std::to_string(i) + "/upstream", "unknown upstream"});
                     prepared = std::make_shared<int>(1);
                     return errors;
                   },
                   [this](std::shared_ptr<const void>) { ++published; },
                   [] { return std::string("2026-12-04T00:00:00Z"); },
                   [this](std::shared_ptr<const void> prepared, int percent) {
                     candidate = std::move(prepared);
                     candidate_percent = percent;
                   },
                   [this] { return totals; }, [this] { return clock; }}};
  // Releases: what the workers would serve, count and read the time from.
  std::shared_ptr<const void> candidate;
  int candidate_percent = 0;
  std::array<observability::ReleaseTotals, 2> totals{};
  std::chrono::steady_clock::time_point clock{};

  // `requests` more on each side over `seconds`, with these 5xx and latencies.
  void traffic(std::uint64_t stable, std::uint64_t stable_5xx, std::uint64_t candidate_n,
               std::uint64_t candidate_5xx, int seconds, int candidate_ms = 20) {
    const auto add = [](observability::ReleaseTotals& t, std::uint64_t n, std::uint64_t errors,
                        int ms) {
      t.requests += n;
      t.errors_5xx += errors;
      t.latency[observability::FineLatency::bucketOf(std::chrono::milliseconds(ms))] += n;
    };
    add(totals[observability::kStableSide], stable, stable_5xx, 20);
    add(totals[observability::kCandidateSide], candidate_n, candidate_5xx, candidate_ms);
    clock += std::chrono::seconds(seconds);
    api.tickRelease();
  }

  Fixture() {
    config::AdminConfig admin;
    admin.tokens.push_back({"ci", sha("write-token-0123456789"), true});
    admin.tokens.push_back({"viewer", sha("read-token-0123456789"), false});
    api.setAdmin(admin);
  }
  static std::string sha(const std::string& token) { return sha256Hex(token); }

  AdminResponse send(std::string method, std::string path, std::string body = "",
                     std::vector<std::pair<std::string, std::string>> headers = {},
                     std::string token = "write-token-0123456789") {
    AdminRequest r;
    r.method = std::move(method);
    const auto q = path.find('?');
    r.path = path.substr(0, q);
    if (q != std::string::npos) r.query = path.substr(q + 1);
    r.body = std::move(body);
    if (!token.empty()) r.headers.emplace_back("authorization", "Bearer " + token);
    if (!r.body.empty()) r.headers.emplace_back("content-type", "application/json");
    for (auto& h : headers) r.headers.push_back(std::move(h));
    return api.handle(r);
  }
};

TEST(AdminApi, TokensPreconditionsRefusalsAndConflicts) {
  Fixture f;
  EXPECT_EQ(f.send("GET", "/admin/v1/routes", "", {}, "").status, 401);
  EXPECT_EQ(f.send("GET", "/admin/v1/routes", "", {}, "wrong-token-0123456789").status, 401);
  EXPECT_EQ(
      f.send("POST", "/admin/v1/upstreams", R"({"name": "u"})", {}, "read-token-0123456789").status,
      403);
  EXPECT_EQ(f.send("POST", "/admin/v1/upstreams", R"({"name": "u"})").status, 201);
  // A compile error: 400 with the pointer, nothing stored or published.
  auto bad = f.send("POST", "/admin/v1/routes", R"({"name": "r", "upstream": "nope"})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(json::parse(bad.body)["errors"][0]["path"], "/routes/0/upstream");
  EXPECT_EQ(f.store.commits.size(), 1u);
  EXPECT_EQ(f.published, 1);
  auto ok = f.send("POST", "/admin/v1/routes", R"({"name": "r", "upstream": "u"})");
  ASSERT_EQ(ok.status, 201);
  EXPECT_EQ(f.send("POST", "/admin/v1/routes", R"({"name": "r", "upstream": "u"})").status, 409);
  EXPECT_EQ(
      f.send("PUT", "/admin/v1/routes/r", R"({"upstream": "u"})", {{"if-match", "\"1\""}}).status,
      412);
  EXPECT_EQ(f.send("PUT", "/admin/v1/routes/r", R"({"upstream": "u", "priority": 2})",
                   {{"if-match", "\"2\""}})
                .status,
            200);
  EXPECT_EQ(f.send("DELETE", "/admin/v1/upstreams/u").status, 409);  // r names it
  // The store moved on underneath (another writer): 409, never a 5xx.
  ++f.store.revision;
  EXPECT_EQ(f.send("DELETE", "/admin/v1/routes/r").status, 409);
  EXPECT_EQ(f.send("GET", "/admin/v1/widgets").status, 404);
  EXPECT_EQ(f.send("POST", "/admin/v1/upstreams", "{\"name\": ").status, 400);
  // Every write attempt is audited, with the token's name, never the token.
  bool refused_read = false;
  for (const auto& r : f.store.audit_log) refused_read |= r.actor == "viewer" && r.status == 403;
  EXPECT_TRUE(refused_read);
}

// A release with the default policy (5, 25, 100 % every 30 s, 200 requests to judge) on the
// injected clock: nothing is committed until the last step held.
TEST(AdminApiReleases, AGoodReleaseIsPromotedStepByStepThenCommitted) {
  Fixture f;
  ASSERT_EQ(f.send("POST", "/admin/v1/upstreams", R"({"name": "u"})").status, 201);
  const auto started = f.send("POST", "/admin/v1/config?rollout=true&prune=false",
                              R"({"routes": [{"name": "r", "upstream": "u"}]})");
  ASSERT_EQ(started.status, 202) << started.body;
  const std::string id = json::parse(started.body)["release"];
  EXPECT_EQ(f.store.commits.size(), 1u);  // the upstream only
  EXPECT_EQ(f.candidate_percent, 5);
  ASSERT_TRUE(f.candidate);
  EXPECT_EQ(f.send("GET", "/admin/v1/routes/r").status, 404);  // not committed
  // Writes wait for the release.
  const auto refused = f.send("POST", "/admin/v1/upstreams", R"({"name": "v"})");
  EXPECT_EQ(refused.status, 409);
  EXPECT_NE(refused.body.find("release " + id + " is in progress"), std::string::npos);

  f.traffic(5000, 5, 150, 0, 29);  // not due yet
  EXPECT_EQ(f.candidate_percent, 5);
  f.traffic(0, 0, 0, 0, 1);  // due, but 150 < min_requests: the step goes on
  EXPECT_EQ(f.candidate_percent, 5);
  f.traffic(1000, 1, 100, 0, 5);
  EXPECT_EQ(f.candidate_percent, 25);
  f.traffic(3000, 3, 1000, 1, 30);
  EXPECT_EQ(f.candidate_percent, 100);
  f.traffic(0, 0, 4000, 2, 30);
  EXPECT_EQ(f.candidate, nullptr);  // promoted: the candidate is the config now
  ASSERT_EQ(f.store.commits.size(), 2u);
  EXPECT_EQ(f.store.commits[1][0].name, "r");
  EXPECT_EQ(f.send("GET", "/admin/v1/routes/r").status, 200);
  const auto shown = json::parse(f.send("GET", "/admin/v1/releases/" + id).body);
  EXPECT_EQ(shown["state"], "promoted");
  EXPECT_EQ(shown["revision"], 2);
  ASSERT_EQ(shown["intervals"].size(), 3u);
  EXPECT_EQ(shown["intervals"][0]["candidate"]["requests"], 250);
  EXPECT_EQ(shown["intervals"][2]["decision"], "promoted");
  EXPECT_EQ(f.send("POST", "/admin/v1/upstreams", R"({"name": "v"})").status, 201);
  bool audited = false;
  for (const auto& r : f.store.audit_log)
    audited |= r.actor == "release " + id && r.status == 200 && r.revision == 2;
  EXPECT_TRUE(audited);
}

TEST(AdminApiReleases, MoreErrorsOnTheCandidateRollBackAndNothingIsCommitted) {
  Fixture f;
  ASSERT_EQ(f.send("POST", "/admin/v1/upstreams", R"({"name": "u"})").status, 201);
  const auto started = f.send("PUT", "/admin/v1/routes/r?rollout=true", R"({"upstream": "u"})");
  ASSERT_EQ(started.status, 202) << started.body;
  const std::string id = json::parse(started.body)["release"];
  f.traffic(400, 0, 100, 20, 3);  // 100 requests: too few to judge even at 20% 5xx
  EXPECT_EQ(f.candidate_percent, 5);
  f.traffic(3600, 4, 200, 40, 7);  // 10 s in, 300 requests: gone before the interval ends
  EXPECT_EQ(f.candidate, nullptr);
  EXPECT_EQ(f.store.commits.size(), 1u);
  const auto list = json::parse(f.send("GET", "/admin/v1/releases").body);
  ASSERT_EQ(list["data"].size(), 1u);
  EXPECT_EQ(list["data"][0]["state"], "rolled_back");
  EXPECT_EQ(list["data"][0]["percent"], 0);
  EXPECT_NE(list["data"][0]["reason"].get<std::string>().find(
                "5xx ratio 0.2000 on the candidate vs 0.0010 stable"),
            std::string::npos)
      << list;
  EXPECT_EQ(f.send("POST", "/admin/v1/routes", R"({"name": "r2", "upstream": "u"})").status, 201);
  // A candidate that does not compile is refused like any write: no release.
  EXPECT_EQ(f.send("PUT", "/admin/v1/routes/r3?rollout=true", R"({"upstream": "nope"})").status,
            400);
  EXPECT_EQ(json::parse(f.send("GET", "/admin/v1/releases").body)["data"].size(), 1u);
}

// At 100% the stable side sees (nearly) nothing: the candidate is compared with the stable
// side's last interval that had enough requests.
TEST(AdminApiReleases, AtFullShareTheCandidateIsComparedWithTheLastStableInterval) {
  Fixture f;
  ASSERT_EQ(f.send("POST", "/admin/v1/upstreams?rollout=true", R"({"name": "u"})").status, 202);
  f.traffic(4000, 0, 300, 0, 30);
  f.traffic(3000, 0, 1000, 0, 30);
  EXPECT_EQ(f.candidate_percent, 100);
  f.traffic(3, 0, 4000, 0, 30, 60);  // 3 stragglers on the stable side; p99 60 ms vs 20 ms
  EXPECT_EQ(f.candidate, nullptr);
  const auto shown = json::parse(f.send("GET", "/admin/v1/releases").body)["data"][0];
  EXPECT_EQ(shown["state"], "rolled_back");
  EXPECT_NE(shown["reason"].get<std::string>().find("at 100%"), std::string::npos) << shown;
  EXPECT_EQ(shown["intervals"][2]["stable_from"], "an earlier interval");
  EXPECT_EQ(shown["intervals"][2]["stable"]["requests"], 3000);
  EXPECT_TRUE(f.store.commits.empty());
}

TEST(AdminApiReleases, AnOperatorRollsBackByHand) {
  Fixture f;
  ASSERT_EQ(f.send("POST", "/admin/v1/upstreams?rollout=true", R"({"name": "u"})").status, 202);
  const std::string id = json::parse(f.send("GET", "/admin/v1/releases").body)["data"][0]["id"];
  EXPECT_EQ(f.send("GET", "/admin/v1/releases/" + id + "/rollback").status, 405);
  const auto back = f.send("POST", "/admin/v1/releases/" + id + "/rollback");
  ASSERT_EQ(back.status, 200);
  EXPECT_EQ(json::parse(back.body)["reason"], "rolled back by ci");
  EXPECT_EQ(f.candidate, nullptr);
  EXPECT_EQ(f.send("POST", "/admin/v1/releases/" + id + "/rollback").status, 409);
  EXPECT_EQ(f.send("GET", "/admin/v1/releases/nope").status, 404);
  EXPECT_TRUE(f.store.commits.empty());
}

// Another node's release arrives through the store's watch: this node compiles the candidate,
// serves the share the store says, judges its own traffic, and ends with the release.
TEST(AdminApiReleases, ANodeFollowsAReleaseFromTheStore) {
  Fixture f;
  ASSERT_EQ(f.send("POST", "/admin/v1/upstreams", R"({"name": "u"})").status, 201);
  ReleaseRecord r;
  r.id = "r1-0001";
  r.node = "other:9901";
  r.base_revision = 1;
  r.percent = 5;
  r.changes.push_back({store::Kind::Routes, "r", json{{"name", "r"}, {"upstream", "u"}}});
  store::StoreUpdate update;
  update.releases.push_back({r.toJson(), 10});
  f.api.applyFromStore(update);
  EXPECT_EQ(f.candidate_percent, 5);
  EXPECT_EQ(f.send("POST", "/admin/v1/upstreams", R"({"name": "v"})").status, 409);
  r.percent = 25;
  update.releases = {{r.toJson(), 11}};
  f.api.applyFromStore(update);
  EXPECT_EQ(f.candidate_percent, 25);
  f.api.applyFromStore(update);  // the same event again changes nothing
  r.state = "promoted";
  update.releases = {{r.toJson(), 12}};
  f.api.applyFromStore(update);
  EXPECT_EQ(f.candidate, nullptr);
  EXPECT_EQ(f.send("POST", "/admin/v1/upstreams", R"({"name": "v"})").status, 201);
  // A value that is not a release is ignored.
  update.releases = {{json{{"id", 3}}, 13}};
  f.api.applyFromStore(update);
  EXPECT_EQ(json::parse(f.send("GET", "/admin/v1/releases").body)["data"].size(), 1u);

  // A release whose driving node is gone (not among the store's nodes: its lease expired) is
  // rolled back by a follower once an interval passed; nobody else would move it on.
  r.id = "r2-0002";
  r.state = "progressing";
  update.releases = {{r.toJson(), 14}};
  f.api.applyFromStore(update);
  EXPECT_EQ(f.candidate_percent, 25);
  f.traffic(0, 0, 0, 0, 31);
  EXPECT_EQ(f.candidate, nullptr);
  const auto gone = json::parse(f.send("GET", "/admin/v1/releases/r2-0002").body);
  EXPECT_EQ(gone["state"], "rolled_back");
  EXPECT_EQ(gone["reason"], "node other:9901 that drove the release is gone");
}

// A node that restarts finds the releases its store shares: it follows other nodes' running
// ones, keeps the history, and rolls back one it drove itself before the restart.
TEST(AdminApiReleases, ARestartedNodeJoinsRunningReleasesAndEndsItsOwn) {
  struct SharingStore final : MemoryStore {
    bool sharesReleases() const override { return true; }
    Result<std::vector<store::ReleaseEvent>> releases() override { return shared; }
    Result<std::uint64_t> putRelease(const std::string&, const json& value,
                                     std::uint64_t expected) override {
      for (auto& e : shared)
        if (e.value["id"] == value["id"]) {
          if (e.mod_revision != expected) return makeError(std::string(store::kConflict));
          e = {value, ++revision};
          return revision;
        }
      return makeError("unknown release");
    }
    std::vector<store::ReleaseEvent> shared;
  };
  Fixture f;
  SharingStore store;
  AdminApi api(store,
               ControlHooks{[](const store::EntitySet&, const std::vector<store::Change>&,
                               std::shared_ptr<const void>& prepared) {
                              prepared = std::make_shared<int>(2);
                              return std::vector<FieldError>{};
                            },
                            [](std::shared_ptr<const void>) {}, [] { return std::string("now"); },
                            [&](std::shared_ptr<const void> prepared, int percent) {
                              f.candidate = std::move(prepared);
                              f.candidate_percent = percent;
                            },
                            [&] { return f.totals; }, [&] { return f.clock; }});
  config::AdminConfig admin;
  admin.listen = "127.0.0.1:9901";
  api.setAdmin(admin);
  const auto release = [](std::string id, std::string node, std::string state) {
    ReleaseRecord r;
    r.id = std::move(id);
    r.node = std::move(node);
    r.state = std::move(state);
    r.percent = 25;
    r.changes.push_back({store::Kind::Upstreams, "u", json{{"name", "u"}}});
    return r.toJson();
  };
  store.shared = {{release("r1-old", "other:1", "promoted"), 3},
                  {release("r2-mine", api.self().id, "progressing"), 4},
                  {release("r3-theirs", "other:1", "progressing"), 5}};
  store.revision = 5;
  api.joinReleases();
  EXPECT_EQ(f.candidate_percent, 25);  // following r3
  EXPECT_EQ(store.shared[1].value["state"], "rolled_back");
  EXPECT_EQ(store.shared[1].value["reason"],
            "node " + api.self().id + " restarted during the release");
  EXPECT_EQ(store.shared[2].value["state"], "progressing");
}

TEST(AdminApiHelpers, RedactionAndItsReverse) {
  const json stored = json::parse(R"({"name": "alice", "credentials": {"key-auth": [{"key": "k1"}],
      "basic-auth": [{"username": "a", "password_hash": "$y$..."}]},
      "openapi": {"spec": {"components": {"securitySchemes": {"api_key": {"in": "header"}}}}}})");
  const json shown = redactCredentials(stored);
  EXPECT_EQ(shown["credentials"]["key-auth"][0]["key"], "<redacted>");
  EXPECT_EQ(shown["credentials"]["basic-auth"][0]["password_hash"], "<redacted>");
  EXPECT_EQ(shown["credentials"]["basic-auth"][0]["username"], "a");
  EXPECT_EQ(shown["openapi"], stored["openapi"]);  // a kept spec is not a credential
  json edited = shown;
  edited["groups"] = json::array({"gold"});
  const json back = restoreRedacted(edited, stored);
  EXPECT_EQ(back["credentials"], stored["credentials"]);
  EXPECT_EQ(back["groups"], json::array({"gold"}));
  EXPECT_EQ(jsonPointerOf("routes[3].match.path"), "/routes/3/match/path");
  EXPECT_EQ(jsonPointerOf(""), "");
}

TEST(OpenApiImport, InlinesRefsConvertsNullableAndBoundsRecursion) {
  const json spec = json::parse(R"({
    "openapi": "3.0.3", "info": {"version": 3},
    "paths": {"/nodes/{id}": {"put": {
      "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Node"}}}},
      "responses": {"200": {}}}}},
    "components": {"schemas": {"Node": {"type": "object", "example": {"x": 1},
      "properties": {"label": {"type": "string", "nullable": true},
                     "child": {"$ref": "#/components/schemas/Node"}}}}}})");
  auto out = importOpenApi(spec, {"tree", "svc", "", "/t", false});
  ASSERT_TRUE(out.ok()) << out.error().message;
  const json& route = (*out)["routes"][0];
  EXPECT_EQ(route["name"], "tree-put-nodes-id");
  EXPECT_EQ(route["match"]["path"], "/t/nodes/{id}");
  EXPECT_EQ(route["rewrite"], "/nodes/{id}");
  EXPECT_EQ((*out)["apis"][0]["version"], "3");
  const json& schema = route["plugins"][0]["config"]["body_schema"];
  EXPECT_EQ(schema["properties"]["label"]["type"], json::array({"string", "null"}));
  EXPECT_FALSE(schema.contains("example"));
  // The recursive reference is inlined 32 levels deep, then accepts anything.
  const json* node = &schema;
  int depth = 0;
  while (node->contains("properties") && (*node)["properties"].contains("child")) {
    node = &(*node)["properties"]["child"];
    ++depth;
  }
  EXPECT_EQ(depth, 32);
  EXPECT_TRUE(node->empty());
  EXPECT_FALSE(importOpenApi(json::parse(R"({"openapi": "3.0.0", "paths": {"/a": {"get": {
      "responses": {}}}}})"),
                             {"x", "", "", "", false})
                   .ok());  // no upstream and no servers
}

TEST(OpenApiImport, OddlyTypedSpecsAnswerWithoutThrowing) {
  // Found by openapi_fuzz: each threw out of importOpenApi (the Admin API dropped the
  // connection without an answer) or looped.
  const auto bad = importOpenApi(json::parse(R"({"openapi": []})"), {"x", "svc", "", "", false});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "openapi: expected 3.0.x or 3.1.x, got \"\"");
  const json spec = json::parse(R"({"openapi": "3.0.0",
    "servers": [{"url": "http://{host}:8080", "variables": {"host": {"default": "{host}"},
                                                             "other": []}}],
    "paths": {"/a": {"get": {"nullable": 1, "responses": {"29999999999": {}, "2xx": {}}}},
              "/b": {"get": {"responses": {"201": {"content": {"application/json": {
                "example": {"ok": true}}}}}}}}})");
  const auto live = importOpenApi(spec, {"x", "", "", "", false});  // upstream from servers[0]
  ASSERT_TRUE(live.ok()) << live.error().message;
  EXPECT_NE(live->dump().find("{host}:8080"), std::string::npos) << live->dump();
  const auto out = importOpenApi(spec, {"x", "", "", "", true});
  ASSERT_TRUE(out.ok()) << out.error().message;
  const json& routes = (*out)["routes"];
  ASSERT_EQ(routes.size(), 2u);
  EXPECT_EQ(routes[0]["plugins"].back()["config"]["status"], 200);  // "29999999999": not a status
  EXPECT_EQ(routes[1]["plugins"].back()["config"]["status"], 201);
}

TEST(OpenApiImport, RefusesRefsThatDoubleAtEveryLevel) {
  // A binary tree's two self-references: 2^32 values at the recursion bound, refused at once.
  const json spec = json::parse(R"({
    "openapi": "3.0.3",
    "paths": {"/trees": {"post": {
      "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/T"}}}},
      "responses": {"200": {}}}}},
    "components": {"schemas": {"T": {"type": "object",
      "properties": {"left": {"$ref": "#/components/schemas/T"},
                     "right": {"$ref": "#/components/schemas/T"}}}}}})");
  const auto out = importOpenApi(spec, {"tree", "svc", "", "", false});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().message.find("paths./trees: $refs inline to more than 250000 values"),
            std::string::npos)
      << out.error().message;
}

}  // namespace
}  // namespace portico::admin
