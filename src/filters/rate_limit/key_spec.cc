#include "filters/rate_limit/key_spec.h"

#include "api/services.h"
#include "auth/jwt.h"
#include "config/reader.h"
#include "filters/bearer.h"

namespace portico::filters {
namespace {

bool parsePart(const std::string& text, KeyPart& part) {
  using K = KeyPart::Kind;
  if (text == "consumer") {
    part.kind = K::Consumer;
  } else if (text == "consumer_group") {
    part.kind = K::ConsumerGroup;
  } else if (text == "ip") {
    part.kind = K::Ip;
  } else if (text == "route") {
    part.kind = K::Route;
  } else if (text.rfind("header:", 0) == 0 && text.size() > 7) {
    part.kind = K::Header;
    part.name = text.substr(7);
  } else if (text.rfind("claim:", 0) == 0 && text.size() > 6) {
    part.kind = K::Claim;
    part.name = text.substr(6);
  } else {
    return false;
  }
  return true;
}

// A claim of the request's bearer token, as text. The token was verified by a jwt filter
// earlier on the route (the docs say so); here it is only read.
void appendClaim(const api::RequestContext& ctx, const std::string& claim, std::string& out) {
  std::string_view token = bearerToken(ctx.request->headers, "Authorization");
  auto first = token.find('.');
  auto second = first == std::string_view::npos ? first : token.find('.', first + 1);
  std::string payload;
  if (second != std::string_view::npos &&
      auth::base64UrlDecode(token.substr(first + 1, second - first - 1), payload)) {
    auto claims = nlohmann::json::parse(payload, nullptr, false);
    if (claims.is_object()) {
      auto it = claims.find(claim);
      if (it != claims.end()) {
        out += it->is_string() ? it->get<std::string>() : it->dump();
        return;
      }
    }
  }
  out += '-';
}

}  // namespace

std::vector<KeyPart> readKeySpec(const nlohmann::json* node, const std::string& path,
                                 config::Diagnostics& diag, KeyPart::Kind fallback) {
  std::vector<KeyPart> parts;
  if (!node) {
    parts.push_back({fallback, {}});
    return parts;
  }
  std::vector<std::string> names;
  if (node->is_string()) {
    names.push_back(node->get<std::string>());
  } else if (!config::readStringList(*node, path, diag, names)) {
    return parts;
  }
  if (names.empty()) diag.add(path, "give at least one key part");
  for (std::size_t i = 0; i < names.size(); ++i) {
    KeyPart part;
    if (!parsePart(names[i], part)) {
      diag.add(node->is_string() ? path : config::indexPath(path, i),
               "unknown key part \"" + names[i] +
                   "\" (consumer, consumer_group, ip, route, header:NAME, claim:NAME)");
      continue;
    }
    parts.push_back(std::move(part));
  }
  return parts;
}

void readCounterBackend(config::ObjectReader& r, const std::string& default_name,
                        CounterBackend& out) {
  auto& diag = r.diagnostics();
  if (!r.choice("backend", {{"local", false}, {"redis", true}}, out.redis)) {
  } else if (out.redis) {
    out.settings = redis::parseSettings(r.get("redis"), r.childPath("redis"), diag);
  } else if (r.has("redis")) {
    diag.add(r.childPath("redis"), "only with backend: redis");
  }
  r.choice("on_backend_failure", {{"fail_open", true}, {"fail_closed", false}}, out.fail_open,
           "policy");
  out.name = default_name;
  r.string("name", out.name);
}

std::shared_ptr<ratelimit::LocalStore> sharedLocalStore(api::Services& services,
                                                        const std::string& key,
                                                        ratelimit::Algorithm algorithm,
                                                        std::vector<ratelimit::Limit> limits) {
  return std::static_pointer_cast<ratelimit::LocalStore>(services.shared(key, [&] {
    return std::static_pointer_cast<void>(
        std::make_shared<ratelimit::LocalStore>(algorithm, std::move(limits)));
  }));
}

void buildKey(const std::vector<KeyPart>& parts, const api::RequestContext& ctx, std::string& out) {
  using K = KeyPart::Kind;
  out.clear();
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i) out += '|';
    const KeyPart& p = parts[i];
    switch (p.kind) {
      case K::Consumer:
        if (ctx.consumer) {
          out += ctx.consumer->name;
        } else {
          out += "ip:";
          out += ctx.client_ip;
        }
        break;
      case K::ConsumerGroup:
        if (ctx.consumer && !ctx.consumer->groups_joined.empty()) {
          out += ctx.consumer->groups_joined;
        } else {
          out += "ip:";
          out += ctx.client_ip;
        }
        break;
      case K::Ip:
        out += ctx.client_ip;
        break;
      case K::Route:
        out += ctx.route_name;
        break;
      case K::Header: {
        const std::string* v = ctx.request->headers.find(p.name);
        if (v) {
          out += *v;
        } else {
          out += '-';
        }
        break;
      }
      case K::Claim:
        appendClaim(ctx, p.name, out);
        break;
    }
  }
}

}  // namespace portico::filters
