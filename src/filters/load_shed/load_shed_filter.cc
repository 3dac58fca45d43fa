#include "filters/load_shed/load_shed_filter.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>

#include "api/services.h"
#include "config/reader.h"
#include "filters/auth_reply.h"
#include "filters/config_factory.h"

namespace portico::filters {
namespace {

using std::chrono::duration_cast;
using std::chrono::microseconds;

// What every filter with the same name watches: requests in flight, recent latency (EWMA) and
// the priority below which requests are shed. Atomics: every worker updates it.
class Pressure {
 public:
  Pressure(std::vector<int> levels) : levels_(std::move(levels)) {}

  // The lowest priority still admitted (levels_[cutoff]).
  int admittedFrom() const { return levels_[static_cast<std::size_t>(cutoff_.load())]; }
  std::atomic<std::int64_t>& inFlight() { return in_flight_; }

  void recordLatency(std::int64_t us) {
    // EWMA with weight 1/8, in microseconds.
    std::int64_t old = ewma_us_.load(std::memory_order_relaxed);
    std::int64_t next;
    do {
      next = old == 0 ? us : old + (us - old) / 8;
    } while (!ewma_us_.compare_exchange_weak(old, next, std::memory_order_relaxed));
  }

  // At most once per `every`: one level more shed while over target, one less once well
  // under it (below 80%: hysteresis, so the cut-off does not flap).
  void adjust(std::int64_t now_us, std::int64_t every_us, double max_in_flight,
              double target_latency_us) {
    std::int64_t last = last_adjust_us_.load(std::memory_order_relaxed);
    if (now_us - last < every_us) return;
    if (!last_adjust_us_.compare_exchange_strong(last, now_us)) return;
    double load = 0;
    if (max_in_flight > 0) load = std::max(load, double(in_flight_.load()) / max_in_flight);
    if (target_latency_us > 0) load = std::max(load, double(ewma_us_.load()) / target_latency_us);
    const int top = static_cast<int>(levels_.size()) - 1;
    int c = cutoff_.load();
    if (load > 1.0 && c < top) {
      cutoff_.store(c + 1);
    } else if (load < 0.8 && c > 0) {
      cutoff_.store(c - 1);
    }
  }

 private:
  const std::vector<int> levels_;  // distinct priorities, ascending
  std::atomic<int> cutoff_{0};
  std::atomic<std::int64_t> in_flight_{0};
  std::atomic<std::int64_t> ewma_us_{0};
  std::atomic<std::int64_t> last_adjust_us_{0};
};

struct LoadShedConfig {
  std::int64_t max_in_flight = 0;
  config::Duration target_latency{0};
  config::Duration adjust_every{std::chrono::milliseconds(100)};
  int default_priority = 0;
  std::map<std::string, int> routes;
  std::map<std::string, int> groups;
  std::shared_ptr<Pressure> pressure;
};

class LoadShedFilter final : public api::Filter {
 public:
  explicit LoadShedFilter(const LoadShedConfig& c) : c_(c) {}

  api::FilterStatus onRequestHeaders(api::RequestContext& ctx) override {
    const std::int64_t now = duration_cast<microseconds>(ctx.start.time_since_epoch()).count();
    auto& p = *c_.pressure;
    p.adjust(now, duration_cast<microseconds>(c_.adjust_every).count(),
             static_cast<double>(c_.max_in_flight),
             static_cast<double>(duration_cast<microseconds>(c_.target_latency).count()));
    if (priority(ctx) < p.admittedFrom()) {
      replyError(ctx, 503, "overloaded: request shed");
      ctx.local_reply.headers.add("Retry-After", "1");
      return api::FilterStatus::Reply;
    }
    p.inFlight().fetch_add(1, std::memory_order_relaxed);
    admitted_ = true;
    return api::FilterStatus::Continue;
  }

  void onLog(const api::RequestContext& ctx) noexcept override {
    if (!admitted_) return;
    c_.pressure->inFlight().fetch_sub(1, std::memory_order_relaxed);
    c_.pressure->recordLatency(duration_cast<microseconds>(ctx.total_latency).count());
  }

 private:
  int priority(const api::RequestContext& ctx) const {
    int best = -1;
    bool found = false;
    if (ctx.consumer) {
      for (const auto& g : ctx.consumer->groups) {
        auto it = c_.groups.find(g);
        if (it != c_.groups.end() && (!found || it->second > best)) {
          best = it->second;
          found = true;
        }
      }
    }
    if (found) return best;
    auto it = c_.routes.find(std::string(ctx.route_name));
    return it != c_.routes.end() ? it->second : c_.default_priority;
  }

  const LoadShedConfig& c_;
  bool admitted_ = false;
};

void readPriorities(config::ObjectReader& r, std::string_view key,
                    std::map<std::string, int>& out) {
  const nlohmann::json* node = r.get(key);
  if (!node) return;
  const std::string path = r.childPath(key);
  if (!node->is_object()) {
    r.diagnostics().add(path, "must map names to priorities (integers)");
    return;
  }
  for (auto it = node->begin(); it != node->end(); ++it) {
    std::int64_t v = 0;
    if (config::readInt(it.value(), config::joinPath(path, it.key()), r.diagnostics(), -1000, 1000,
                        v))
      out[it.key()] = static_cast<int>(v);
  }
}

}  // namespace

api::FilterType loadShedFilterType() {
  return {"load-shed", [](api::FilterBuildContext& b) -> std::shared_ptr<const api::FilterFactory> {
            const std::size_t errors = b.diag.items().size();
            LoadShedConfig c;
            config::ObjectReader r(b.config, b.path, b.diag);
            r.integer("max_in_flight", 0, 10'000'000, c.max_in_flight);
            r.duration("target_latency", c.target_latency);
            r.duration("adjust_every", c.adjust_every);
            r.number("default_priority", -1000, 1000, c.default_priority);
            readPriorities(r, "route_priorities", c.routes);
            readPriorities(r, "group_priorities", c.groups);
            std::string name = b.path;
            r.string("name", name);
            r.finish();
            if (c.max_in_flight == 0 && c.target_latency.count() == 0)
              b.diag.add(b.path, "give max_in_flight or target_latency (or both)");
            if (c.adjust_every.count() <= 0)
              b.diag.add(r.childPath("adjust_every"), "must be positive");
            if (b.diag.items().size() != errors) return nullptr;
            std::vector<int> levels{c.default_priority};
            for (const auto& [_, p] : c.routes) levels.push_back(p);
            for (const auto& [_, p] : c.groups) levels.push_back(p);
            std::sort(levels.begin(), levels.end());
            levels.erase(std::unique(levels.begin(), levels.end()), levels.end());
            std::string key = "load-shed|" + name;
            for (int l : levels) key += "|" + std::to_string(l);
            c.pressure = std::static_pointer_cast<Pressure>(b.services.shared(key, [&] {
              return std::static_pointer_cast<void>(std::make_shared<Pressure>(levels));
            }));
            return std::make_shared<ConfigFactory<LoadShedFilter, LoadShedConfig>>(std::move(c));
          }};
}

}  // namespace portico::filters
