// Router match cost: 1 route vs 10,000 routes should be within 2x of each other, because the
// match walks path segments, not routes.
#include <benchmark/benchmark.h>

#include "router/route_matcher.h"

namespace {

using portico::config::RouteConfig;

std::vector<RouteConfig> makeRoutes(int n) {
  std::vector<RouteConfig> routes;
  for (int i = 0; i < n; ++i) {
    RouteConfig r;
    r.name = "r" + std::to_string(i);
    r.path = "routes[" + std::to_string(i) + "]";
    if (i % 2 == 0) {
      r.match.path_prefix = "/service" + std::to_string(i) + "/api";
    } else {
      r.match.path = "/service" + std::to_string(i) + "/items/{id}";
    }
    r.upstream = "u";
    routes.push_back(std::move(r));
  }
  return routes;
}

void BM_RouterMatch(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  auto routes = makeRoutes(n);
  portico::config::Diagnostics diag;
  auto matcher = portico::router::RouteMatcher::build(routes, diag);
  const std::string path = "/service" + std::to_string(n > 1 ? n - 1 : 1) + "/items/42";
  const std::string prefix_path = "/service0/api/users/7";
  portico::http::HeaderList headers;
  bool flip = false;
  for (auto _ : state) {
    portico::router::RequestView req{"api.example.com", "GET", flip ? path : prefix_path, "",
                                     &headers};
    flip = !flip;
    auto m = matcher->match(req);
    benchmark::DoNotOptimize(m);
  }
}
BENCHMARK(BM_RouterMatch)->Arg(1)->Arg(10000);

}  // namespace
