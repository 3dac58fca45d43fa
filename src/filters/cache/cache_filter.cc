#include "filters/cache/cache_filter.h"

#include <algorithm>

#include "api/services.h"
#include "api/worker_services.h"
#include "config/reader.h"
#include "filters/cache/cache_policy.h"
#include "filters/cache/cache_store.h"
#include "flow/request_scope.h"
#include "http/header_list.h"
#include "http/url.h"

namespace portico::filters {
namespace {

using cache::CachedResponse;
using cache::CacheStore;
using Event = CacheStore::Event;
using cache::Steady;

struct CacheConfig {
  cache::StorePolicy policy;
  std::optional<std::vector<std::string>> key_query;  // absent: the whole query string
  std::vector<std::string> key_headers;               // lower-case
  bool cache_head = true;                             // methods: GET always, HEAD optional
  std::uint64_t max_entry = 8 * 1024 * 1024;
  std::uint64_t memory = 256 * 1024 * 1024;
  std::vector<flow::StringTemplate> tags;
  std::chrono::milliseconds lock_timeout{5000};
};

// Response headers that describe one message, not the stored representation.
bool perMessage(std::string_view name) {
  for (std::string_view n :
       {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "content-length", "te",
        "trailer", "upgrade", "age", "cache-status", "x-request-id", "set-cookie"})
    if (http::equalsIgnoreCase(name, n)) return true;
  return false;
}

// The raw value of query parameter `name` ("" when absent), as the client wrote it.
std::string_view rawQueryValue(std::string_view query, std::string_view name) {
  const http::QueryParam p = http::findQueryParam(query, name);
  if (!p.found) return {};
  const std::string_view pair = query.substr(p.begin, p.end - p.begin);
  const std::size_t eq = pair.find('=');
  return eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
}

// The client's conditions on its own copy (the store needs the whole answer, not a 304).
void removeConditionals(http::HeaderList& headers) {
  headers.remove("if-none-match");
  headers.remove("if-modified-since");
}

std::int64_t wholeSeconds(Steady::duration d) {
  return std::chrono::duration_cast<std::chrono::seconds>(d).count();
}

// The Age header's value for a stored answer now.
std::string ageValue(const CachedResponse& entry, Steady::time_point now) {
  return std::to_string(std::max<std::int64_t>(0, wholeSeconds(entry.age(now))));
}

// The fetch of a key that other requests wait for: finished (they are woken) once, by whichever
// comes first of the answer stored, the answer found not to be stored, or the request's end.
struct Fill {
  CacheStore& store;
  std::string key;
  bool open = true;
  void finish() {
    if (!open) return;
    open = false;
    store.finishFill(key);
  }
};

// Passes the body on and keeps a copy; at its end the answer is stored (when it stayed within
// max_entry) and the requests waiting for this key are woken.
class StoreBody final : public api::BodyTransform {
 public:
  StoreBody(std::shared_ptr<CachedResponse> entry, CacheStore& store, std::uint64_t max_entry,
            std::shared_ptr<Fill> fill, int worker)
      : entry_(std::move(entry)),
        store_(store),
        max_entry_(max_entry),
        fill_(std::move(fill)),
        worker_(worker) {}
  std::string_view name() const override { return "cache"; }
  bool observesOnly() const override { return true; }
  void expectLength(std::uint64_t length) override {
    if (length <= max_entry_) body_.reserve(static_cast<std::size_t>(length));
  }
  bool transform(std::string_view in, bool end, std::string&, std::string&) override {
    if (!entry_) return true;
    if (body_.size() + in.size() > max_entry_) {
      entry_.reset();  // too large: passed on, not kept
      body_ = std::string();
      if (fill_) fill_->finish();
      return true;
    }
    body_.append(in);
    if (end) {
      entry_->bytes += body_.size();
      entry_->body = std::make_shared<const std::string>(std::move(body_));
      if (store_.insert(std::move(entry_))) store_.count(Event::Stored, worker_);
      if (fill_) fill_->finish();
    }
    return true;
  }

 private:
  std::shared_ptr<CachedResponse> entry_;
  CacheStore& store_;
  std::uint64_t max_entry_;
  std::shared_ptr<Fill> fill_;  // null when no request waits on this one
  int worker_;
  std::string body_;
};

// The body of a stored answer in place of the upstream's (stale-if-error).
class StoredBody final : public api::BodyTransform {
 public:
  explicit StoredBody(std::shared_ptr<const std::string> body) : body_(std::move(body)) {}
  std::string_view name() const override { return "cache"; }
  bool keepsEtag() const override { return true; }
  bool transform(std::string_view, bool end, std::string& out, std::string&) override {
    if (end) out.append(*body_);
    return true;
  }

 private:
  std::shared_ptr<const std::string> body_;
};

// A request waiting for another's fetch of its key: woken by the fill's end or by lock_timeout,
// whichever comes first (both run on the request's worker).
struct Wait {
  api::Filter::Completion done;
  bool woken = false;
  bool timed_out = false;
  void wake(bool timeout) {
    if (woken) return;
    woken = true;
    timed_out = timeout;
    if (done) std::exchange(done, nullptr)(api::FilterStatus::Continue);
  }
};

class CacheFilter final : public api::Filter {
 public:
  CacheFilter(const CacheConfig& c, CacheStore& store) : c_(c), store_(store) {}
  ~CacheFilter() override {
    if (fill_) fill_->finish();  // the request ended before any answer was stored
  }

  api::FilterStatus onRequestHeaders(api::RequestContext& ctx) override {
    const http::RequestHead& req = *ctx.request;
    const bool head = req.method == "HEAD";
    if (req.method != "GET" && !(head && c_.cache_head)) return api::FilterStatus::Continue;
    worker_ = ctx.worker ? ctx.worker->workerId() : 0;
    buildKey(ctx);
    handled_ = true;
    may_store_ = !head;
    authorization_ = !c_.policy.consumer_key && req.headers.find("authorization");
    if (ctx.replay) {  // a background refresh: fetch and store
      stripConditionals(ctx);
      return api::FilterStatus::Continue;
    }
    const auto now = store_.time().steady();
    if (auto entry = usable(ctx)) {
      const bool fresh = entry->fresh(now);
      if (fresh || entry->staleWithin(now, entry->stale_while_revalidate)) {
        // Stale within stale_while_revalidate: served all the same, one refresh under way.
        if (!fresh && !entry->refreshing.exchange(true)) refresh(ctx, entry);
        store_.count(fresh ? Event::Hit : Event::Stale, worker_);
        return reply(
            ctx, *entry,
            "hit; ttl=" + std::to_string(wholeSeconds(entry->fresh_for - entry->age(now))));
      }
      if (entry->staleWithin(now, entry->stale_if_error)) stale_ = entry;
    }
    store_.count(Event::Miss, worker_);
    if (head || authorization_ || !ctx.worker) {  // not coalesced: HEAD, credentials, tests
      stripConditionals(ctx);
      return api::FilterStatus::Continue;
    }
    wait_ = std::make_shared<Wait>();
    auto wake = [wait = wait_, worker = ctx.worker] {
      worker->post([wait] { wait->wake(false); });
    };
    if (store_.joinFill(key_, std::move(wake))) {
      fill_ = std::make_shared<Fill>(Fill{store_, key_});
      wait_.reset();
      stripConditionals(ctx);
      return api::FilterStatus::Continue;
    }
    ctx.worker->after(c_.lock_timeout, [wait = wait_] { wait->wake(true); });
    return api::FilterStatus::Async;
  }

  void onRequestHeadersAsync(api::RequestContext& ctx, Completion done) override {
    wait_->done = [this, &ctx, done = std::move(done)](api::FilterStatus) { done(afterWait(ctx)); };
    if (wait_->woken) std::exchange(wait_->done, nullptr)(api::FilterStatus::Continue);
  }

  api::FilterStatus onResponseHeaders(api::RequestContext& ctx) override {
    if (!handled_ || !ctx.response) return api::FilterStatus::Continue;
    http::ResponseHead& resp = *ctx.response;
    if (answered_) {
      if (resp.status == 304 && not_modified_length_) resp.content_length = *not_modified_length_;
      return api::FilterStatus::Continue;
    }
    const auto now = store_.time().steady();
    if (stale_ && resp.status >= 500 && stale_->staleWithin(now, stale_->stale_if_error)) {
      serveStale(ctx, resp);
      return api::FilterStatus::Continue;
    }
    std::string status = "fwd=miss";
    if (may_store_) {
      const auto decision = cache::decideStore(c_.policy, resp.status, resp.headers, authorization_,
                                               store_.time().system());
      std::string_view not_stored = decision.reason;
      if (decision.store && resp.framing == http::BodyFraming::ContentLength &&
          resp.content_length > c_.max_entry)
        not_stored = "too-large";
      if (decision.store && not_stored.empty()) {
        ctx.transformResponseBody(std::make_unique<StoreBody>(
            makeEntry(ctx, resp, decision, now), store_, c_.max_entry, fill_, worker_));
        status += "; stored";
      } else {
        status.append("; detail=").append(not_stored);
      }
    }
    resp.headers.set("Cache-Status", "portico; " + status);
    return api::FilterStatus::Continue;
  }

  void onLog(const api::RequestContext&) noexcept override {
    if (fill_) fill_->finish();  // stored by now, or never will be
  }

 private:
  // The key: route, then "GET host/path[?query]" (HEAD shares GET's), then the configured
  // headers and the consumer.
  void buildKey(const api::RequestContext& ctx) {
    const http::RequestHead& req = *ctx.request;
    primary_.assign("GET ").append(req.host).append(req.path);
    if (!c_.key_query) {
      if (!req.query.empty()) primary_.append("?").append(req.query);
    } else {
      char sep = '?';
      for (const auto& name : *c_.key_query) {
        primary_.push_back(sep);
        primary_.append(name).append("=").append(rawQueryValue(req.query, name));
        sep = '&';
      }
    }
    key_.assign(ctx.route_name).push_back('\0');
    key_.append(primary_);
    for (const auto& name : c_.key_headers) {
      key_.push_back('\0');
      key_.append(CachedResponse::requestValue(req.headers, name));
    }
    if (c_.policy.consumer_key) {
      key_.push_back('\0');
      if (ctx.consumer) key_.append(ctx.consumer->name);
    }
  }

  std::shared_ptr<const CachedResponse> usable(const api::RequestContext& ctx) {
    auto entry = store_.find(key_, ctx.request->headers);
    if (entry && authorization_ && !entry->shared_ok) return nullptr;
    return entry;
  }

  static void stripConditionals(api::RequestContext& ctx) {
    removeConditionals(ctx.request->headers);
  }

  api::FilterStatus reply(api::RequestContext& ctx, const CachedResponse& entry,
                          const std::string& status) {
    answered_ = true;
    auto& r = ctx.local_reply;
    const std::string age = ageValue(entry, store_.time().steady());
    if (cache::notModified(ctx.request->headers, entry.headers)) {
      r.status = 304;
      for (const auto& h : entry.headers)
        for (std::string_view keep : {"cache-control", "content-location", "date", "etag",
                                      "expires", "vary", "last-modified"})
          if (http::equalsIgnoreCase(h.name, keep)) r.headers.add(h.name, h.value);
      not_modified_length_ = entry.body->size();
    } else {
      r.status = entry.status;
      r.headers = entry.headers;
      r.shared_body = entry.body;
    }
    r.headers.add("Age", age);
    r.headers.add("Cache-Status", "portico; " + status);
    return api::FilterStatus::Reply;
  }

  // After waiting for another request's fetch: its answer, or upstream ourselves.
  api::FilterStatus afterWait(api::RequestContext& ctx) {
    store_.count(Event::Coalesced, worker_);
    const auto now = store_.time().steady();
    if (!wait_->timed_out) {
      if (auto entry = usable(ctx)) {
        if (entry->fresh(now)) return reply(ctx, *entry, "fwd=miss; collapsed");
        // The fetch just made left nothing fresh (the upstream failed): the stale answer, not
        // one more request each to that upstream.
        if (entry->staleWithin(now, entry->stale_if_error)) {
          store_.count(Event::Stale, worker_);
          return reply(ctx, *entry, "fwd=stale; collapsed");
        }
      }
    }
    stripConditionals(ctx);
    return api::FilterStatus::Continue;
  }

  // Stale-while-revalidate: the request again, from this filter on, in the background; its own
  // cache filter stores the answer.
  void refresh(api::RequestContext& ctx, std::shared_ptr<const CachedResponse> entry) {
    if (!ctx.calls) {
      entry->refreshing = false;
      return;
    }
    const http::RequestHead& req = *ctx.request;
    api::CallRequest call;
    call.replay = true;
    call.replay_from = ctx.filter_index;
    call.method = "GET";
    call.target = req.query.empty() ? req.path : req.path + "?" + req.query;
    call.host = req.host;
    call.headers = req.headers;
    call.headers.remove("host");
    removeConditionals(call.headers);
    call.detached = true;
    call.discard_response = true;
    call.max_response_bytes = c_.max_entry + 1;
    call.span_name = "cache refresh";
    ctx.calls->start(std::move(call),
                     [entry = std::move(entry)](api::CallResponse) { entry->refreshing = false; });
  }

  void serveStale(api::RequestContext& ctx, http::ResponseHead& resp) {
    const int upstream_status = resp.status;
    store_.count(Event::Stale, worker_);
    resp.status = stale_->status;
    resp.reason.clear();
    resp.headers = stale_->headers;
    resp.headers.add("Age", ageValue(*stale_, store_.time().steady()));
    resp.headers.add("Cache-Status",
                     "portico; fwd=stale; fwd-status=" + std::to_string(upstream_status));
    resp.framing = http::BodyFraming::ContentLength;
    resp.content_length = stale_->body->size();
    ctx.response_transforms.clear();  // those were for the error's body
    ctx.transformResponseBody(std::make_unique<StoredBody>(stale_->body));
  }

  std::shared_ptr<CachedResponse> makeEntry(const api::RequestContext& ctx,
                                            const http::ResponseHead& resp,
                                            const cache::StoreDecision& d, Steady::time_point now) {
    auto e = std::make_shared<CachedResponse>();
    e->status = resp.status;
    e->key = key_;
    e->primary = primary_;
    e->path = ctx.request->path;
    e->stored_at = now;
    e->initial_age = d.initial_age;
    e->fresh_for = d.fresh_for;
    e->stale_while_revalidate = d.stale_while_revalidate;
    e->stale_if_error = d.stale_if_error;
    e->shared_ok = d.shared_ok;
    // A transform installed by a filter listed after this one changes the body it stores.
    const bool weaken = std::any_of(ctx.response_transforms.begin(), ctx.response_transforms.end(),
                                    [](const auto& t) { return !t->keepsEtag(); });
    bool encoded = false, varies_on_encoding = false;
    std::size_t bytes = sizeof(CachedResponse) + key_.size() * 2 + primary_.size();
    for (const auto& h : resp.headers) {
      if (perMessage(h.name)) continue;
      std::string value = h.value;
      if (weaken && http::equalsIgnoreCase(h.name, "etag") && !value.starts_with("W/"))
        value = "W/" + value;
      if (http::equalsIgnoreCase(h.name, "content-encoding") &&
          !http::equalsIgnoreCase(h.value, "identity"))
        encoded = true;
      if (http::equalsIgnoreCase(h.name, "vary")) {
        http::forEachToken(h.value, [&](std::string_view t) {
          std::string name(t);
          http::toLower(name);
          varies_on_encoding |= name == "accept-encoding";
          e->vary.emplace_back(name, std::string());
        });
      }
      bytes += h.name.size() + value.size() + 32;
      e->headers.add(h.name, std::move(value));
    }
    // An encoded answer goes only to clients that send the same Accept-Encoding.
    if (encoded && !varies_on_encoding) e->vary.emplace_back("accept-encoding", std::string());
    for (auto& [name, value] : e->vary)
      value = CachedResponse::requestValue(ctx.request->headers, name);
    if (!c_.tags.empty()) {
      flow::RequestScope scope(ctx, nullptr);
      for (const auto& t : c_.tags) {
        e->tags.push_back(t.renderText(scope));
        bytes += e->tags.back().size() + 32;
      }
    }
    e->bytes = bytes;
    return e;
  }

  const CacheConfig& c_;
  CacheStore& store_;
  int worker_ = 0;
  bool handled_ = false;        // a GET/HEAD this filter looked up
  bool may_store_ = false;      // a GET whose answer may be stored
  bool authorization_ = false;  // credentials without a consumer key: public answers only
  bool answered_ = false;       // answered from the store
  std::shared_ptr<Fill> fill_;  // this request fetches the key for others waiting
  std::optional<std::size_t> not_modified_length_;
  std::string primary_;
  std::string key_;
  std::shared_ptr<const CachedResponse> stale_;  // for stale-if-error
  std::shared_ptr<Wait> wait_;
};

class CacheFactory final : public api::FilterFactory {
 public:
  CacheFactory(CacheConfig c, std::shared_ptr<CacheStore> store)
      : c_(std::move(c)), store_(std::move(store)), claim_(store_->claim(c_.memory)) {}
  api::FilterPtr create() const override { return std::make_unique<CacheFilter>(c_, *store_); }

 private:
  CacheConfig c_;
  std::shared_ptr<CacheStore> store_;
  std::unique_ptr<CacheStore::Claim> claim_;  // released before the store
};

constexpr std::string_view kStoreKey = "filters.cache.store";

}  // namespace

std::shared_ptr<cache::CacheStore> processCacheStore(api::Services& services, bool make) {
  return std::static_pointer_cast<CacheStore>(
      services.shared(std::string(kStoreKey), [&]() -> std::shared_ptr<void> {
        if (!make) return nullptr;
        return std::make_shared<CacheStore>(services.time());
      }));
}

api::FilterType cacheFilterType() {
  return {"cache", [](api::FilterBuildContext& b) -> std::shared_ptr<const api::FilterFactory> {
            CacheConfig c;
            const std::size_t errors_before = b.diag.items().size();
            config::ObjectReader r(b.config, b.path, b.diag);
            auto seconds = [&](std::string_view key, std::chrono::seconds& out) {
              config::Duration d{std::chrono::duration_cast<config::Duration>(out)};
              if (r.duration(key, d)) out = std::chrono::duration_cast<std::chrono::seconds>(d);
            };
            seconds("ttl", c.policy.ttl);
            seconds("stale_while_revalidate", c.policy.stale_while_revalidate);
            seconds("stale_if_error", c.policy.stale_if_error);
            r.boolean("honor_upstream", c.policy.honor_upstream);
            if (const nlohmann::json* key = r.get("key")) {
              config::ObjectReader kr(*key, r.childPath("key"), b.diag);
              if (kr.has("query")) {
                c.key_query.emplace();
                kr.stringList("query", *c.key_query);
              }
              kr.stringList("headers", c.key_headers);
              for (auto& h : c.key_headers) http::toLower(h);
              kr.boolean("consumer", c.policy.consumer_key);
              kr.finish();
            }
            std::vector<std::string> methods;
            if (r.has("methods") && r.stringList("methods", methods)) {
              c.cache_head = false;
              bool get = false;
              for (const auto& m : methods) {
                if (m == "GET") {
                  get = true;
                } else if (m == "HEAD") {
                  c.cache_head = true;
                } else {
                  b.diag.add(r.childPath("methods"),
                             "\"" + m + "\": only GET and HEAD answers are cached");
                }
              }
              if (!get) b.diag.add(r.childPath("methods"), "must include GET");
            }
            if (const nlohmann::json* statuses = r.get("statuses")) {
              c.policy.statuses.clear();
              const std::string p = r.childPath("statuses");
              if (!statuses->is_array() || statuses->empty()) {
                b.diag.add(p, "must be a list of statuses");
              } else {
                for (std::size_t i = 0; i < statuses->size(); ++i) {
                  const auto& s = (*statuses)[i];
                  if (!s.is_number_integer() || s.get<int>() < 200 || s.get<int>() > 499)
                    b.diag.add(config::indexPath(p, i),
                               "must be a status from 200 to 499 (5xx answers are never stored)");
                  else
                    c.policy.statuses.push_back(s.get<int>());
                }
              }
            }
            r.size("max_entry", c.max_entry);
            r.size("memory", c.memory);
            if (c.memory < 1024 * 1024) b.diag.add(r.childPath("memory"), "must be at least 1MiB");
            config::Duration lock_timeout{5000};
            r.duration("lock_timeout", lock_timeout);
            c.lock_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(lock_timeout);
            std::vector<std::string> tags;
            r.stringList("tags", tags);
            for (std::size_t i = 0; i < tags.size(); ++i) {
              const std::string p = config::indexPath(r.childPath("tags"), i);
              auto t = flow::StringTemplate::parse(tags[i]);
              if (!t) {
                b.diag.add(p, t.error().message);
                continue;
              }
              for (const auto& part : t->parts())
                if (const auto* ref = std::get_if<flow::Reference>(&part);
                    ref &&
                    (!flow::requestOnly(*ref) || ref->root == flow::Reference::Root::RequestBody))
                  b.diag.add(p, "{" + ref->text + "}: only request.path/query/header and consumer");
              c.tags.push_back(std::move(*t));
            }
            r.finish();
            if (c.max_entry > c.memory / 8)
              b.diag.add(r.childPath("max_entry"),
                         "must be at most an eighth of memory (the store's shards)");
            if (!r.valid() || b.diag.items().size() != errors_before) return nullptr;
            return std::make_shared<CacheFactory>(std::move(c),
                                                  processCacheStore(b.services, true));
          }};
}

}  // namespace portico::filters
