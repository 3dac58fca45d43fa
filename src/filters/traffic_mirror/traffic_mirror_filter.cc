#include "filters/traffic_mirror/traffic_mirror_filter.h"

#include <atomic>
#include <memory>

#include "api/worker_services.h"
#include "config/reader.h"
#include "filters/config_factory.h"

namespace portico::filters {
namespace {

struct MirrorConfig {
  std::string upstream;
  double fraction = 1.0;
  std::uint32_t max_in_flight = 64;            // copies running at once, all workers together
  std::uint64_t max_body_bytes = 1024 * 1024;  // a longer body is not mirrored (counted)
  std::chrono::milliseconds timeout{5000};
  // Copies in flight: shared by the workers, touched only by mirrored requests.
  std::shared_ptr<std::atomic<std::uint32_t>> in_flight =
      std::make_shared<std::atomic<std::uint32_t>>(0);
};

class TrafficMirrorFilter final : public api::Filter {
 public:
  explicit TrafficMirrorFilter(const MirrorConfig& c) : c_(c) {}

  api::FilterStatus onRequestHeaders(api::RequestContext& ctx) override {
    // Sampled once per request; 2^-53 resolution.
    if (c_.fraction < 1.0) {
      const double draw =
          ctx.worker ? static_cast<double>(ctx.worker->random() >> 11) * 0x1.0p-53 : 0.0;
      active_ = draw < c_.fraction;
    } else {
      active_ = true;
    }
    return api::FilterStatus::Continue;
  }

  void onRequestBody(api::RequestContext& ctx, std::string_view chunk, bool end) override {
    if (!active_) return;
    if (body_.size() + chunk.size() > c_.max_body_bytes) {
      active_ = false;
      body_ = std::string();
      if (ctx.calls) ctx.calls->mirrorDropped(c_.upstream);
      return;
    }
    body_.append(chunk);
    if (end) send(ctx);
  }

 private:
  // The whole request is known (its body forwarded): the copy leaves now, on its own.
  void send(api::RequestContext& ctx) {
    active_ = false;
    if (!ctx.calls) return;
    if (c_.in_flight->fetch_add(1, std::memory_order_relaxed) >= c_.max_in_flight) {
      c_.in_flight->fetch_sub(1, std::memory_order_relaxed);
      ctx.calls->mirrorDropped(c_.upstream);
      return;
    }
    const auto& req = *ctx.request;
    api::CallRequest call;
    call.upstream = c_.upstream;
    call.method = req.method;
    call.target = std::string(ctx.forward_target);
    call.headers = req.headers;
    call.headers.remove("content-length");
    call.headers.remove("transfer-encoding");
    call.headers.remove("expect");
    if (const std::string* host = req.headers.find("host")) call.host = *host;
    call.body = std::move(body_);
    call.timeout = c_.timeout;
    call.discard_response = true;
    call.detached = true;
    call.mirror = true;
    call.span_name = "mirror";
    ctx.calls->start(std::move(call), [in_flight = c_.in_flight](api::CallResponse) {
      in_flight->fetch_sub(1, std::memory_order_relaxed);
    });
  }

  const MirrorConfig& c_;
  bool active_ = false;
  std::string body_;
};

}  // namespace

api::FilterType trafficMirrorFilterType() {
  return {"traffic-mirror",
          [](api::FilterBuildContext& b) -> std::shared_ptr<const api::FilterFactory> {
            MirrorConfig c;
            config::ObjectReader r(b.config, b.path, b.diag);
            r.string("upstream", c.upstream, true);
            r.ratio("fraction", c.fraction);
            r.number("max_in_flight", 1, 100'000, c.max_in_flight);
            r.size("max_body_bytes", c.max_body_bytes);
            config::Duration timeout{5000};
            r.duration("timeout", timeout);
            r.finish();
            c.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(timeout);
            if (!c.upstream.empty() && !b.hasUpstream(c.upstream))
              b.diag.add(r.childPath("upstream"), "unknown upstream \"" + c.upstream + "\"");
            if (c.upstream.empty() || !b.hasUpstream(c.upstream)) return nullptr;
            return std::make_shared<ConfigFactory<TrafficMirrorFilter, MirrorConfig>>(std::move(c));
          }};
}

}  // namespace portico::filters
