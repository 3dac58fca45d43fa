#include "router/route_matcher.h"

#include <algorithm>
#include <cstring>

#include <re2/re2.h>

#include "config/reader.h"
#include "core/flat_map.h"

namespace portico::router {
namespace {

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

enum Rank : std::uint64_t { kNoPath = 0, kPrefix = 1, kRegex = 2, kTemplate = 3, kExact = 4 };

std::uint64_t specificity(Rank rank, std::uint64_t segments, std::uint64_t conditions) {
  return (rank << 56) | (std::min<std::uint64_t>(segments, 0xffff) << 32) |
         std::min<std::uint64_t>(conditions, 0xffff);
}

// Splits "/a/b/" into {"a", "b", ""}; "/" into {""}.
template <class F>
void forEachSegment(std::string_view path, F&& f) {
  if (path.empty() || path[0] != '/') return;
  path.remove_prefix(1);
  for (;;) {
    auto slash = path.find('/');
    if (!f(path.substr(0, slash))) return;
    if (slash == std::string_view::npos) return;
    path.remove_prefix(slash + 1);
  }
}

bool isParam(std::string_view seg) {
  return seg.size() > 2 && seg.front() == '{' && seg.back() == '}';
}

std::string_view hostWithoutPort(std::string_view host) {
  if (!host.empty() && host[0] == '[') {
    auto close = host.find(']');
    return close == std::string_view::npos ? host : host.substr(0, close + 1);
  }
  auto colon = host.rfind(':');
  return colon == std::string_view::npos ? host : host.substr(0, colon);
}

std::string_view queryParam(std::string_view query, std::string_view name, bool& found) {
  found = false;
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    auto eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      found = true;
      return eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return {};
}

struct Candidate {
  const CompiledRoute* route;
  Params params;
};

}  // namespace

// Everything a node holds lives in its matcher's arena (RouteMatcher::arena_), nodes included:
// they are never destroyed one by one, the arena is released whole.
struct TrieNode {
  explicit TrieNode(std::pmr::memory_resource* arena)
      : children(arena), exact(arena), prefix(arena) {}
  static TrieNode* make(std::pmr::memory_resource* arena) {
    return new (arena->allocate(sizeof(TrieNode), alignof(TrieNode))) TrieNode(arena);
  }

  // By segment, which is kept in the arena. A flat table: one slot read per lookup where the
  // trie is cold (a request to one of 1,000 routes; core/flat_map.h).
  FlatMap<std::string_view, TrieNode*, StringHash, std::pmr::polymorphic_allocator<std::byte>>
      children;
  TrieNode* param = nullptr;
  struct Terminal {
    const CompiledRoute* route;
    std::pmr::vector<std::pmr::string> param_names;  // in segment order
  };
  std::pmr::vector<Terminal> exact;
  std::pmr::vector<const CompiledRoute*> prefix;
};

struct RouteMatcher::Table {
  explicit Table(std::pmr::memory_resource* arena) : root(*TrieNode::make(arena)) {}
  TrieNode& root;
  std::vector<const CompiledRoute*> regex;  // sorted best first
  std::vector<const CompiledRoute*> any;    // routes without a path matcher

  void collect(std::string_view path, std::vector<Candidate>& out) const {
    // Per-thread scratch: matching allocates nothing once these have grown.
    thread_local std::vector<std::string_view> segments;
    thread_local std::vector<std::string_view> captured;
    segments.clear();
    captured.clear();
    forEachSegment(path, [&](std::string_view s) {
      segments.push_back(s);
      return true;
    });
    walk(&root, segments, 0, captured, out);
    for (const auto* r : regex) {
      const int groups = r->path_regex->NumberOfCapturingGroups();
      std::vector<re2::StringPiece> pieces(static_cast<std::size_t>(groups) + 1);
      if (!r->path_regex->Match(re2::StringPiece(path.data(), path.size()), 0, path.size(),
                                re2::RE2::ANCHOR_BOTH, pieces.data(), groups + 1))
        continue;
      Candidate c{r, {}};
      for (const auto& [name, idx] : r->path_regex->NamedCapturingGroups()) {
        const auto& p = pieces[static_cast<std::size_t>(idx)];
        c.params.emplace_back(name, std::string(p.data(), p.size()));
      }
      out.push_back(std::move(c));
    }
    for (const auto* r : any) out.push_back(Candidate{r, {}});
  }

  void walk(const TrieNode* node, const std::vector<std::string_view>& segs, std::size_t depth,
            std::vector<std::string_view>& captured, std::vector<Candidate>& out) const {
    for (const auto* r : node->prefix) out.push_back(Candidate{r, {}});
    if (depth == segs.size()) {
      for (const auto& t : node->exact) {
        Candidate c{t.route, {}};
        for (std::size_t i = 0; i < t.param_names.size() && i < captured.size(); ++i)
          c.params.emplace_back(std::string(t.param_names[i]), std::string(captured[i]));
        out.push_back(std::move(c));
      }
      return;
    }
    auto seg = segs[depth];
    if (TrieNode* const* child = node->children.find(seg))
      walk(*child, segs, depth + 1, captured, out);
    if (node->param && !seg.empty()) {
      captured.push_back(seg);
      walk(node->param, segs, depth + 1, captured, out);
      captured.pop_back();
    }
  }
};

bool ValueMatcher::matches(const std::string* value) const {
  if (!present) return value == nullptr;
  if (!value) return false;
  if (has_exact) return *value == exact;
  if (regex) return re2::RE2::FullMatch(*value, *regex);
  return true;
}

bool CompiledRoute::methodAllowed(std::string_view method) const {
  if (methods.empty()) return true;
  return std::find(methods.begin(), methods.end(), method) != methods.end();
}

bool CompiledRoute::conditionsMatch(const RequestView& req) const {
  for (const auto& h : headers) {
    if (!h.matches(req.headers ? req.headers->find(h.name) : nullptr)) return false;
  }
  for (const auto& q : query) {
    bool found = false;
    std::string_view v = queryParam(req.query, q.name, found);
    std::string value(v);
    if (!q.matches(found ? &value : nullptr)) return false;
  }
  return true;
}

RouteMatcher::RouteMatcher()
    : arena_(std::make_unique<std::pmr::monotonic_buffer_resource>()),
      any_(std::make_unique<Table>(arena_.get())) {}
RouteMatcher::~RouteMatcher() = default;
RouteMatcher::RouteMatcher(RouteMatcher&&) noexcept = default;
RouteMatcher& RouteMatcher::operator=(RouteMatcher&&) noexcept = default;

namespace {

std::shared_ptr<const re2::RE2> compileRegex(const std::string& pattern, const std::string& path,
                                             config::Diagnostics& diag) {
  re2::RE2::Options options;
  options.set_log_errors(false);
  auto re = std::make_shared<re2::RE2>(pattern, options);
  if (!re->ok()) {
    diag.add(path, "invalid regular expression: " + re->error());
    return nullptr;
  }
  return re;
}

void compileValueMatchers(const std::vector<config::ValueMatch>& in, const std::string& path,
                          config::Diagnostics& diag, std::vector<ValueMatcher>& out) {
  for (std::size_t i = 0; i < in.size(); ++i) {
    ValueMatcher m;
    m.name = in[i].name;
    m.present = in[i].present;
    if (in[i].exact) {
      m.exact = *in[i].exact;
      m.has_exact = true;
    }
    if (in[i].regex) m.regex = compileRegex(*in[i].regex, config::indexPath(path, i), diag);
    out.push_back(std::move(m));
  }
}

void insertPath(TrieNode& root, const CompiledRoute* route, std::string_view path, bool prefix,
                std::pmr::memory_resource* arena) {
  TrieNode* node = &root;
  std::pmr::vector<std::pmr::string> names(arena);
  if (!(prefix && path == "/")) {
    forEachSegment(path, [&](std::string_view seg) {
      if (isParam(seg)) {
        names.emplace_back(seg.substr(1, seg.size() - 2));
        if (!node->param) node->param = TrieNode::make(arena);
        node = node->param;
      } else {
        TrieNode** child = node->children.find(seg);
        if (!child) {
          // The node first, then its segment: the arena lays them out one after the other.
          TrieNode* made = TrieNode::make(arena);
          auto* chars = static_cast<char*>(arena->allocate(seg.size(), 1));
          std::memcpy(chars, seg.data(), seg.size());
          child = node->children.emplace(std::string_view(chars, seg.size()), made).first;
        }
        node = *child;
      }
      return true;
    });
  }
  if (prefix) {
    node->prefix.push_back(route);
  } else {
    node->exact.push_back(TrieNode::Terminal{route, std::move(names)});
  }
}

}  // namespace

std::unique_ptr<RouteMatcher> RouteMatcher::build(const std::vector<config::RouteConfig>& routes,
                                                  config::Diagnostics& diag,
                                                  const std::function<bool(std::size_t)>& include,
                                                  bool any_host) {
  auto m = std::make_unique<RouteMatcher>();
  struct Pending {
    const config::RouteConfig* cfg;
    CompiledRoute* compiled;
  };
  std::vector<Pending> pending;
  for (std::size_t i = 0; i < routes.size(); ++i) {
    if (include && !include(i)) continue;
    const auto& rc = routes[i];
    auto cr = std::make_unique<CompiledRoute>();
    cr->index = i;
    cr->priority = rc.priority;
    cr->methods = rc.match.methods;
    // Error paths are made only where something can fail (10,000 routes per Admin API write).
    const auto matchPath = [&rc] { return rc.path + ".match"; };
    if (!rc.match.headers.empty())
      compileValueMatchers(rc.match.headers, matchPath() + ".headers", diag, cr->headers);
    if (!rc.match.query.empty())
      compileValueMatchers(rc.match.query, matchPath() + ".query", diag, cr->query);
    std::uint64_t conditions =
        (cr->methods.empty() ? 0 : 1) + cr->headers.size() + cr->query.size();
    if (rc.match.path) {
      std::size_t statics = 0, total = 0;
      bool templated = false;
      forEachSegment(*rc.match.path, [&](std::string_view seg) {
        ++total;
        if (isParam(seg)) {
          templated = true;
        } else {
          if (seg.find_first_of("{}") != std::string_view::npos)
            diag.add(matchPath() + ".path", "a {param} must be a whole segment");
          ++statics;
        }
        return true;
      });
      cr->specificity = templated ? specificity(kTemplate, statics * 256 + total, conditions)
                                  : specificity(kExact, total, conditions);
    } else if (rc.match.path_prefix) {
      std::string p = *rc.match.path_prefix;
      while (p.size() > 1 && p.back() == '/') p.pop_back();
      cr->prefix = p;
      std::size_t segments =
          p == "/" ? 0 : static_cast<std::size_t>(std::count(p.begin(), p.end(), '/'));
      cr->specificity = specificity(kPrefix, segments, conditions);
    } else if (rc.match.path_regex) {
      cr->path_regex = compileRegex(*rc.match.path_regex, matchPath() + ".path_regex", diag);
      cr->specificity = specificity(kRegex, rc.match.path_regex->size(), conditions);
    } else {
      cr->specificity = specificity(kNoPath, 0, conditions);
    }
    pending.push_back(Pending{&rc, cr.get()});
    m->routes_.push_back(std::move(cr));
  }
  if (!diag.empty()) return m;

  auto tableFor = [&](const std::string& host) -> Table& {
    if (host.rfind("*.", 0) == 0) {
      std::string suffix = host.substr(1);  // ".example.com"
      for (auto& [s, t] : m->wildcard_hosts_) {
        if (s == suffix) return *t;
      }
      m->wildcard_hosts_.emplace_back(suffix, std::make_unique<Table>(m->arena_.get()));
      return *m->wildcard_hosts_.back().second;
    }
    auto& t = m->exact_hosts_[host];
    if (!t) t = std::make_unique<Table>(m->arena_.get());
    return *t;
  };
  for (const auto& p : pending) {
    std::vector<Table*> tables;
    if (p.cfg->match.hosts.empty() || any_host) {
      tables.push_back(m->any_.get());
    } else {
      for (const auto& h : p.cfg->match.hosts) tables.push_back(&tableFor(h));
    }
    for (Table* t : tables) {
      const auto& mt = p.cfg->match;
      if (mt.path) {
        insertPath(t->root, p.compiled, *mt.path, false, m->arena_.get());
      } else if (mt.path_prefix) {
        insertPath(t->root, p.compiled, p.compiled->prefix, true, m->arena_.get());
      } else if (mt.path_regex) {
        t->regex.push_back(p.compiled);
      } else {
        t->any.push_back(p.compiled);
      }
    }
  }
  // Longest wildcard suffix first: "*.api.example.com" before "*.example.com".
  std::stable_sort(m->wildcard_hosts_.begin(), m->wildcard_hosts_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  return m;
}

MatchResult RouteMatcher::match(const RequestView& req) const {
  std::string_view host = hostWithoutPort(req.host);
  const Table* tables[3];
  std::size_t count = 0;
  if (!exact_hosts_.empty()) {
    if (auto it = exact_hosts_.find(std::string(host)); it != exact_hosts_.end())
      tables[count++] = it->second.get();
  }
  for (const auto& [suffix, table] : wildcard_hosts_) {
    if (host.size() > suffix.size() && host.substr(host.size() - suffix.size()) == suffix) {
      tables[count++] = table.get();
      break;
    }
  }
  tables[count++] = any_.get();

  MatchResult result;
  thread_local std::vector<Candidate> candidates;
  for (std::size_t t = 0; t < count; ++t) {
    candidates.clear();
    tables[t]->collect(req.path, candidates);
    if (candidates.empty()) continue;
    std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
      if (a.route->specificity != b.route->specificity)
        return a.route->specificity > b.route->specificity;
      if (a.route->priority != b.route->priority) return a.route->priority > b.route->priority;
      return a.route->index < b.route->index;
    });
    std::vector<std::string> allowed;
    for (auto& c : candidates) {
      if (!c.route->conditionsMatch(req)) continue;
      if (!c.route->methodAllowed(req.method)) {
        for (const auto& mth : c.route->methods) allowed.push_back(mth);
        continue;
      }
      result.kind = MatchResult::Kind::Matched;
      result.route = c.route;
      result.params = std::move(c.params);
      return result;
    }
    if (!allowed.empty() && result.kind == MatchResult::Kind::NotFound) {
      std::sort(allowed.begin(), allowed.end());
      allowed.erase(std::unique(allowed.begin(), allowed.end()), allowed.end());
      result.kind = MatchResult::Kind::MethodNotAllowed;
      for (const auto& a : allowed) result.allow += result.allow.empty() ? a : ", " + a;
    }
  }
  return result;
}

std::string rewritePath(const config::RouteConfig& route, const CompiledRoute& compiled,
                        std::string_view path, const Params& params) {
  if (route.strip_prefix && !compiled.prefix.empty() && compiled.prefix != "/") {
    std::string_view rest = path.substr(std::min(path.size(), compiled.prefix.size()));
    if (rest.empty()) return "/";
    return std::string(rest);
  }
  if (route.rewrite) {
    const std::string& tpl = *route.rewrite;
    std::string out;
    out.reserve(tpl.size() + 16);
    for (std::size_t i = 0; i < tpl.size(); ++i) {
      if (tpl[i] == '{') {
        auto close = tpl.find('}', i);
        if (close != std::string::npos) {
          std::string_view name(tpl.data() + i + 1, close - i - 1);
          for (const auto& [k, v] : params) {
            if (k == name) {
              out += v;
              break;
            }
          }
          i = close;
          continue;
        }
      }
      out += tpl[i];
    }
    return out;
  }
  return std::string(path);
}

}  // namespace portico::router
