#pragma once
// The deadlines of one exchange's side of a SessionIo: the current operation's and the whole
// exchange's, kept as coarse time stamps and enforced by the worker's sweeper (checkDeadline),
// which cancels the pending I/O — the client side through cancelClientIo(), the upstream side
// through the socket or stream signal the exchange registered. Shared by a client request
// (RequestPipeline) and an upstream call (CallIo): no timer is armed per operation.
#include "proxy/upstream_exchange.h"

namespace portico::proxy {

class DeadlineIo : public SessionIo {
 public:
  void armOp(Clock::duration d) override;
  void disarmOp() override;
  bool opTimedOut() const override { return timed_out_; }
  bool totalExpired() const override { return total_expired_; }
  void setTotalDeadline(Clock::duration d) override;
  void setUpstreamSocket(Socket* s) override { upstream_socket_ = s; }
  void setUpstreamSignal(WakeEvent* e) override { upstream_signal_ = e; }

  // Called by the worker's sweeper: a passed deadline cancels the pending I/O.
  void checkDeadline(Clock::time_point now);

 protected:
  ~DeadlineIo() = default;
  // A deadline passed: cancel whatever the exchange waits for on its own (client) side.
  virtual void cancelClientIo() = 0;
  // Cancels everything pending, client and upstream side (a deadline, or the request is gone).
  void cancelAll();

  bool timed_out_ = false;

 private:
  static constexpr auto kNever = Clock::time_point::max();
  bool total_expired_ = false;
  Clock::time_point op_deadline_ = kNever;
  Clock::time_point total_deadline_ = kNever;
  Socket* upstream_socket_ = nullptr;
  WakeEvent* upstream_signal_ = nullptr;
};

}  // namespace portico::proxy
