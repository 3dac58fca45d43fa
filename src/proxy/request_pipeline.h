#pragma once
// The protocol-independent life of one request: request id, snapshot, client-certificate
// headers, route, filters, local replies, the upstream exchange and the log phase. An HTTP/1
// connection runs one request after another through its pipeline; an HTTP/2 connection has one
// pipeline per stream. The protocol supplies reads and writes (SessionIo) and the two hooks
// below; everything else is written once.
#include <memory>
#include <string>
#include <vector>

#include "api/filter.h"
#include "proxy/upstream_exchange.h"
#include "tls/server_context.h"

namespace portico::proxy {

// What a request knows of the connection it came on.
struct ConnectionInfo {
  std::string client_ip;
  std::uint16_t client_port = 0;
  std::shared_ptr<const tls::ServerContext> tls;  // the listener's TLS context, if any
  tls::PeerIdentity peer;                         // client certificate, after the handshake
};

class RequestPipeline : public SessionIo {
 public:
  WorkerContext& worker() override { return w_; }
  void armOp(Clock::duration d) override;
  void disarmOp() override;
  bool opTimedOut() const override { return timed_out_; }
  bool totalExpired() const override { return total_expired_; }
  void setTotalDeadline(Clock::duration d) override;
  void setUpstreamSocket(Socket* s) override { upstream_socket_ = s; }
  void setUpstreamSignal(Timer* t) override { upstream_signal_ = t; }
  const RequestLimits& limits() const override { return limits_; }

  // Called by the worker's sweeper (through the connection): a passed deadline cancels the
  // pending I/O of this request.
  void checkDeadline(Clock::time_point now);

 protected:
  RequestPipeline(WorkerContext& w, const ConnectionInfo& conn) : w_(w), conn_(conn) {}
  ~RequestPipeline() = default;

  // A deadline passed: cancel whatever the request waits for on the client side.
  virtual void cancelClientIo() = 0;
  // Drops the request body if it is already buffered; false if it is not (all there).
  virtual bool skipBufferedBody() = 0;
  // Sends resp_ with `body`; returns whether the connection can serve another request.
  virtual Task<bool> writeLocalReply(const std::string& body, bool close) = 0;
  virtual std::string_view protocol() const = 0;

  void loadLimits();  // from the snapshot current now
  void beginRequest();
  // Instances of these filters for this request (global ones for requests answered before
  // routing, so that their response and log phases still run).
  void createFilters(const server::FilterFactories& factories);
  // Runs the request in req_ to its end; returns whether the connection may continue.
  Task<bool> handleRequest();
  Task<bool> replyError(int status, std::string_view reason, bool close,
                        std::string_view allow = {});
  void endRequest();  // drops the per-request references

  WorkerContext& w_;
  const ConnectionInfo& conn_;
  RequestLimits limits_;
  http::RequestHead req_;
  ExchangeScratch scratch_;
  http::ResponseHead& resp_ = scratch_.response;
  api::RequestContext ctx_;
  bool timed_out_ = false;
  bool grpc_ = false;  // the request is a gRPC call: errors are answered as gRPC statuses

 private:
  static constexpr auto kNever = Clock::time_point::max();

  Task<bool> replyLocal(bool close);
  bool acceptAnonymous();
  Task<bool> refuseRequest(api::LocalReply reply);
  void countRefusal();
  void clearConsumerHeaders(const config::ConsumerHeaders& names);
  void applyConsumerHeaders(const config::ConsumerHeaders& names);
  void runResponseFilters();
  void finish(int status);
  // Tracing (only when the snapshot has a tracer): ids and sampling at the start, the spans
  // handed to the exporter at the end.
  void startTrace();
  void finishTrace();
  bool applyClientCertificate();
  void cancelAll();

  std::shared_ptr<const server::Snapshot> snapshot_;
  const server::Route* route_ = nullptr;
  observability::RouteStats* route_stats_ = nullptr;
  std::vector<api::FilterPtr> filters_;
  std::size_t filters_ran_ = 0;
  std::string target_;
  api::LocalReply pending_refusal_;  // auth_mode any: the first refusal, while others may accept
  api::AuthFailure pending_failure_ = api::AuthFailure::None;
  bool total_expired_ = false;
  Clock::time_point op_deadline_ = kNever;
  Clock::time_point total_deadline_ = kNever;
  Socket* upstream_socket_ = nullptr;
  Timer* upstream_signal_ = nullptr;
};

}  // namespace portico::proxy
