#include "admin/admin_cli.h"

#include <fstream>
#include <future>
#include <ostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "admin/admin_api.h"
#include "client/http_client.h"
#include "config/config_tree.h"
#include "config/model_parser.h"
#include "http/url.h"
#include "store/etcd_store.h"
#include "store/sqlite_store.h"

namespace portico::admin {
namespace {

api::HttpResponse call(const CliTarget& target, std::string method, const std::string& path,
                       std::string body, const std::string& content_type,
                       const std::string& accept = "application/json") {
  client::HttpClient http;
  api::HttpRequest req;
  req.method = std::move(method);
  req.url = target.admin + "/admin/v1" + path;
  req.body = std::move(body);
  req.timeout = std::chrono::minutes(5);  // a 10,000-route apply takes a while
  req.max_response_bytes = 256 * 1024 * 1024;
  if (!target.token.empty()) req.headers.add("Authorization", "Bearer " + target.token);
  if (!content_type.empty()) req.headers.add("Content-Type", content_type);
  req.headers.add("Accept", accept);
  std::promise<api::HttpResponse> answer;
  auto done = answer.get_future();
  http.fetch(std::move(req), [&answer](api::HttpResponse r) { answer.set_value(std::move(r)); });
  return done.get();
}

bool readFile(const std::string& path, std::string& out, std::ostream& err) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    err << "portico: cannot read " << path << "\n";
    return false;
  }
  std::ostringstream s;
  s << in.rdbuf();
  out = s.str();
  return true;
}

// Prints a plan ("+ routes/a", "~ ...", "- ...") and its errors; returns how many changes.
std::size_t printPlan(const nlohmann::json& plan, std::ostream& out, std::ostream& err) {
  std::size_t changes = 0;
  for (const auto& [key, mark] : {std::pair{"create", "+"}, {"update", "~"}, {"delete", "-"}}) {
    if (!plan.contains(key)) continue;
    for (const auto& c : plan[key]) {
      out << mark << " " << c.value("kind", "") << "/" << c.value("name", "") << "\n";
      ++changes;
    }
  }
  if (plan.contains("errors"))
    for (const auto& e : plan["errors"])
      err << "! " << e.value("path", "") << ": " << e.value("message", "") << "\n";
  return changes;
}

// The answer as JSON, or an explanation on `err` (unreachable: 2, refused: 1).
int parseAnswer(const api::HttpResponse& r, nlohmann::json& body, std::ostream& err) {
  if (r.status == 0) {
    err << "portico: the Admin API did not answer: " << r.error << "\n";
    return 2;
  }
  body = nlohmann::json::parse(r.body, nullptr, false);
  if (body.is_discarded()) {
    err << "portico: the Admin API answered " << r.status << ": " << r.body << "\n";
    return 2;
  }
  if (r.status >= 400 && !body.contains("errors")) {
    err << "portico: " << r.status << ": " << body.value("error", r.body) << "\n";
    return r.status == 401 || r.status == 403 ? 2 : 1;
  }
  return 0;
}

// Sends `file` (JSON or YAML) to `path` (which has a query already) and prints the plan.
int sendDocument(const CliTarget& target, const std::string& path, const std::string& file,
                 bool dry_run, bool exit_on_change, std::ostream& out, std::ostream& err) {
  std::string text;
  if (!readFile(file, text, err)) return 2;
  const auto first = text.find_first_not_of(" \t\r\n");
  const bool json = first != std::string::npos && text[first] == '{';
  const auto r = call(target, "POST", path + (dry_run ? "&dry_run=true" : ""), std::move(text),
                      json ? "application/json" : "application/yaml");
  nlohmann::json body;
  if (const int code = parseAnswer(r, body, err)) return code;
  const std::size_t changes = printPlan(body, out, err);
  if (r.status >= 400 || (body.contains("errors") && !body["errors"].empty())) return 1;
  if (body.contains("release"))  // ?rollout=true: committed once the release is promoted
    out << "release " << body.value("release", "") << " " << body.value("state", "") << " at "
        << body.value("percent", 0) << "% (GET /admin/v1/releases/" << body.value("release", "")
        << ")\n";
  else if (!dry_run)
    out << "revision " << body.value("revision", 0) << "\n";
  return exit_on_change && changes ? 1 : 0;
}

// A document file as a tree (no ${ENV}: entity files carry none), or an error on `err`.
bool readDocument(const std::string& path, const config::EnvLookup& env, config::ConfigTree& tree,
                  std::ostream& err) {
  std::string text;
  if (!readFile(path, text, err)) return false;
  config::Diagnostics diag;
  config::parseConfigText(text, path, env, tree, diag);
  if (diag.empty()) return true;
  err << diag.format();
  return false;
}

// The entities a config keeps (its own lists, or its database's), read without Portico.
std::optional<store::EntitySet> offlineEntities(const std::string& config_path, std::ostream& err) {
  config::ConfigTree tree;
  if (!readDocument(config_path, config::processEnvironment(), tree, err)) return std::nullopt;
  config::Diagnostics diag;
  const config::Config c = config::parseModel(tree.root, diag);
  if (!diag.empty()) {
    err << diag.format();
    return std::nullopt;
  }
  if (c.store.type == config::StoreConfig::Type::File)
    return store::EntitySet::fromDocument(config::redacted(std::move(tree)));
  auto db = c.store.type == config::StoreConfig::Type::Etcd ? store::openEtcdStore(c.store)
                                                            : store::openSqliteStore(c.store.path);
  if (!db) {
    err << "portico: " << db.error().message << "\n";
    return std::nullopt;
  }
  auto set = (*db)->load();
  if (!set) {
    err << "portico: " << set.error().message << "\n";
    return std::nullopt;
  }
  return std::move(*set);
}

int offlineDiff(const CliTarget& target, const std::string& file, bool prune, std::ostream& out,
                std::ostream& err) {
  const auto current = offlineEntities(target.config, err);
  config::ConfigTree tree;
  if (!current ||
      !readDocument(
          file, [](const std::string&) { return std::optional<std::string>(); }, tree, err))
    return 2;
  store::EntitySet desired = store::EntitySet::fromDocument(tree.root);
  for (const store::Kind k : store::kKinds)
    for (const auto& e : desired.list(k))
      if (const store::Entity* old = current->find(k, e.name))
        desired.put(k, {e.name, restoreRedacted(e.body, old->body), 0, "", ""});
  return printPlan(store::summary(store::plan(*current, desired, prune, {})), out, err) ? 1 : 0;
}

std::string configPath(bool prune) {
  return std::string("/config?prune=") + (prune ? "true" : "false");
}

}  // namespace

int applyFile(const CliTarget& target, const std::string& file, bool dry_run, bool prune,
              bool rollout, std::ostream& out, std::ostream& err) {
  return sendDocument(target, configPath(prune) + (rollout ? "&rollout=true" : ""), file, dry_run,
                      false, out, err);
}

int diffFile(const CliTarget& target, const std::string& file, bool prune, std::ostream& out,
             std::ostream& err) {
  if (!target.config.empty()) return offlineDiff(target, file, prune, out, err);
  return sendDocument(target, configPath(prune), file, true, true, out, err);
}

int importSpecFile(const CliTarget& target, const std::string& spec, const ImportFlags& flags,
                   std::ostream& out, std::ostream& err) {
  std::string path = "/apis/" + http::encodeQueryComponent(flags.api) +
                     "/openapi?mock=" + (flags.mock ? "true" : "false");
  for (const auto& [key, value] : {std::pair{"upstream", &flags.upstream},
                                   {"state", &flags.state},
                                   {"base_path", &flags.base_path}})
    if (!value->empty()) path += std::string("&") + key + "=" + http::encodeQueryComponent(*value);
  return sendDocument(target, path, spec, flags.dry_run, false, out, err);
}

int dumpConfig(const CliTarget& target, std::ostream& out, std::ostream& err) {
  if (!target.config.empty()) {
    const auto entities = offlineEntities(target.config, err);
    if (!entities) return 2;
    out << config::toYaml(redactCredentials(entities->document()));
    return 0;
  }
  const auto r = call(target, "GET", "/config", "", "", "application/yaml");
  if (r.status != 200) {
    nlohmann::json body;
    if (const int code = parseAnswer(r, body, err)) return code;
    return 2;
  }
  out << r.body;
  return 0;
}

}  // namespace portico::admin
