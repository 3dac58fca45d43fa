#include "flow/flow_run.h"

#include "convert/form_json.h"
#include "convert/xml_json.h"
#include "flow/request_scope.h"
#include "http/url.h"

#include <algorithm>
#include <unordered_map>

#include <spdlog/spdlog.h>

namespace portico::flow {

struct FlowRun::CallRun {
  std::vector<json> items;            // for_each: the elements, one call each
  std::vector<CallOutcome> outcomes;  // one per item (one for a plain call)
  std::size_t next_item = 0;
  std::size_t running = 0;
  std::size_t answered = 0;
  bool started = false;
  CallOutcome result;  // the call as a whole, once settled
};

// What templates see: the request, the consumer, the answers so far and the current item.
class FlowRun::RunScope final : public Scope {
 public:
  RunScope(const FlowRun& run, const json* item) : run_(run), item_(item) {}

  json resolve(const Reference& ref) const override {
    if (ref.root == Reference::Root::Item) return item_ ? walk(*item_, ref.steps) : json();
    if (ref.root != Reference::Root::Call)
      return RequestScope(run_.ctx_, &run_.requestJson()).resolve(ref);
    auto it = run_.flow_.call_index.find(ref.name);
    if (it == run_.flow_.call_index.end()) return nullptr;
    const CallRun& c = run_.calls_[it->second];
    if (ref.item) return *ref.item < c.outcomes.size() ? field(c.outcomes[*ref.item], ref) : json();
    const bool per_item = ref.every_item || run_.flow_.calls[it->second].for_each.has_value();
    if (!per_item) return field(c.outcomes.empty() ? CallOutcome() : c.outcomes[0], ref);
    json out = json::array();
    for (const auto& o : c.outcomes) out.push_back(field(o, ref));
    return out;
  }

 private:
  static json field(const CallOutcome& o, const Reference& ref) {
    switch (ref.field) {
      case Reference::Field::Status:
        return o.status ? json(o.status) : json();
      case Reference::Field::Header: {
        const std::string* v = o.headers.find(ref.steps[0].key);
        return v ? json(*v) : json();
      }
      case Reference::Field::Body:
        return o.ok ? walk(o.body, ref.steps) : json();
    }
    return nullptr;
  }

  const FlowRun& run_;
  const json* item_;
};

FlowRun::FlowRun(const Flow& flow, api::RequestContext& ctx, std::string request_body,
                 std::size_t max_calls)
    : flow_(flow),
      ctx_(ctx),
      request_body_(std::move(request_body)),
      max_calls_(max_calls),
      calls_(flow.calls.size()) {}

FlowRun::~FlowRun() = default;

const json& FlowRun::requestJson() const {
  if (!request_json_) {
    request_json_ = std::make_unique<json>(json::parse(request_body_, nullptr, false));
    if (request_json_->is_discarded()) *request_json_ = nullptr;
  }
  return *request_json_;
}

template <typename Step>
bool FlowRun::guarded(Step&& step) {
  try {
    step();
    return true;
  } catch (const std::exception& e) {
    spdlog::error("request {}: flow ended by an exception: {}", ctx_.request_id, e.what());
    if (!done_) return false;
    fail(502, "the flow failed");
    auto done = std::move(done_);
    done_ = nullptr;
    done();
    return false;
  }
}

void FlowRun::start(std::function<void()> done) {
  done_ = std::move(done);
  pending_ = calls_.size();
  starting_ = true;
  const bool launched = guarded([this] {
    for (std::size_t i = 0; i < calls_.size(); ++i)
      if (flow_.calls[i].deps.empty()) launch(i);
  });
  if (!launched) return;
  starting_ = false;
  if (pending_ == 0) finishRun();
}

void FlowRun::launch(std::size_t i) {
  CallRun& c = calls_[i];
  const FlowCall& cfg = flow_.calls[i];
  c.started = true;
  // A call that cannot be sent fails as a whole, at once.
  auto failNow = [&](std::string why) {
    c.outcomes.assign(1, CallOutcome{});
    c.outcomes[0].finished = true;
    c.outcomes[0].error = std::move(why);
    c.outcomes[0].error_status = 502;
    settle(i);
  };
  for (std::size_t d : cfg.deps)
    if (!calls_[d].result.ok)
      return failNow("not run: call \"" + flow_.calls[d].name + "\" failed");
  if (!cfg.for_each) {
    c.items.clear();
    c.outcomes.resize(1);
    launchItem(i, 0);
    return;
  }
  const json items = cfg.for_each->render(RunScope(*this, nullptr));
  if (!items.is_array()) return failNow("for_each is not a list");
  if (items.size() > max_calls_)
    return failNow("for_each over " + std::to_string(items.size()) + " items (at most " +
                   std::to_string(max_calls_) + ")");
  c.items = items.get<std::vector<json>>();
  c.outcomes.resize(c.items.size());
  if (c.items.empty()) return settle(i);
  const std::size_t first = std::min(cfg.concurrency, c.items.size());
  for (std::size_t k = 0; k < first && c.next_item < c.items.size(); ++k)
    launchItem(i, c.next_item++);
}

void FlowRun::launchItem(std::size_t i, std::size_t item) {
  CallRun& c = calls_[i];
  ++c.running;
  const RunScope scope(*this, c.items.empty() ? nullptr : &c.items[item]);
  sendRequest(i, item, scope);
}

void FlowRun::sendRequest(std::size_t i, std::size_t item, const RunScope& scope) {
  const FlowCall& cfg = flow_.calls[i];
  api::CallRequest req;
  req.method = cfg.method;
  // A call that cannot be made as its templates render fails, with what went wrong.
  auto fail = [&](std::string why) {
    api::CallResponse r;
    r.error_status = 502;
    r.error = std::move(why);
    finished(i, item, std::move(r));
  };
  std::string target =
      cfg.url ? cfg.url->renderText(scope, true) : cfg.path.renderText(scope, true);
  // Values are percent-encoded, so none adds a `/`; one that is all dots would still be a
  // segment that climbs (`/v1/users/..` is `/v1/`).
  if (http::hasDotSegment(http::pathOfTarget(target)))
    return fail(std::string(cfg.url ? "url" : "path") + ": a value gave a . or .. segment");
  for (const auto& [key, value] : cfg.query) {
    const json v = value.render(scope);
    if (v.is_null()) continue;  // a null value drops the key
    target += target.find('?') == std::string::npos ? '?' : '&';
    target += http::encodeQueryComponent(key) + "=" + http::encodeQueryComponent(toText(v));
  }
  if (cfg.url) {
    req.url = std::move(target);
  } else {
    req.upstream = cfg.upstream;
    req.route = cfg.route;
    req.target = std::move(target);
  }
  for (const auto& [name, value] : cfg.headers) {
    std::string v = value.renderText(scope);
    if (!http::isSafeFieldValue(v))
      return fail("header " + name + ": the template gave a value with CR, LF or NUL");
    if (!v.empty()) req.headers.add(name, v);
  }
  if (cfg.body) {
    req.body = jsonText(cfg.body->render(scope));
    req.headers.set("Content-Type", "application/json");
  } else if (cfg.forward_body) {
    req.body = request_body_;
    if (const std::string* type =
            ctx_.request ? ctx_.request->headers.find("content-type") : nullptr)
      req.headers.set("Content-Type", *type);
  }
  req.timeout = cfg.timeout;
  req.max_response_bytes = flow_.max_buffer;
  req.ca_file = cfg.ca_file;
  req.span_name = "flow call " + cfg.name;
  ctx_.calls->start(std::move(req), [this, i, item](api::CallResponse r) {
    guarded([&] { finished(i, item, std::move(r)); });
  });
}

void FlowRun::finished(std::size_t i, std::size_t item, api::CallResponse r) {
  CallRun& c = calls_[i];
  const FlowCall& cfg = flow_.calls[i];
  CallOutcome& o = c.outcomes[item];
  o.finished = true;
  if (!r.ok()) {
    o.error = r.error;
    o.error_status = r.error_status ? r.error_status : 502;
  } else {
    o.status = r.status;
    o.headers = std::move(r.headers);
    o.ok = r.status < 400;
    if (!o.ok) {
      o.error = "answered " + std::to_string(r.status);
      o.error_status = r.status;
    }
    const bool no_body = r.status == 204 || r.status == 304 || r.body.empty();
    const bool as_json =
        cfg.format == FlowCall::Format::Json ||
        (cfg.format == FlowCall::Format::Auto && http::hasJsonContentType(o.headers));
    if (no_body) {
      o.body = nullptr;
    } else if (cfg.format == FlowCall::Format::Xml || cfg.format == FlowCall::Format::Form) {
      // The same shapes as format-conversion's defaults (namespaces stripped, leaves as text).
      const bool xml = cfg.format == FlowCall::Format::Xml;
      auto doc = xml ? convert::xmlToJson(r.body, convert::XmlToJsonOptions{})
                     : convert::formToJson(r.body);
      o.body = doc ? json::parse(doc->dump()) : json();
      if (!doc && o.ok) {
        o.ok = false;
        o.error = std::string(xml ? "answer is not valid XML: " : "answer is not a valid form: ") +
                  doc.error().message;
        o.error_status = 502;
      }
    } else if (cfg.format == FlowCall::Format::Text || !as_json) {
      o.body = std::move(r.body);
    } else {
      o.body = json::parse(r.body, nullptr, false);
      if (o.body.is_discarded()) {
        o.body = nullptr;
        if (o.ok) {
          o.ok = false;
          o.error = "answer is not valid JSON";
          o.error_status = 502;
        }
      }
    }
  }
  --c.running;
  ++c.answered;
  if (c.next_item < c.items.size() && c.running < cfg.concurrency) launchItem(i, c.next_item++);
  if (c.answered == c.outcomes.size()) settle(i);
}

void FlowRun::settle(std::size_t i) {
  CallRun& c = calls_[i];
  CallOutcome& r = c.result;
  r.finished = true;
  r.ok = true;
  for (const auto& o : c.outcomes) {
    if (o.ok) continue;
    r.ok = false;
    r.error = o.error;
    r.error_status = o.error_status;
    r.status = o.status;
    break;
  }
  --pending_;
  // Calls that waited for this one start when all they use has answered.
  for (std::size_t j = 0; j < calls_.size(); ++j) {
    if (calls_[j].started) continue;
    const auto& deps = flow_.calls[j].deps;
    if (std::find(deps.begin(), deps.end(), i) == deps.end()) continue;
    const bool ready = std::all_of(deps.begin(), deps.end(),
                                   [&](std::size_t d) { return calls_[d].result.finished; });
    if (ready) launch(j);
  }
  if (pending_ == 0 && !starting_) finishRun();
}

void FlowRun::finishRun() {
  if (!done_) return;
  if (!guarded([this] { compose(); })) return;
  auto done = std::move(done_);
  done_ = nullptr;
  done();
}

void FlowRun::fail(int s, std::string why) {
  failed = true;
  status = s;
  error = std::move(why);
}

void FlowRun::compose() {
  bool completed = true;
  for (std::size_t i = 0; i < calls_.size(); ++i) {
    const CallOutcome& r = calls_[i].result;
    if (r.ok) continue;
    completed = false;
    const FlowCall& cfg = flow_.calls[i];
    if (!cfg.required) continue;
    const int s = cfg.propagate_status && r.status >= 400 && r.status < 500 ? r.status : 502;
    return fail(s, "call \"" + cfg.name + "\" failed: " + r.error);
  }
  const RunScope scope(*this, nullptr);
  // Headers first: their templates may use the answers, which the merge below moves from.
  for (const auto& [name, value] : flow_.headers) {
    std::string v = value.renderText(scope);
    if (!http::isSafeFieldValue(v))
      return fail(502, "header " + name + ": the template gave a value with CR, LF or NUL");
    headers.set(name, v);
  }
  json out;
  if (flow_.body) {
    out = flow_.body->render(scope);
  } else {
    // Declared order, never arrival order: the same answers always compose the same body.
    out = json::object();
    std::unordered_map<std::string, std::size_t> set_by;  // merge: error only
    for (std::size_t i = 0; i < calls_.size(); ++i) {
      const FlowCall& cfg = flow_.calls[i];
      CallRun& c = calls_[i];
      auto put = [&](const std::string& key, json&& value) {
        if (flow_.merge == Flow::Merge::Error) {
          auto [it, fresh] = set_by.emplace(key, i);
          if (!fresh && it->second != i) {
            fail(502, "key \"" + key + "\" set by calls \"" + flow_.calls[it->second].name +
                          "\" and \"" + cfg.name + "\"");
            return false;
          }
        }
        out[key] = std::move(value);
        return true;
      };
      if (cfg.for_each) {
        json bodies = json::array();
        for (auto& o : c.outcomes) bodies.push_back(o.ok ? std::move(o.body) : json());
        if (!put(cfg.group.empty() ? cfg.name : cfg.group, std::move(bodies))) return;
      } else if (!cfg.group.empty()) {
        if (!put(cfg.group, c.result.ok ? std::move(c.outcomes[0].body) : json())) return;
      } else if (c.result.ok && c.outcomes[0].body.is_object()) {
        for (auto& [k, v] : c.outcomes[0].body.items())
          if (!put(k, std::move(v))) return;
      }
    }
  }
  if (flow_.respond_xml) {
    auto xml = convert::jsonToXml(convert::ordered_json::parse(jsonText(out)), flow_.respond_root);
    if (!xml) return fail(502, "the composed answer cannot be XML: " + xml.error().message);
    body = std::move(*xml);
  } else {
    body = jsonText(out);
  }
  if (body.size() > flow_.max_buffer) return fail(502, "composed response too large");
  status = flow_.status;
  if (!headers.find("content-type"))
    headers.add("Content-Type",
                flow_.respond_xml ? "application/xml; charset=utf-8" : "application/json");
  if (!completed) headers.set("Portico-Completed", "false");
}

}  // namespace portico::flow
