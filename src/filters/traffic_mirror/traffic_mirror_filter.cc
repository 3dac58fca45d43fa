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
  ~TrafficMirrorFilter() override {
    if (body_) body_->abort();  // the request ended before its body did: so does the copy
  }

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

  // The body streams to the copy as it is forwarded; the copy starts with its first piece
  // (the path after rewrites is known by then).
  void onRequestBody(api::RequestContext& ctx, std::string_view chunk, bool end) override {
    if (!active_ || !ctx.calls) return;
    if (!body_ && !start(ctx, end && chunk.empty())) return;
    if (!body_) return;                            // a body-less request: sent whole
    if (!chunk.empty() && !body_->write(chunk)) {  // the mirror fell too far behind
      body_->abort();
      body_.reset();
      active_ = false;
      ctx.calls->mirrorDropped(c_.upstream);
      return;
    }
    if (end) {
      body_->end();
      body_.reset();
      active_ = false;
    }
  }

 private:
  bool start(api::RequestContext& ctx, bool no_body) {
    if (c_.in_flight->fetch_add(1, std::memory_order_relaxed) >= c_.max_in_flight) {
      c_.in_flight->fetch_sub(1, std::memory_order_relaxed);
      active_ = false;
      ctx.calls->mirrorDropped(c_.upstream);
      return false;
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
    call.timeout = c_.timeout;
    call.discard_response = true;
    call.detached = true;
    call.mirror = true;
    call.span_name = "mirror";
    auto done = [in_flight = c_.in_flight](api::CallResponse) {
      in_flight->fetch_sub(1, std::memory_order_relaxed);
    };
    if (no_body || req.framing == http::BodyFraming::None) {
      ctx.calls->start(std::move(call), std::move(done));
      active_ = false;
      return true;
    }
    if (req.framing == http::BodyFraming::ContentLength) call.body_length = req.content_length;
    body_ = ctx.calls->startStreamed(std::move(call), std::move(done)).first;
    if (!body_) active_ = false;
    return body_ != nullptr;
  }

  const MirrorConfig& c_;
  bool active_ = false;
  std::shared_ptr<api::BodyWriter> body_;  // the copy's body, while it streams
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
