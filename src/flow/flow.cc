#include "flow/flow.h"

#include <algorithm>
#include <unordered_map>

#include "config/reader.h"

namespace portico::flow {
namespace {

using config::Diagnostics;
using config::ObjectReader;

bool isReservedName(const std::string& name) {
  return name == "request" || name == "consumer" || name == "item";
}

// A string template from `key` of `r`; errors under its path.
std::optional<StringTemplate> readTemplate(ObjectReader& r, std::string_view key,
                                           Diagnostics& diag) {
  const json* j = r.get(key);
  if (!j) return std::nullopt;
  if (!j->is_string()) {
    diag.add(r.childPath(key), "must be a string");
    return std::nullopt;
  }
  auto t = StringTemplate::parse(j->get<std::string>());
  if (!t) {
    diag.add(r.childPath(key), t.error().message);
    return std::nullopt;
  }
  return std::move(*t);
}

// A map of name -> string template (null values allowed when `nulls`: the key is dropped).
std::vector<std::pair<std::string, StringTemplate>> readTemplateMap(ObjectReader& r,
                                                                    std::string_view key,
                                                                    Diagnostics& diag) {
  std::vector<std::pair<std::string, StringTemplate>> out;
  const json* j = r.get(key);
  if (!j) return out;
  const std::string path = r.childPath(key);
  if (!j->is_object()) {
    diag.add(path, "must be a map of name: template");
    return out;
  }
  for (auto it = j->begin(); it != j->end(); ++it) {
    const std::string p = config::joinPath(path, it.key());
    if (!it->is_string() && !it->is_number() && !it->is_boolean()) {
      diag.add(p, "must be a string");
      continue;
    }
    auto t = StringTemplate::parse(it->is_string() ? it->get<std::string>() : it->dump());
    if (!t) {
      diag.add(p, t.error().message);
      continue;
    }
    out.emplace_back(it.key(), std::move(*t));
  }
  return out;
}

std::optional<JsonTemplate> readJsonTemplate(ObjectReader& r, std::string_view key,
                                             Diagnostics& diag) {
  const json* j = r.get(key);
  if (!j) return std::nullopt;
  auto t = JsonTemplate::parse(*j);
  if (!t) {
    diag.add(r.childPath(key), t.error().message);
    return std::nullopt;
  }
  return std::move(*t);
}

// A `.` or `..` segment written in a call's path or url: every call would be refused for it.
constexpr const char* kDotSegmentError = "must not hold a . or .. segment";

void forEachTemplateRef(const StringTemplate& t, const std::function<void(const Reference&)>& f) {
  for (const auto& p : t.parts())
    if (const auto* ref = std::get_if<Reference>(&p)) f(*ref);
}

// Every reference a call makes, with the config path it sits under.
void forEachCallRef(const FlowCall& c, const std::function<void(const Reference&)>& f) {
  forEachTemplateRef(c.path, f);
  if (c.url) forEachTemplateRef(*c.url, f);
  for (const auto& [_, t] : c.query) forEachTemplateRef(t, f);
  for (const auto& [_, t] : c.headers) forEachTemplateRef(t, f);
  if (c.body) c.body->forEachReference(f);
  if (c.for_each) forEachTemplateRef(*c.for_each, f);
}

FlowCall readCall(const json& node, const std::string& path, const FlowNames& names,
                  Diagnostics& diag) {
  FlowCall c;
  ObjectReader r(node, path, diag);
  r.string("name", c.name, true);
  r.string("upstream", c.upstream);
  c.url = readTemplate(r, "url", diag);
  if (c.url && c.url->writesDotSegment()) diag.add(r.childPath("url"), kDotSegmentError);
  r.string("route", c.route);
  const int targets = !c.upstream.empty() + c.url.has_value() + !c.route.empty();
  if (targets != 1 && r.valid()) diag.add(path, "give one of upstream, url, route");
  if (!c.upstream.empty() && names.upstream_exists && !names.upstream_exists(c.upstream))
    diag.add(r.childPath("upstream"), "unknown upstream \"" + c.upstream + "\"");
  if (!c.route.empty() && names.internal_route_exists && !names.internal_route_exists(c.route))
    diag.add(r.childPath("route"), "no internal route \"" + c.route + "\" (internal: true)");
  r.string("method", c.method);
  std::transform(c.method.begin(), c.method.end(), c.method.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::toupper(ch)); });
  if (auto p = readTemplate(r, "path", diag)) {
    c.path = std::move(*p);
    if (c.path.writesDotSegment()) diag.add(r.childPath("path"), kDotSegmentError);
    if (c.url) diag.add(r.childPath("path"), "a url call takes its path from the url");
  } else {
    c.path = StringTemplate::literal("/");
  }
  c.query = readTemplateMap(r, "query", diag);
  c.headers = readTemplateMap(r, "headers", diag);
  c.body = readJsonTemplate(r, "body", diag);
  r.boolean("forward_body", c.forward_body);
  if (c.body && c.forward_body) diag.add(path, "give either body or forward_body, not both");
  r.boolean("required", c.required);
  config::Duration timeout{0};
  r.duration("timeout", timeout);
  c.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(timeout);
  c.for_each = readTemplate(r, "for_each", diag);
  r.number("concurrency", 1, 1024, c.concurrency);
  r.string("group", c.group);
  r.boolean("propagate_status", c.propagate_status);
  using Format = FlowCall::Format;
  r.choice("format",
           {{"auto", Format::Auto},
            {"json", Format::Json},
            {"text", Format::Text},
            {"xml", Format::Xml},
            {"form", Format::Form}},
           c.format);
  if (const json* tls = r.get("tls")) {
    ObjectReader tr(*tls, r.childPath("tls"), diag);
    tr.string("ca", c.ca_file);
    tr.finish();
  }
  r.finish();
  if (!c.name.empty() && isReservedName(c.name))
    diag.add(r.childPath("name"), "\"" + c.name + "\" is reserved (request, consumer, item)");
  return c;
}

// Orders the dependencies and refuses unknown names, `item` outside for_each and cycles.
void resolveDependencies(Flow& flow, const std::string& path, Diagnostics& diag) {
  const auto& index = flow.call_index;
  for (std::size_t i = 0; i < flow.calls.size(); ++i) {
    FlowCall& c = flow.calls[i];
    const std::string call_path = config::indexPath(path + ".calls", i);
    forEachCallRef(c, [&](const Reference& ref) {
      if (ref.root == Reference::Root::RequestBody) flow.needs_request_body = true;
      if (ref.root == Reference::Root::Item && !c.for_each)
        diag.add(call_path, "{" + ref.text + "}: item is only known inside for_each");
      if (ref.root != Reference::Root::Call) return;
      auto it = index.find(ref.name);
      if (it == index.end()) {
        diag.add(call_path, "{" + ref.text + "}: no call named \"" + ref.name + "\"");
      } else if (it->second == i) {
        diag.add(call_path, "{" + ref.text + "}: a call cannot use its own answer");
      } else if (std::find(c.deps.begin(), c.deps.end(), it->second) == c.deps.end()) {
        c.deps.push_back(it->second);
      }
    });
    if (c.forward_body) flow.needs_request_body = true;
  }
  // Cycles: depth-first, three colours.
  std::vector<int> colour(flow.calls.size(), 0);
  std::function<bool(std::size_t)> visit = [&](std::size_t i) {
    if (colour[i] == 1) return false;
    if (colour[i] == 2) return true;
    colour[i] = 1;
    for (std::size_t d : flow.calls[i].deps)
      if (!visit(d)) {
        if (colour[i] == 1)
          diag.add(config::indexPath(path + ".calls", i), "call \"" + flow.calls[i].name +
                                                              "\" is part of a cycle (through \"" +
                                                              flow.calls[d].name + "\")");
        colour[i] = 2;
        return false;
      }
    colour[i] = 2;
    return true;
  };
  for (std::size_t i = 0; i < flow.calls.size(); ++i) visit(i);
}

void checkRespondRefs(const Flow& flow, const std::string& path, Diagnostics& diag) {
  auto check = [&](const Reference& ref) {
    if (ref.root == Reference::Root::Item)
      diag.add(path, "{" + ref.text + "}: item is only known inside for_each");
    if (ref.root != Reference::Root::Call) return;
    const bool known = std::any_of(flow.calls.begin(), flow.calls.end(),
                                   [&](const FlowCall& c) { return c.name == ref.name; });
    if (!known) diag.add(path, "{" + ref.text + "}: no call named \"" + ref.name + "\"");
  };
  if (flow.body) flow.body->forEachReference(check);
  for (const auto& [_, t] : flow.headers) forEachTemplateRef(t, check);
}

}  // namespace

std::shared_ptr<const Flow> compileFlow(const json& node, const std::string& path,
                                        const FlowNames& names, Diagnostics& diag) {
  auto flow = std::make_shared<Flow>();
  const std::size_t errors_before = diag.items().size();
  ObjectReader r(node, path, diag);
  const json* calls = r.require("calls");
  if (calls && (!calls->is_array() || calls->empty())) {
    diag.add(r.childPath("calls"), "must be a list of at least one call");
  } else if (calls) {
    for (std::size_t i = 0; i < calls->size(); ++i)
      flow->calls.push_back(
          readCall((*calls)[i], config::indexPath(r.childPath("calls"), i), names, diag));
  }
  for (std::size_t i = 0; i < flow->calls.size(); ++i) {
    auto [it, fresh] = flow->call_index.emplace(flow->calls[i].name, i);
    if (!fresh && !flow->calls[i].name.empty())
      diag.add(config::indexPath(r.childPath("calls"), i) + ".name",
               "duplicate call name \"" + flow->calls[i].name + "\"");
  }
  if (const json* respond = r.get("respond")) {
    ObjectReader rr(*respond, r.childPath("respond"), diag);
    rr.number("status", 100, 599, flow->status);
    flow->body = readJsonTemplate(rr, "body", diag);
    flow->headers = readTemplateMap(rr, "headers", diag);
    rr.choice("merge", {{"last", Flow::Merge::Last}, {"error", Flow::Merge::Error}}, flow->merge);
    rr.choice("format", {{"json", false}, {"xml", true}}, flow->respond_xml);
    rr.string("root", flow->respond_root);
    rr.finish();
  }
  r.size("max_buffer", flow->max_buffer);
  r.finish();
  resolveDependencies(*flow, path, diag);
  checkRespondRefs(*flow, r.childPath("respond"), diag);
  if (diag.items().size() != errors_before) return nullptr;
  return flow;
}

}  // namespace portico::flow
