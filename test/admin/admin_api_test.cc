#include "admin/admin_api.h"

#include <gtest/gtest.h>

#include "admin/openapi_import.h"
#include "core/sha256.h"

namespace portico::admin {
namespace {

using nlohmann::json;

// A store in memory that records commits: enough for the API's logic without SQLite.
class MemoryStore final : public store::EntityStore {
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
                   [] { return std::string("2026-12-04T00:00:00Z"); }}};

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

}  // namespace
}  // namespace portico::admin
