#pragma once
// The filter contract: the extension point every feature beyond forwarding plugs into.
//
// A filter type = a name + a config validator/factory builder (FilterType). The factory is built
// once per config snapshot, is immutable and shared by all workers; it makes one cheap Filter per
// request. Phases run in this order on the worker thread that owns the connection:
//
//   onRequestHeaders   global filters then route filters, in config order; may answer locally,
//                      go asynchronous (auth calls, rate-limit lookups), start upstream calls
//                      (ctx.calls) and install a request body transform
//   onRequestBody      each chunk of the request body as it streams, then once with end=true
//                      (observing; a filter that changes the body installs a transform)
//   onResponseHeaders  reverse order; may change status and headers, go asynchronous (await an
//                      upstream call), and install a response body transform
//   onLog              exactly once per request, whatever happened (noexcept)
//
// Per-request state a filter keeps across phases lives in the filter object (made per request)
// or in ctx.state (typed slots shared between filters). Every callback — the completion of an
// asynchronous phase, a call's response — runs on the request's worker thread.
//
// No Boost.Asio here on purpose: async work completes through a callback, which the session
// turns into a co_await.
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/request_context.h"
#include "config/diagnostics.h"
#include "config/model.h"
#include "core/thread_block_cache.h"

namespace portico::api {

enum class FilterStatus {
  Continue,    // go on to the next filter
  Reply,       // stop; answer with ctx.local_reply (request phase only)
  Async,       // call the phase's ...Async method and wait for its result
  AuthFailed,  // an auth filter refused the credentials: ctx.local_reply holds the answer;
               // the route's auth_mode decides whether another auth filter may still accept
};

// A filter made per request comes from the worker's cache of freed blocks, not from malloc
// (issue 17: an allocation-free hot path with filters on).
class Filter : public block_cache::CacheAllocated {
 public:
  using Completion = std::function<void(FilterStatus)>;

  virtual ~Filter() = default;

  // Auth filters (key-auth, basic-auth, jwt...) authenticate: with auth_mode `any`, once one
  // has accepted a request the others are skipped.
  virtual bool authenticates() const { return false; }

  // After routing, before the upstream is chosen. May edit ctx.request.
  virtual FilterStatus onRequestHeaders(RequestContext&) { return FilterStatus::Continue; }
  // Only called when onRequestHeaders returned Async. Must call `done` exactly once, on the
  // worker thread, with Continue or Reply. The filter object outlives the call.
  virtual void onRequestHeadersAsync(RequestContext&, Completion done) {
    done(FilterStatus::Continue);
  }
  // Each chunk of request body payload, in order, as forwarded; then once with `end` (and an
  // empty chunk). A request without a body gets only the `end` call, just before its upstream
  // exchange starts (ctx.forward_target is set by then). Observing only. Not called for
  // requests answered before the upstream exchange.
  virtual void onRequestBody(RequestContext&, std::string_view, bool /*end*/) {}
  // After the response head is known (from the upstream or a local reply), before any of it
  // leaves. May edit ctx.response (status and headers) and install a response body transform.
  // Returns Continue, or Async to be called at onResponseHeadersAsync (Reply is not allowed).
  virtual FilterStatus onResponseHeaders(RequestContext&) { return FilterStatus::Continue; }
  // Only called when onResponseHeaders returned Async. Must call `done` exactly once, on the
  // worker thread, with Continue.
  virtual void onResponseHeadersAsync(RequestContext&, Completion done) {
    done(FilterStatus::Continue);
  }
  // Once per request, at the very end.
  virtual void onLog(const RequestContext&) noexcept {}
};

// A request's filter: owned (made for this request), or borrowed from its factory, which shares
// one instance of a filter that keeps no per-request state (no allocation per request; that
// instance is used by every worker at once, so its hooks must be thread-safe).
struct FilterDeleter {
  bool owned = true;
  FilterDeleter() = default;
  explicit FilterDeleter(bool owns) : owned(owns) {}
  template <class U>
  FilterDeleter(std::default_delete<U>) {}  // from std::make_unique
  void operator()(Filter* f) const {
    if (owned) delete f;
  }
};
using FilterPtr = std::unique_ptr<Filter, FilterDeleter>;

inline FilterPtr borrowFilter(Filter& shared) {
  return FilterPtr(&shared, FilterDeleter(false));
}

class FilterFactory {
 public:
  virtual ~FilterFactory() = default;
  // Called once per request that runs this filter. Cheap; thread-safe (const).
  virtual FilterPtr create() const = 0;
  // Files the filter read at load (descriptor sets...): a change reloads the config, like a
  // certificate's.
  virtual std::vector<std::string> watchedFiles() const { return {}; }
};

class Services;  // process-wide services a filter may need (log sinks, ...)
}  // namespace portico::api
namespace portico::auth {
class ConsumerDirectory;
}  // namespace portico::auth
namespace portico::api {

// What a filter's builder gets: its config, where it is in the file, and the services.
struct FilterBuildContext {
  const nlohmann::json& config;  // null when the entry has no `config`
  std::string path;              // e.g. "routes[2].plugins[0].config"
  config::Diagnostics& diag;     // report every problem here, with a path below `path`
  Services& services;
  // The snapshot's consumers and their credentials (owned by the snapshot, like the factory).
  std::shared_ptr<const auth::ConsumerDirectory> consumers;
  // The config's upstreams, for filters that call one by name (null in some unit tests).
  const std::vector<config::UpstreamConfig>* upstreams = nullptr;
  bool hasUpstream(std::string_view name) const {
    if (!upstreams) return true;
    for (const auto& u : *upstreams)
      if (u.name == name) return true;
    return false;
  }
};

struct FilterType {
  std::string name;
  // Validates the config and builds the factory. Returns nullptr after reporting errors.
  std::function<std::shared_ptr<const FilterFactory>(FilterBuildContext&)> build;
  // The factory depends on its config alone (not on where the config is, e.g. counters named
  // after the route): the routes of one snapshot with the same config share one factory, so
  // a request on any of 1,000 such routes reaches the same (cache-warm) objects.
  bool same_config_shares_factory = false;
};

}  // namespace portico::api
