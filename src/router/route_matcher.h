#pragma once
// The compiled router: host groups (exact, "*." wildcards, any), each with a segment trie for
// exact, templated and prefix paths, plus RE2 path regexes. The cost of a match grows with the
// number of path segments, not with the number of routes. Immutable once built.
#include <cstdint>
#include <functional>
#include <memory>
#include <memory_resource>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "config/diagnostics.h"
#include "config/model.h"
#include "http/header_list.h"

namespace re2 {
class RE2;
}

namespace portico::router {

struct RequestView {
  std::string_view host;  // lower-case, port allowed
  std::string_view method;
  std::string_view path;
  std::string_view query;
  const http::HeaderList* headers = nullptr;
};

using Params = std::vector<std::pair<std::string, std::string>>;

struct ValueMatcher {
  std::string name;
  std::string exact;
  bool has_exact = false;
  std::shared_ptr<const re2::RE2> regex;
  bool present = true;
  bool matches(const std::string* value) const;
};

// One route as the matcher sees it. `index` is its position in the config's routes.
struct CompiledRoute {
  std::size_t index = 0;
  int priority = 0;
  std::vector<std::string> methods;  // empty = any
  std::vector<ValueMatcher> headers;
  std::vector<ValueMatcher> query;
  std::shared_ptr<const re2::RE2> path_regex;
  std::string prefix;             // normalised path_prefix, for strip_prefix
  std::uint64_t specificity = 0;  // higher wins; ties go to priority, then config order

  bool methodAllowed(std::string_view method) const;
  bool conditionsMatch(const RequestView& req) const;
};

struct MatchResult {
  enum class Kind { Matched, NotFound, MethodNotAllowed };
  Kind kind = Kind::NotFound;
  const CompiledRoute* route = nullptr;
  Params params;      // {name} captures, or named regex groups
  std::string allow;  // for MethodNotAllowed: "GET, POST"
};

class RouteMatcher {
 public:
  RouteMatcher();
  ~RouteMatcher();
  RouteMatcher(RouteMatcher&&) noexcept;
  RouteMatcher& operator=(RouteMatcher&&) noexcept;

  // Builds the matcher of the routes `include` accepts (by index; null: all); with `any_host`
  // their hosts are ignored. Errors (bad regex, bad template) go to `diag` under each route's
  // path.
  static std::unique_ptr<RouteMatcher> build(
      const std::vector<config::RouteConfig>& routes, config::Diagnostics& diag,
      const std::function<bool(std::size_t)>& include = nullptr, bool any_host = false);

  MatchResult match(const RequestView& req) const;

  struct Table;  // one host group
 private:
  // The tries' nodes, keys and lists, freed at once with the matcher: a 10,000-route trie was
  // ~40,000 allocations per build and as many frees, for every Admin API write. Declared first,
  // so it outlives the tables.
  std::unique_ptr<std::pmr::monotonic_buffer_resource> arena_;
  std::unique_ptr<Table> any_;
  std::unordered_map<std::string, std::unique_ptr<Table>> exact_hosts_;
  std::vector<std::pair<std::string, std::unique_ptr<Table>>> wildcard_hosts_;  // ".example.com"
  std::vector<std::unique_ptr<CompiledRoute>> routes_;
};

// Applies a route's rewrite to `path` (query untouched): strip_prefix, or a template with
// {param} placeholders filled from `params`.
std::string rewritePath(const config::RouteConfig& route, const CompiledRoute& compiled,
                        std::string_view path, const Params& params);

}  // namespace portico::router
