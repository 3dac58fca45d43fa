#include "admin/admin_api.h"

#include <spdlog/spdlog.h>

#include <openssl/crypto.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <fstream>
#include <sstream>

#include "admin/admin_reply.h"
#include "admin/openapi_import.h"
#include "config/config_tree.h"
#include "core/json_field.h"
#include "core/sha256.h"
#include "http/url.h"

namespace portico::admin {

using nlohmann::json;
using store::Change;
using store::Kind;

namespace {

constexpr std::string_view kPrefix = "/admin/v1/";
constexpr std::size_t kMaxName = 256;
constexpr std::size_t kDefaultPage = 100, kMaxPage = 1000;

// A document as JSON, or YAML when the client accepts it. Documents are config text (POST
// /config reads "$${" as a literal "${"), so both forms write a literal "${" as "$${": the
// export posted back is the same document. Entity bodies (PUT, POST, PATCH) are plain JSON and
// their answers are too.
AdminResponse answerDocument(const AdminRequest& request, const json& document) {
  const std::string* accept = request.header("accept");
  if (accept && accept->find("yaml") != std::string::npos)
    return {200, "application/yaml", config::toYaml(document), {}};
  return answer(200, config::escapeSubstitutions(document));
}

bool isWrite(const std::string& method) {
  return method == "POST" || method == "PUT" || method == "PATCH" || method == "DELETE";
}

std::string nameProblem(const std::string& name) {
  if (name.empty()) return "a name is required";
  if (name.size() > kMaxName) return "a name is at most 256 bytes";
  for (const char c : name) {
    if (c == '/') return "a name cannot contain /";
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      return "a name cannot contain control characters";
  }
  return "";
}

bool credentialKey(std::string key) {
  for (auto& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return key == "key" || key == "keys" || key == "api_key" ||
         key.find("password") != std::string::npos || key == "private_key" ||
         key.find("secret") != std::string::npos || key.find("token") != std::string::npos;
}

constexpr std::string_view kRedacted = "<redacted>";

json redactAll(json v) {
  if (v.is_array())
    for (auto& item : v) item = redactAll(std::move(item));
  else if (v.is_object())
    for (auto& [_, item] : v.items()) item = redactAll(std::move(item));
  else if (!v.is_null())
    v = kRedacted;
  return v;
}

// `If-Match` / `If-None-Match` against an object's revision (`exists` false: no object).
std::optional<AdminResponse> preconditionFails(const AdminRequest& req, bool exists,
                                               std::uint64_t revision) {
  const std::string current = "\"" + std::to_string(revision) + "\"";
  if (const std::string* m = req.header("if-match")) {
    const bool ok = exists && (*m == "*" || *m == current);
    if (!ok)
      return failure(412, exists ? "If-Match " + *m + " is stale: the revision is " + current
                                 : "If-Match " + *m + ": the object does not exist");
  }
  if (const std::string* n = req.header("if-none-match"); n && *n == "*" && exists)
    return failure(412, "If-None-Match *: the object exists");
  return std::nullopt;
}

bool contentTypeIs(const AdminRequest& req, std::initializer_list<std::string_view> types) {
  const std::string* ct = req.header("content-type");
  if (!ct) return false;
  std::string base = ct->substr(0, ct->find(';'));
  while (!base.empty() && base.back() == ' ') base.pop_back();
  for (auto& c : base) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return std::find(types.begin(), types.end(), base) != types.end();
}

// A JSON body, or the 400 to answer (with the parse position).
std::variant<json, AdminResponse> parseJsonBody(const std::string& body) {
  try {
    return json::parse(body);
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    if (const auto at = what.find("] "); at != std::string::npos) what = what.substr(at + 2);
    return failure(400, "malformed JSON: " + what);
  }
}

store::Labels parseLabels(const std::string& text) {
  store::Labels out;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t end = std::min(text.find(',', start), text.size());
    const std::string pair = text.substr(start, end - start);
    if (const auto eq = pair.find('='); eq != std::string::npos)
      out.emplace_back(pair.substr(0, eq), pair.substr(eq + 1));
    start = end + 1;
  }
  return out;
}

std::string queryValue(const AdminRequest& req, std::string_view name) {
  return http::findQueryParam(req.query, name).value;
}

}  // namespace

struct AdminApi::Caller {
  std::string actor = "anonymous";
  bool can_write = false;
};

nlohmann::json redactCredentials(nlohmann::json value) {
  if (value.is_array()) {
    for (auto& item : value) item = redactCredentials(std::move(item));
  } else if (value.is_object()) {
    for (auto& [key, item] : value.items()) {
      if (key == "openapi") continue;  // an API's kept spec names schemes, it holds no secrets
      item = credentialKey(key) ? redactAll(std::move(item)) : redactCredentials(std::move(item));
    }
  }
  return value;
}

nlohmann::json restoreRedacted(nlohmann::json incoming, const nlohmann::json& stored) {
  if (incoming.is_string() && incoming.get_ref<const std::string&>() == kRedacted)
    return stored.is_null() ? incoming : stored;
  if (incoming.is_object() && stored.is_object()) {
    for (auto& [key, item] : incoming.items())
      if (const auto it = stored.find(key); it != stored.end())
        item = restoreRedacted(std::move(item), *it);
  } else if (incoming.is_array() && stored.is_array()) {
    for (std::size_t i = 0; i < incoming.size() && i < stored.size(); ++i)
      incoming[i] = restoreRedacted(std::move(incoming[i]), stored[i]);
  }
  return incoming;
}

std::string jsonPointerOf(const std::string& config_path) {
  if (config_path.empty()) return "";
  std::string out = "/";
  for (const char c : config_path) {
    if (c == '.' || c == '[')
      out += '/';
    else if (c == '~')
      out += "~0";
    else if (c != ']')
      out += c;
  }
  return out;
}

AdminApi::AdminApi(store::EntityStore& store, ControlHooks hooks)
    : store_(store), hooks_(std::move(hooks)) {}

AdminResponse AdminApi::handle(const AdminRequest& request) {
  Caller caller;
  attempt_ = {};
  AdminResponse r = authorizeAndRoute(request, caller);
  // Every write is audited here, refused ones included: the token's name, never the token.
  if (isWrite(request.method)) audit(request, caller.actor, r.status);
  return r;
}

AdminResponse AdminApi::authorizeAndRoute(const AdminRequest& request, Caller& caller) {
  const bool write = isWrite(request.method);
  if (!admin_.tokens.empty()) {
    const std::string* auth = request.header("authorization");
    constexpr std::string_view kBearer = "Bearer ";
    if (!auth || auth->size() <= kBearer.size() || auth->compare(0, kBearer.size(), kBearer) != 0) {
      auto r = failure(401, "an Authorization: Bearer token is required");
      r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"portico-admin\"");
      return r;
    }
    const std::string digest = sha256Hex(std::string_view(*auth).substr(kBearer.size()));
    const config::AdminToken* match = nullptr;
    for (const auto& t : admin_.tokens)
      if (t.sha256.size() == digest.size() &&
          CRYPTO_memcmp(t.sha256.data(), digest.data(), digest.size()) == 0)
        match = &t;
    if (!match) {
      auto r = failure(401, "invalid token");
      r.headers.emplace_back("WWW-Authenticate",
                             "Bearer realm=\"portico-admin\", error=\"invalid_token\"");
      return r;
    }
    caller.actor = match->name;
    caller.can_write = match->write;
  }
  actor_ = caller.actor;
  if (write && !caller.can_write) {
    const auto r = failure(
        403, admin_.tokens.empty()
                 ? "the Admin API is read-only without server.admin.tokens"
                 : "token \"" + caller.actor + "\" has scope read: writing needs scope write");
    return r;
  }
  if (const ReleaseRecord* running = runningRelease();
      write && running && request.path.rfind("/admin/v1/releases/", 0) != 0)
    return failure(409, "release " + running->id +
                            " is in progress: writes wait until it is promoted or rolled back "
                            "(GET or POST /admin/v1/releases/" +
                            running->id + "/rollback)");
  if (write && !store_.writable()) {
    auto r =
        failure(405, "store: file — entities are edited in the config file (or use store: sqlite)");
    r.headers.emplace_back("Allow", "GET, HEAD");
    return r;
  }
  return route(request);
}

AdminResponse AdminApi::route(const AdminRequest& request) {
  const std::string rest = request.path.substr(kPrefix.size());
  std::vector<std::string> parts;
  for (std::size_t start = 0; start <= rest.size();) {
    const std::size_t end = std::min(rest.find('/', start), rest.size());
    parts.push_back(http::decodePathComponent(rest.substr(start, end - start)));
    start = end + 1;
  }
  if (!parts.empty() && parts.back().empty() && parts.size() > 1) parts.pop_back();
  const std::string& method = request.method;
  const bool read = method == "GET" || method == "HEAD";
  if (parts.size() == 1 && parts[0] == "revision" && read)
    return answer(200, {{"revision", entities_.revision}});
  if (parts.size() == 1 && parts[0] == "nodes" && read) return listNodes();
  if (!parts.empty() && parts[0] == "releases") return releases(parts, request);
  if (parts.size() == 1 && parts[0] == "audit" && read) {
    std::size_t limit = kDefaultPage;
    if (const auto l = queryValue(request, "limit"); !l.empty())
      limit = std::clamp<std::size_t>(std::strtoull(l.c_str(), nullptr, 10), 1, kMaxPage);
    auto records = store_.audit(limit);
    if (!records) return failure(503, records.error().message);
    json data = json::array();
    for (const auto& r : *records)
      data.push_back({{"time", r.time},
                      {"actor", r.actor},
                      {"method", r.method},
                      {"path", r.path},
                      {"status", r.status},
                      {"revision", r.revision},
                      {"diff", r.diff}});
    return answer(200, {{"data", std::move(data)}});
  }
  if (parts.size() == 1 && parts[0] == "config") {
    if (read) return answerDocument(request, redactCredentials(entities_.document()));
    if (method == "POST") return applyDocument(request);
    return notAllowed("GET, HEAD, POST");
  }
  if (parts.size() == 3 && parts[0] == "apis" && parts[2] == "openapi") {
    if (const auto problem = nameProblem(parts[1]); !problem.empty()) return failure(400, problem);
    if (read) return getSpec(parts[1], request);
    if (method == "POST") return importSpec(parts[1], request);
    return notAllowed("GET, HEAD, POST");
  }
  const auto kind = parts.empty() ? std::nullopt : store::kindFromName(parts[0]);
  if (!kind || parts.size() > 2) return failure(404, "not found: " + request.path);
  if (parts.size() == 1) {
    if (read) return list(*kind, request);
    if (method == "POST") return write(*kind, "", request);
    return notAllowed("GET, HEAD, POST");
  }
  if (const auto problem = nameProblem(parts[1]); !problem.empty()) return failure(400, problem);
  if (read) return getOne(*kind, parts[1]);
  if (method == "PUT" || method == "PATCH" || method == "DELETE")
    return write(*kind, parts[1], request);
  return notAllowed("GET, HEAD, PUT, PATCH, DELETE");
}

AdminResponse AdminApi::list(Kind kind, const AdminRequest& request) {
  std::size_t limit = kDefaultPage;
  if (const auto l = queryValue(request, "limit"); !l.empty()) {
    const auto n = std::strtoull(l.c_str(), nullptr, 10);
    if (n == 0 || n > kMaxPage) return failure(400, "limit must be between 1 and 1000");
    limit = n;
  }
  const std::string after = queryValue(request, "after");
  const store::Labels labels = parseLabels(queryValue(request, "label"));
  const auto& all = entities_.list(kind);
  std::size_t i = 0;
  if (!after.empty()) {
    while (i < all.size() && all[i].name != after) ++i;
    if (i == all.size())
      return failure(
          400, "after: no " + std::string(store::kindName(kind)) + " named \"" + after + "\"");
    ++i;
  }
  json data = json::array();
  std::string last;
  for (; i < all.size() && data.size() < limit; ++i) {
    const auto& e = all[i];
    if (!store::hasLabels(e.body, labels)) continue;
    data.push_back(redactCredentials(store::withMetadata(e)));
    last = e.name;
  }
  json out{{"data", std::move(data)}, {"next", nullptr}};
  if (i < all.size() && !last.empty()) out["next"] = last;
  return answer(200, out);
}

AdminResponse AdminApi::getOne(Kind kind, const std::string& name) {
  const store::Entity* e = entities_.find(kind, name);
  if (!e)
    return failure(404, "no " + std::string(store::kindName(kind)) + " named \"" + name + "\"");
  auto r = answer(200, redactCredentials(store::withMetadata(*e)));
  r.headers.emplace_back("ETag", "\"" + std::to_string(e->revision) + "\"");
  return r;
}

namespace {

// Who still names `name` of `kind` (routes by upstream, api or anonymous consumer).
std::vector<std::string> referrers(const store::EntitySet& set, Kind kind,
                                   const std::string& name) {
  const char* field = kind == Kind::Upstreams   ? "upstream"
                      : kind == Kind::Apis      ? "api"
                      : kind == Kind::Consumers ? "anonymous"
                                                : nullptr;
  std::vector<std::string> out;
  const auto names = [&](const store::Entity& e, const char* key) {
    const auto it = e.body.find(key);
    return it != e.body.end() && it->is_string() && it->get<std::string>() == name;
  };
  if (field)
    for (const auto& r : set.list(Kind::Routes))
      if (names(r, field)) out.push_back("routes/" + r.name);
  // Subscriptions name their application (a consumer), api and plan.
  if (const char* by = kind == Kind::Consumers ? "application"
                       : kind == Kind::Apis    ? "api"
                       : kind == Kind::Plans   ? "plan"
                                               : nullptr)
    for (const auto& sub : set.list(Kind::Subscriptions))
      if (names(sub, by)) out.push_back("subscriptions/" + sub.name);
  if (kind == Kind::Apis)  // plans list the APIs they open
    for (const auto& p : set.list(Kind::Plans)) {
      const auto apis = p.body.find("apis");
      if (apis != p.body.end() && apis->is_array() &&
          std::find(apis->begin(), apis->end(), json(name)) != apis->end())
        out.push_back("plans/" + p.name);
    }
  return out;
}

}  // namespace

AdminResponse AdminApi::write(Kind kind, const std::string& path_name,
                              const AdminRequest& request) {
  const std::string& method = request.method;
  const std::string kind_name(store::kindName(kind));
  std::string name = path_name;
  json body;
  if (method != "DELETE") {
    const bool patch = method == "PATCH";
    if (!contentTypeIs(
            request, patch ? std::initializer_list<std::string_view>{"application/json",
                                                                     "application/merge-patch+json"}
                           : std::initializer_list<std::string_view>{"application/json"}))
      return failure(415, patch ? "Content-Type must be application/merge-patch+json or "
                                  "application/json"
                                : "Content-Type must be application/json");
    auto parsed = parseJsonBody(request.body);
    if (auto* refusal = std::get_if<AdminResponse>(&parsed)) return *refusal;
    body = std::move(std::get<json>(parsed));
    if (!body.is_object()) return failure(400, "the body must be a JSON object");
    if (method == "POST") {
      const auto n = body.find("name");
      if (n == body.end() || !n->is_string()) return failure(400, "name: a string is required");
      name = n->get<std::string>();
      if (const auto problem = nameProblem(name); !problem.empty())
        return failure(400, "name: " + problem);
    }
  }
  const store::Entity* existing = entities_.find(kind, name);
  if (auto refused = preconditionFails(request, existing, existing ? existing->revision : 0))
    return *refused;
  if (method == "POST" && existing)
    return failure(409, kind_name + " \"" + name + "\" exists (PUT replaces it)");
  if ((method == "PATCH" || method == "DELETE") && !existing)
    return failure(404, "no " + kind_name + " named \"" + name + "\"");
  if (method == "DELETE") {
    if (const auto refs = referrers(entities_, kind, name); !refs.empty()) {
      return answer(409, {{"error", kind_name + " \"" + name + "\" is still referenced"},
                          {"status", 409},
                          {"referrers", refs}});
    }
    return commit({{kind, name, std::nullopt}}, 200,
                  {{"deleted", {{"kind", kind_name}, {"name", name}}}},
                  queryValue(request, "rollout") == "true");
  }
  if (method == "PATCH") {
    json merged = existing->body;
    merged.merge_patch(body);
    body = std::move(merged);
  }
  store::stripMetadata(body);
  if (const auto n = body.find("name"); n != body.end() && (!n->is_string() || *n != name))
    return failure(400, "name: the body names \"" + n->dump() + "\" but the path \"" + name +
                            "\" (a rename is a create and a delete)");
  body["name"] = name;
  if (existing) body = restoreRedacted(std::move(body), existing->body);
  if (kind == Kind::Apis && stringField(body, "state") == "deprecated" &&
      !body.contains("deprecated_at") &&
      !(existing && existing->body.value("state", "") == "deprecated"))
    body["deprecated_at"] = hooks_.now();
  const int status = existing ? 200 : 201;
  return commit({{kind, name, std::move(body)}}, status, nullptr,
                queryValue(request, "rollout") == "true");
}

store::NodeInfo AdminApi::self() const {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  const auto colon = admin_.listen.rfind(':');
  const std::string port =
      colon == std::string::npos ? admin_.listen : admin_.listen.substr(colon + 1);
  return {std::string(host) + ":" + port, admin_.listen, entities_.revision, store_error_, 0};
}

AdminResponse AdminApi::listNodes() {
  auto nodes = store_.nodes();
  if (!nodes) return failure(503, "the store is unreachable: " + nodes.error().message);
  const std::int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  if (nodes->empty()) {  // a store of one node: this one
    nodes->push_back(self());
    nodes->back().heartbeat_ms = now;
  }
  json data = json::array();
  for (const auto& n : *nodes)
    data.push_back({{"id", n.id},
                    {"address", n.address},
                    {"revision", n.revision},
                    {"error", n.error},
                    {"heartbeat_age_ms", std::max<std::int64_t>(0, now - n.heartbeat_ms)}});
  return answer(200, {{"data", std::move(data)}});
}

void AdminApi::applyFromStore(const store::StoreUpdate& update) {
  applyEntities(update);
  // After the entities: a promotion's changes arrive before the release says promoted.
  if (update.error.empty())
    for (const auto& r : update.releases) followRelease(r);
}

void AdminApi::applyEntities(const store::StoreUpdate& update) {
  if (!update.error.empty()) {
    store_error_ = "store: " + update.error;
    spdlog::warn("{} (serving the last config; catching up when it returns)", store_error_);
    reportStatus();
    return;
  }
  std::vector<Change> applied;
  if (update.reload) {  // the watch's history was compacted: read everything again
    auto fresh = store_.load();
    if (!fresh) {
      store_error_ = "store: " + fresh.error().message;
      return;
    }
    applied = store::plan(entities_, *fresh, true, {}).all();
    entities_ = std::move(*fresh);
  } else {
    for (const auto& ev : update.events) {
      const store::Entity* have = entities_.find(ev.change.kind, ev.change.name);
      // This node's own writes come back too: already applied, same revision.
      if (have ? have->revision >= ev.revision : !ev.change.body) continue;
      entities_.apply({ev.change}, ev.revision,
                      ev.updated_at.empty() ? hooks_.now() : ev.updated_at);
      applied.push_back(ev.change);
    }
    entities_.revision = std::max(entities_.revision, update.revision);
  }
  const bool recovered = !store_error_.empty();
  store_error_.clear();
  if (recovered) reportStatus();
  if (applied.empty()) return;
  std::shared_ptr<const void> prepared;
  if (const auto errors = hooks_.compile(entities_, applied, prepared); !errors.empty()) {
    store_error_ = "revision " + std::to_string(entities_.revision) +
                   " refused: " + errors.front().path + ": " + errors.front().message;
    spdlog::error("store: {} (the old config keeps serving)", store_error_);
    reportStatus();
    return;
  }
  hooks_.publish(std::move(prepared));
  reportStatus();
}

AdminResponse AdminApi::applyChanges(std::vector<Change> changes, const std::string& actor,
                                     const std::string& what) {
  AdminRequest request{"POST", what, "", "", "", {}, ""};
  attempt_ = {};
  actor_ = actor;
  AdminResponse r;
  if (const ReleaseRecord* running = runningRelease())
    r = failure(409, "release " + running->id + " is in progress: try again when it ends");
  else if (!store_.writable())
    r = failure(405, "store: file — entities are edited in the config file");
  else
    r = commit(std::move(changes), 200, json::object());
  audit(request, actor, r.status);
  return r;
}

AdminResponse AdminApi::commit(std::vector<Change> changes, int status, json body, bool rollout) {
  const std::string now = hooks_.now();
  const std::uint64_t next = entities_.revision + 1;
  attempt_.diff = diffOf(changes);
  const std::uint64_t base = entities_.revision;
  // The candidate is entities_ changed in place, put back if the write is refused: copying a
  // 10,000-route set per write (and freeing the old one) was a third of a write's time.
  store::EntitySet::Undo undo = entities_.apply(changes, next, now);
  for (std::size_t i = 0; i < changes.size(); ++i)
    if (const auto& before = undo.before[i].entity) changes[i].base_revision = before->revision;
  std::shared_ptr<const void> prepared;
  if (const auto errors = hooks_.compile(entities_, changes, prepared); !errors.empty()) {
    entities_.revert(std::move(undo));
    json list = json::array();
    for (const auto& e : errors) list.push_back({{"path", e.path}, {"message", e.message}});
    return answer(400, {{"errors", std::move(list)}, {"status", 400}});
  }
  if (rollout) {  // served beside the stable config, committed once it held every step
    entities_.revert(std::move(undo));
    return startRelease(std::move(changes), base, std::move(prepared), std::move(body));
  }
  auto stored = store_.commit(base, changes, now);
  if (!stored) {
    entities_.revert(std::move(undo));
    const bool conflict = stored.error().message == store::kConflict;
    return failure(conflict ? 409 : 503,
                   conflict ? "the store changed underneath this node: retry"
                            : "the store refused the write: " + stored.error().message);
  }
  entities_.revision = *stored;
  for (const auto& c : changes)  // the store's revision (etcd's is cluster-wide, not next)
    if (c.body) entities_.setRevision(c.kind, c.name, *stored);
  hooks_.publish(std::move(prepared));
  reportStatus();
  attempt_.revision = *stored;
  AdminResponse r;
  if (body.is_null() && changes.size() == 1 && changes[0].body) {
    r = getOne(changes[0].kind, changes[0].name);
    r.status = status;
  } else {
    if (body.is_null()) body = json::object();
    body["revision"] = *stored;
    r = answer(status, body);
  }
  r.headers.emplace_back("X-Portico-Revision", std::to_string(*stored));
  return r;
}

namespace {

// A document (entities, a spec) as its body says, JSON or YAML, or the 4xx to answer. No ${ENV}
// substitution: a client must not read the gateway's environment back.
std::variant<json, AdminResponse> parseDocumentBody(const AdminRequest& request) {
  const bool yaml = contentTypeIs(request, {"application/yaml", "application/x-yaml", "text/yaml"});
  if (!yaml && !contentTypeIs(request, {"application/json"}))
    return failure(415, "Content-Type must be application/json or application/yaml");
  config::ConfigTree tree;
  config::Diagnostics diag;
  config::parseConfigText(
      request.body, "request body", [](const std::string&) { return std::optional<std::string>(); },
      tree, diag);
  if (!diag.empty()) {
    json errors = json::array();
    for (const auto& d : diag.items())
      errors.push_back(
          {{"path", jsonPointerOf(d.path)},
           {"message", d.message + (d.location.empty() ? "" : " (" + d.location + ")")}});
    return answer(400, {{"errors", std::move(errors)}, {"status", 400}});
  }
  return std::move(tree.root);
}

}  // namespace

AdminResponse AdminApi::applyDocument(const AdminRequest& request) {
  if (auto refused = preconditionFails(request, true, entities_.revision)) return *refused;
  auto parsed = parseDocumentBody(request);
  if (auto* refusal = std::get_if<AdminResponse>(&parsed)) return *refusal;
  const json& root = std::get<json>(parsed);
  json errors = json::array();
  if (!root.is_object())
    errors.push_back({{"path", ""}, {"message", "expected a map of entity lists"}});
  if (errors.empty()) {
    for (const auto& [key, value] : root.items()) {
      if (key == "version") continue;
      const auto kind = store::kindFromName(key);
      if (!kind) {
        errors.push_back(
            {{"path", "/" + key},
             {"message",
              "\"" + key +
                  "\" is not an entity kind (routes, upstreams, "
                  "consumers, plugins, apis, plans, subscriptions, accounts); server and "
                  "listeners "
                  "stay in "
                  "the file"}});
        continue;
      }
      if (!value.is_array()) {
        errors.push_back({{"path", "/" + key}, {"message", "expected a list"}});
        continue;
      }
      for (std::size_t i = 0; i < value.size(); ++i) {
        const auto& item = value[i];
        const std::string at = "/" + key + "/" + std::to_string(i);
        if (!item.is_object() || !item.contains("name") || !item["name"].is_string())
          errors.push_back({{"path", at + "/name"}, {"message", "a string name is required"}});
        else if (const auto problem = nameProblem(item["name"]); !problem.empty())
          errors.push_back({{"path", at + "/name"}, {"message", problem}});
      }
    }
  }
  for (const auto& [path, message] : store::duplicateNames(root))
    errors.push_back({{"path", jsonPointerOf(path)}, {"message", message}});
  if (!errors.empty()) return answer(400, {{"errors", std::move(errors)}, {"status", 400}});

  store::EntitySet desired = store::EntitySet::fromDocument(root);
  for (const Kind k : store::kKinds)
    for (const auto& e : desired.list(k))
      if (const store::Entity* old = entities_.find(k, e.name))
        desired.put(k, {e.name, restoreRedacted(e.body, old->body), 0, "", ""});
  return planAndApply(desired, queryValue(request, "prune") != "false",
                      parseLabels(queryValue(request, "prune_labels")), request);
}

AdminResponse AdminApi::planAndApply(const store::EntitySet& desired, bool prune,
                                     const store::Labels& prune_labels,
                                     const AdminRequest& request) {
  const store::Plan p = store::plan(entities_, desired, prune, prune_labels);
  json out = store::summary(p);
  out["errors"] = json::array();
  if (queryValue(request, "dry_run") == "true") {
    store::EntitySet candidate =
        store::applyChanges(entities_, p.all(), entities_.revision + 1, hooks_.now());
    std::shared_ptr<const void> prepared;
    for (const auto& e : hooks_.compile(candidate, p.all(), prepared))
      out["errors"].push_back({{"path", e.path}, {"message", e.message}});
    out["revision"] = entities_.revision;
    return answer(200, out);
  }
  if (p.empty()) {
    out["revision"] = entities_.revision;
    auto r = answer(200, out);
    r.headers.emplace_back("X-Portico-Revision", std::to_string(entities_.revision));
    return r;
  }
  out.erase("errors");
  return commit(p.all(), 200, std::move(out), queryValue(request, "rollout") == "true");
}

AdminResponse AdminApi::importSpec(const std::string& api, const AdminRequest& request) {
  auto parsed = parseDocumentBody(request);
  if (auto* refusal = std::get_if<AdminResponse>(&parsed)) return *refusal;
  OpenApiImport options;
  options.api = api;
  options.upstream = queryValue(request, "upstream");
  options.state = queryValue(request, "state");
  options.base_path = queryValue(request, "base_path");
  options.mock = queryValue(request, "mock") == "true";
  // A re-import keeps what the API already had unless the request says otherwise.
  if (const store::Entity* existing = entities_.find(Kind::Apis, api)) {
    if (options.state.empty()) options.state = existing->body.value("state", "");
    if (options.base_path.empty()) options.base_path = existing->body.value("base_path", "");
  }
  auto generated = importOpenApi(std::get<json>(parsed), options);
  if (!generated)
    return answer(
        400, {{"errors", json::array({{{"path", ""}, {"message", generated.error().message}}})},
              {"status", 400}});
  const store::EntitySet desired = store::EntitySet::fromDocument(*generated);
  // Names the import would take from objects it did not make: refused, never overwritten.
  for (const Kind k : store::kKinds)
    for (const auto& e : desired.list(k)) {
      const store::Entity* old = entities_.find(k, e.name);
      if (!old || k == Kind::Apis) continue;
      const auto labels = old->body.find("labels");
      if (labels == old->body.end() || labels->value(kOpenApiLabel, "") != api)
        return failure(409, std::string(store::kindName(k)) + " \"" + e.name +
                                "\" exists and was not imported from api \"" + api + "\"");
    }
  return planAndApply(desired, true, {{kOpenApiLabel, api}}, request);
}

AdminResponse AdminApi::getSpec(const std::string& api, const AdminRequest& request) {
  const store::Entity* e = entities_.find(Kind::Apis, api);
  if (!e) return failure(404, "no apis named \"" + api + "\"");
  const auto openapi = e->body.find("openapi");
  if (openapi != e->body.end() && openapi->is_object() && openapi->contains("file") &&
      (*openapi)["file"].is_string()) {
    // `openapi: {file: …}` (a file-configured API): the file as written.
    const std::string file = (*openapi)["file"].get<std::string>();
    std::ifstream in(file, std::ios::binary);
    if (!in) return failure(404, "api \"" + api + "\": cannot read " + file);
    std::ostringstream text;
    text << in.rdbuf();
    const std::string body = text.str();
    const auto first = body.find_first_not_of(" \t\r\n");
    const bool json_text = first != std::string::npos && body[first] == '{';
    return {200, json_text ? "application/json" : "application/yaml", body, {}};
  }
  if (openapi == e->body.end() || !openapi->is_object() || !openapi->contains("spec"))
    return failure(404, "api \"" + api + "\" keeps no OpenAPI spec");
  return answerDocument(request, (*openapi)["spec"]);
}

json AdminApi::diffOf(const std::vector<Change>& changes) const {
  json diff = json::array();
  for (const auto& c : changes) {
    const store::Entity* before = entities_.find(c.kind, c.name);
    json entry{{"kind", store::kindName(c.kind)},
               {"name", c.name},
               {"op", !c.body  ? "delete"
                      : before ? "update"
                               : "create"}};
    if (before) entry["before"] = redactCredentials(before->body);
    if (c.body) entry["after"] = redactCredentials(*c.body);
    diff.push_back(std::move(entry));
  }
  return diff;
}

void AdminApi::audit(const AdminRequest& request, const std::string& actor, int status) {
  store::AuditRecord r;
  r.time = hooks_.now();
  r.actor = actor;
  r.method = request.method;
  r.path = request.path + (request.query.empty() ? "" : "?" + request.query);
  r.status = status;
  r.revision = attempt_.revision;
  r.diff = std::move(attempt_.diff);
  (void)store_.appendAudit(r);  // an audit failure does not undo a stored write
}

}  // namespace portico::admin
