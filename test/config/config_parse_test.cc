#include <gtest/gtest.h>

#include "config/config_tree.h"
#include "config/model_parser.h"
#include "config/reader.h"

namespace portico::config {
namespace {

struct Parsed {
  Config config;
  std::string errors;
};

Parsed parse(const std::string& text, std::map<std::string, std::string> env = {}) {
  ConfigTree tree;
  Diagnostics diag;
  EnvLookup lookup = [&](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  parseConfigText(text, "t.yaml", lookup, tree, diag);
  Parsed p;
  if (diag.empty()) p.config = parseModel(tree.root, diag);
  p.errors = diag.format();
  return p;
}

constexpr const char* kMinimal = R"(version: 1
listeners: [ { name: main, listen: "127.0.0.1:8080" } ]
)";

TEST(ConfigParse, MinimalConfigHasDefaults) {
  auto p = parse(kMinimal);
  EXPECT_EQ(p.errors, "");
  EXPECT_EQ(p.config.server.workers, 0);
  EXPECT_EQ(p.config.server.admin.listen, "127.0.0.1:9901");
  EXPECT_EQ(p.config.server.limits.max_header_bytes, 64u * 1024);
  EXPECT_EQ(p.config.server.limits.header_timeout, std::chrono::seconds(10));
  EXPECT_EQ(p.config.server.drain_timeout, std::chrono::seconds(30));
}

TEST(ConfigParse, Plans) {
  auto p = parse(std::string(kMinimal) + R"(
apis: [ { name: items, base_path: /items } ]
plans:
  - name: free
    apis: [ items ]
    limits: [ { requests: 5, per: 1m } ]
    quota: { requests: 1000, per: day }
  - { name: gold, apis: [ items ], approval: manual }
)");
  ASSERT_EQ(p.errors, "");
  ASSERT_EQ(p.config.plans.size(), 2u);
  const auto& free = p.config.plans[0];
  EXPECT_EQ(free.apis, (std::vector<std::string>{"items"}));
  ASSERT_EQ(free.limits.size(), 1u);
  EXPECT_EQ(free.limits[0].requests, 5u);
  EXPECT_EQ(free.limits[0].per, std::chrono::minutes(1));
  ASSERT_TRUE(free.quota);
  EXPECT_EQ(free.quota->per, "day");
  EXPECT_EQ(free.approval, PlanConfig::Approval::Auto);
  EXPECT_EQ(p.config.plans[1].approval, PlanConfig::Approval::Manual);

  p = parse(std::string(kMinimal) + R"(
plans:
  - name: bad
    apis: [ nope ]
    limits: [ { per: 0s } ]
    quota: { requests: 10, per: week }
    approval: sometimes
  - { name: bad }
)");
  for (const char* want :
       {"plans[0].apis[0]: unknown api \"nope\"", "plans[0].limits[0].requests: is required",
        "plans[0].limits[0].per: is required and positive",
        "plans[0].quota.per: unknown period \"week\" (hour, day, month)",
        "plans[0].approval: unknown approval \"sometimes\" (auto, manual)",
        "plans[1].name: duplicate name \"bad\""})
    EXPECT_NE(p.errors.find(want), std::string::npos) << want << "\n" << p.errors;
}

TEST(ConfigParse, Rollout) {
  auto p = parse(std::string(kMinimal) + R"(
server:
  rollout:
    steps: [10, 100]
    interval: 5s
    guard: { max_5xx_ratio_increase: 0.05, max_p99_ratio: 2, min_requests: 50 }
)");
  ASSERT_EQ(p.errors, "");
  const auto& r = p.config.server.rollout;
  EXPECT_EQ(r.steps, (std::vector<int>{10, 100}));
  EXPECT_EQ(r.interval, std::chrono::seconds(5));
  EXPECT_DOUBLE_EQ(r.max_5xx_ratio_increase, 0.05);
  EXPECT_DOUBLE_EQ(r.max_p99_ratio, 2);
  EXPECT_EQ(r.min_requests, 50u);
  EXPECT_EQ(parse(kMinimal).config.server.rollout.steps, (std::vector<int>{5, 25, 100}));

  p = parse(std::string(kMinimal) + R"(
server:
  rollout:
    steps: [25, 5, 0]
    interval: 0s
    guard: { max_5xx_ratio_increase: 2, max_p99_ratio: 0.5, min_requests: 0 }
)");
  for (const char* want :
       {"server.rollout.steps[1]: steps must be ascending",
        "server.rollout.steps[2]: must be between 1 and 100, got 0",
        "server.rollout.steps: the last step must be 100",
        "server.rollout.interval: must be at least 1s",
        "server.rollout.guard.max_5xx_ratio_increase: must be a number from 0 to 1",
        "server.rollout.guard.max_p99_ratio: must be a number from 1 to 1000",
        "server.rollout.guard.min_requests: must be between 1 and 100000000, got 0"})
    EXPECT_NE(p.errors.find(want), std::string::npos) << want << "\n" << p.errors;
}

TEST(ConfigParse, FullUpstreamAndRoute) {
  auto p = parse(std::string(kMinimal) + R"(
server: { workers: 3, limits: { max_body_bytes: 2MiB, idle_timeout: 5s } }
upstreams:
  - name: users
    targets: [ { address: "127.0.0.1:9001", weight: 3 }, "127.0.0.1:9002" ]
    balance: consistent_hash
    hash: { on: header, name: X-User, algorithm: maglev }
    timeouts: { connect: 250ms, read: 2s, total: 5s }
    retries: { attempts: 3, on_statuses: [502, 503] }
    pool: { max_idle: 8, idle_timeout: 30s }
routes:
  - name: r
    match: { hosts: ["API.example.com"], path: "/u/{id}", methods: [get], headers: { X-A: b },
             query: [ { name: v, regex: "[0-9]+" } ] }
    rewrite: "/users/{id}"
    priority: 4
    upstream: users
    plugins: [ { name: request-id } ]
)");
  ASSERT_EQ(p.errors, "");
  const auto& u = p.config.upstreams.at(0);
  EXPECT_EQ(p.config.server.workers, 3);
  EXPECT_EQ(p.config.server.limits.max_body_bytes, 2u * 1024 * 1024);
  EXPECT_EQ(u.targets.size(), 2u);
  EXPECT_EQ(u.targets[0].weight, 3u);
  EXPECT_EQ(u.targets[1].weight, 1u);
  EXPECT_EQ(u.balance, Balance::ConsistentHash);
  EXPECT_EQ(u.hash.on, HashConfig::On::Header);
  EXPECT_EQ(u.hash.algorithm, HashConfig::Algorithm::Maglev);
  EXPECT_EQ(u.timeouts.connect.count(), 250);
  EXPECT_EQ(u.retries.on_statuses, (std::vector<int>{502, 503}));
  const auto& r = p.config.routes.at(0);
  EXPECT_EQ(r.match.hosts, std::vector<std::string>{"api.example.com"});
  EXPECT_EQ(r.match.methods, std::vector<std::string>{"GET"});
  EXPECT_EQ(r.match.headers.at(0).exact, "b");
  EXPECT_EQ(r.match.query.at(0).regex, "[0-9]+");
  EXPECT_EQ(r.priority, 4);
  EXPECT_EQ(r.plugins.at(0).name, "request-id");
}

TEST(ConfigParse, ReportsEveryErrorWithPathAndLocation) {
  auto p = parse(R"(version: 2
listeners: [ { name: main, listen: "127.0.0.1:8080", backlog: 5 } ]
upstreams:
  - name: u
    targets: [ "nohost" ]
    balance: fastest
    retries: { attempts: 99 }
routes:
  - name: r
    match: { path: "/a", path_prefix: "/b" }
    upstream: missing
  - name: r
    upstream: u
bogus: true
)");
  EXPECT_NE(p.errors.find("version: must be between 1 and 1, got 2 (t.yaml:1:10)"),
            std::string::npos)
      << p.errors;
  EXPECT_NE(p.errors.find("listeners[0].backlog: unknown key \"backlog\" (t.yaml:2:54)"),
            std::string::npos)
      << p.errors;
  EXPECT_NE(p.errors.find("upstreams[0].targets[0]: address must be host:port"), std::string::npos);
  EXPECT_NE(p.errors.find("upstreams[0].balance: unknown balance \"fastest\""), std::string::npos);
  EXPECT_NE(p.errors.find("upstreams[0].retries.attempts: must be between 1 and 10, got 99"),
            std::string::npos);
  EXPECT_NE(p.errors.find("routes[0].match: give only one of path, path_prefix, path_regex"),
            std::string::npos);
  EXPECT_NE(p.errors.find("routes[0].upstream: unknown upstream \"missing\" (t.yaml:11:15)"),
            std::string::npos);
  EXPECT_NE(p.errors.find("routes[1].name: duplicate name \"r\" (also routes[0])"),
            std::string::npos);
  EXPECT_NE(p.errors.find("bogus: unknown key \"bogus\" (t.yaml:14:1)"), std::string::npos);
}

TEST(ConfigParse, EnvironmentSubstitution) {
  const std::string text = std::string(kMinimal) + R"(
upstreams: [ { name: u, targets: [ "${HOST}:${PORT}" ] } ]
consumers: [ { name: alice, credentials: { key-auth: [ { key: "${ALICE_KEY}" } ] } } ]
)";
  auto missing = parse(text, {{"HOST", "127.0.0.1"}, {"PORT", "9000"}});
  EXPECT_NE(missing.errors.find("consumers[0].credentials.key-auth[0].key: environment variable "
                                "ALICE_KEY is not set (t.yaml:5:63)"),
            std::string::npos)
      << missing.errors;
  auto ok = parse(text, {{"HOST", "127.0.0.1"}, {"PORT", "9000"}, {"ALICE_KEY", "s3cret"}});
  ASSERT_EQ(ok.errors, "");
  EXPECT_EQ(ok.config.upstreams[0].targets[0].address, "127.0.0.1:9000");
  EXPECT_EQ(ok.config.consumers[0].credentials["key-auth"][0]["key"], "s3cret");
}

TEST(ConfigParse, SecretsAreRedacted) {
  ConfigTree tree;
  Diagnostics diag;
  parseConfigText(
      "a: ${S}\nb: plain\n", "t.yaml",
      [](const std::string&) { return std::optional<std::string>("hidden"); }, tree, diag);
  auto j = redacted(tree);
  EXPECT_EQ(j["a"], "<redacted>");
  EXPECT_EQ(j["b"], "plain");
}

TEST(ConfigParse, SyntaxErrorHasLocation) {
  auto p = parse("version: 1\nlisteners: [ { name: a\n");
  EXPECT_NE(p.errors.find("syntax error"), std::string::npos);
  EXPECT_NE(p.errors.find("t.yaml:"), std::string::npos);
}

TEST(ConfigParse, DuplicateKeysAreErrors) {
  auto p = parse("version: 1\nversion: 1\nlisteners: []\n");
  EXPECT_NE(p.errors.find("version: duplicate key \"version\" (t.yaml:2:1)"), std::string::npos)
      << p.errors;
}

TEST(ConfigParse, JsonIsAccepted) {
  auto p = parse(R"({"version": 1, "listeners": [{"name": "m", "listen": "127.0.0.1:1"}],
                     "server": {"limits": {"max_body_bytes": "1KiB"}}})");
  EXPECT_EQ(p.errors, "");
  EXPECT_EQ(p.config.server.limits.max_body_bytes, 1024u);
}

}  // namespace
}  // namespace portico::config

namespace portico::config {
namespace {

// JSON input takes the fast path; errors still carry positions, found lazily.
TEST(ConfigParseJson, SameModelAndLocatedErrors) {
  auto ok = parse(R"({"version": 1, "listeners": [{"name": "main", "listen": "127.0.0.1:8080"}],
    "upstreams": [{"name": "u", "targets": ["${HOST}:80"]}]})",
                  {{"HOST", "10.0.0.1"}});
  ASSERT_EQ(ok.errors, "");
  EXPECT_EQ(ok.config.upstreams[0].targets[0].address, "10.0.0.1:80");
  auto bad = parse(R"({"version": 1,
 "listeners": [{"name": "main", "listen": "127.0.0.1:8080", "backlog": 5}]})");
  EXPECT_NE(bad.errors.find("listeners[0].backlog: unknown key \"backlog\" (t.yaml:2:61)"),
            std::string::npos)
      << bad.errors;
}

TEST(ConfigParseJson, DuplicateKeysAreRefused) {
  auto p = parse(R"({"version": 1, "listeners": [{"name": "a", "name": "b", "listen": "x:1"}]})");
  EXPECT_NE(p.errors.find("listeners[0].name: duplicate key \"name\""), std::string::npos)
      << p.errors;
}

TEST(ConfigParseJson, SyntaxErrorsAreReported) {
  auto p = parse("{\"version\": 1, \"listeners\": [");
  EXPECT_NE(p.errors.find("syntax error"), std::string::npos) << p.errors;
}

TEST(ConfigParseJson, EnvironmentValuesAreSecrets) {
  ConfigTree tree;
  Diagnostics diag;
  parseConfigText(R"({"a": "${S}", "b": ["x", {"c": "${S}"}]})", "t.json",
                  [](const std::string&) { return std::optional<std::string>("hidden"); }, tree,
                  diag);
  ASSERT_TRUE(diag.empty()) << diag.format();
  EXPECT_EQ(tree.root["a"], "hidden");
  auto j = redacted(tree);
  EXPECT_EQ(j["a"], "<redacted>");
  EXPECT_EQ(j["b"][1]["c"], "<redacted>");
  EXPECT_EQ(j["b"][0], "x");
}

// A store's entities are parsed where they lie, as if the document listed them: same paths in
// errors, same whole-config checks (a route naming an upstream of the lists).
TEST(ConfigParse, ExternalSectionsStandInForTheDocumentsLists) {
  const auto root = nlohmann::json::parse(
      R"({"version": 1, "listeners": [{"name": "main", "listen": "127.0.0.1:8080"}]})");
  const nlohmann::json up = {{"name", "u"}, {"targets", {"127.0.0.1:9001"}}};
  const nlohmann::json good = {{"name", "a"}, {"match", {{"path", "/a"}}}, {"upstream", "u"}};
  const nlohmann::json bad = {{"name", "b"}, {"match", {{"path", "/b"}}}, {"upstream", "nope"}};
  ExternalSections sections = {{"upstreams", {&up}}, {"routes", {&good, &bad}}};
  Diagnostics diag;
  const Config c = parseModel(root, diag, nullptr, &sections);
  ASSERT_EQ(c.routes.size(), 2u);
  EXPECT_EQ(c.routes[1].path, "routes[1]");
  EXPECT_NE(diag.format().find("routes[1].upstream: unknown upstream \"nope\""), std::string::npos)
      << diag.format();
}

TEST(ConfigParse, RefusesTextThatIsNotUtf8OrWouldExhaustTheParsers) {
  // JSON's parser refuses it; the YAML reader would keep the bytes in names and values.
  auto p = parse(std::string(kMinimal) + "routes:\n  - { name: \"r\xff\", upstream: u }\n");
  EXPECT_NE(p.errors.find("not valid UTF-8 (t.yaml:4:15)"), std::string::npos) << p.errors;
  p = parse(std::string(kMinimal) + "upstreams: [ { name: \"${NAME}\", targets: [ \"a:1\" ] } ]\n",
            {{"NAME", "u\xc0\xaf"}});
  EXPECT_NE(p.errors.find("upstreams[0].name: environment variable NAME is not valid UTF-8"),
            std::string::npos)
      << p.errors;
  p = parse(R"({"version": 1, "listeners": [{"name": "m\u00e9", "listen": "127.0.0.1:1"}]})");
  EXPECT_EQ(p.errors, "");
  p = parse("{\"version\": 1, \"x\": \"\xff\"}");
  EXPECT_NE(p.errors, "");
  // Nesting that would run the parsers' recursion off the stack, and aliases that expand.
  p = parse(std::string(kMinimal) + "x: " + std::string(300, '[') + std::string(300, ']'));
  EXPECT_NE(p.errors.find("nested more than 256 levels deep (t.yaml:3:260)"), std::string::npos)
      << p.errors;
  p = parse("{\"x\": " + std::string(300, '[') + std::string(300, ']') + "}");
  EXPECT_NE(p.errors.find("nested more than 256 levels deep (t.yaml:1:262)"), std::string::npos)
      << p.errors;
  std::string laughs = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 7; ++i) {
    laughs += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int k = 0; k < 10; ++k) laughs += (k ? ", *a" : "*a") + std::to_string(i - 1);
    laughs += "]\n";
  }
  p = parse(laughs);
  EXPECT_NE(p.errors.find("aliases repeat more values than the text holds"), std::string::npos)
      << p.errors;
  p = parse(std::string(kMinimal) + "base: &base { name: u, targets: [ \"a:1\" ] }\n");
  EXPECT_EQ(p.errors.find("aliases"), std::string::npos) << p.errors;  // a modest alias is fine
  // NUL bytes up front would make the YAML reader decode the text as UTF-32.
  p = parse(std::string("\x01\0\0\0\0\0\0\x01LUNL", 12));
  EXPECT_NE(p.errors.find("a NUL byte (t.yaml:1:2)"), std::string::npos) << p.errors;
}

TEST(ConfigParse, YamlExportReadsBackAsTheSameTree) {
  ConfigTree tree;
  Diagnostics diag;
  const EnvLookup none = [](const std::string&) -> std::optional<std::string> {
    return std::nullopt;
  };
  // Literal "${" (written "$${"), quotes, a number-like string, a unicode escape, a control.
  parseConfigText(
      "a: \"x $${HOME} y $$${\"\nb: [ \"1.0\", 2, true, null, \"\\u00e9\\x01\" ]\nc: { d: "
      "\"'\\\"\" }\n",
      "t.yaml", none, tree, diag);
  ASSERT_TRUE(diag.empty()) << diag.format();
  EXPECT_EQ(tree.root["a"], "x ${HOME} y $${");
  ConfigTree again;
  parseConfigText(toYaml(tree.root), "again.yaml", none, again, diag);
  EXPECT_TRUE(diag.empty()) << diag.format() << toYaml(tree.root);
  EXPECT_EQ(again.root, tree.root) << toYaml(tree.root);
}

// The JSON export's escaping: the same tree back through the config text reader.
TEST(ConfigParse, EscapedJsonReadsBackAsTheSameTree) {
  const auto tree = nlohmann::json::parse(
      R"({"a": "x ${HOME} y $${", "b": ["${", "$", "no brace", 1, null], "c": {"d": "${X}"}})");
  const auto escaped = escapeSubstitutions(tree);
  EXPECT_EQ(escaped["a"], "x $${HOME} y $$${");
  EXPECT_EQ(escaped["b"][2], "no brace");
  ConfigTree back;
  Diagnostics diag;
  parseConfigText(
      escaped.dump(), "back.json",
      [](const std::string&) -> std::optional<std::string> { return "from the environment"; }, back,
      diag);
  EXPECT_TRUE(diag.empty()) << diag.format();
  EXPECT_EQ(back.root, tree);
}

enum class Mode { A, B, C };

TEST(ObjectReaderChoice, SetsTheNamedValueAndLeavesAnAbsentKeyAlone) {
  Diagnostics diag;
  const auto node = nlohmann::json::parse(R"({"mode": "b"})");
  ObjectReader r(node, "x", diag);
  Mode mode = Mode::C;
  EXPECT_TRUE(r.choice("mode", {{"a", Mode::A}, {"b", Mode::B}}, mode));
  EXPECT_EQ(mode, Mode::B);
  Mode other = Mode::C;
  EXPECT_TRUE(r.choice("other", {{"a", Mode::A}, {"b", Mode::B}}, other));
  EXPECT_EQ(other, Mode::C);
  r.finish();
  EXPECT_TRUE(diag.empty()) << diag.format();
}

TEST(ObjectReaderChoice, NamesTheChoicesForAnyOtherValue) {
  Diagnostics diag;
  const auto node =
      nlohmann::json::parse(R"({"mode": "fastest", "empty": "", "number": 5, "on_fail": "x"})");
  ObjectReader r(node, "x", diag);
  Mode mode = Mode::C, empty = Mode::C, number = Mode::C, on_fail = Mode::C;
  EXPECT_FALSE(r.choice("mode", {{"a", Mode::A}, {"b", Mode::B}}, mode));
  EXPECT_FALSE(r.choice("empty", {{"a", Mode::A}}, empty));
  EXPECT_FALSE(r.choice("number", {{"a", Mode::A}}, number));
  EXPECT_FALSE(r.choice("on_fail", {{"a", Mode::A}}, on_fail, "policy"));
  r.finish();
  EXPECT_EQ(mode, Mode::C);
  EXPECT_EQ(empty, Mode::C);
  EXPECT_EQ(number, Mode::C);
  const std::string errors = diag.format();
  EXPECT_NE(errors.find("x.mode: unknown mode \"fastest\" (a, b)"), std::string::npos) << errors;
  EXPECT_NE(errors.find("x.empty: unknown empty \"\" (a)"), std::string::npos) << errors;
  EXPECT_NE(errors.find("x.number:"), std::string::npos) << errors;
  EXPECT_NE(errors.find("x.on_fail: unknown policy \"x\" (a)"), std::string::npos) << errors;
}

TEST(ConfigParse, UpstreamChoicesAreChecked) {
  auto p = parse(std::string(kMinimal) + R"(upstreams:
  - name: a
    targets: [ "127.0.0.1:1" ]
    balance: consistent_hash
    hash: { on: ip, algorithm: maglev }
    protocol: h2c
  - name: b
    targets: [ "127.0.0.1:1" ]
    protocol: h2
)");
  EXPECT_NE(p.errors.find("upstreams[1].protocol: h2 needs a tls block"), std::string::npos)
      << p.errors;
  EXPECT_EQ(p.errors.find("upstreams[0]"), std::string::npos) << p.errors;

  p = parse(std::string(kMinimal) + R"(upstreams:
  - name: a
    targets: [ "127.0.0.1:1" ]
    balance: consistent_hash
    hash: { on: body }
  - name: b
    targets: [ "127.0.0.1:1" ]
    balance: consistent_hash
    hash: { on: header }
  - name: c
    targets: [ "127.0.0.1:1" ]
    balance: consistent_hash
    hash: { algorithm: ring }
store: { type: disk }
)");
  for (const char* error :
       {"upstreams[0].hash.on: unknown hash key \"body\" (header, cookie, ip, path)",
        "upstreams[1].hash.name: is required when hashing on header",
        "upstreams[2].hash.on: is required", "store.type: unknown store type \"disk\""})
    EXPECT_NE(p.errors.find(error), std::string::npos) << error << "\n" << p.errors;
}

}  // namespace
}  // namespace portico::config
