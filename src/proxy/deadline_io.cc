#include "proxy/deadline_io.h"

#include "proxy/wake_event.h"

namespace portico::proxy {

void DeadlineIo::armOp(Clock::duration d) {
  timed_out_ = false;
  op_deadline_ = d.count() > 0 ? worker().time.coarseSteady() + d : kNever;
}

void DeadlineIo::disarmOp() {
  op_deadline_ = kNever;
  timed_out_ = false;
}

void DeadlineIo::setTotalDeadline(Clock::duration d) {
  total_deadline_ = d.count() > 0 ? worker().time.coarseSteady() + d : kNever;
  total_expired_ = false;
}

void DeadlineIo::checkDeadline(Clock::time_point now) {
  if (now >= op_deadline_) {
    op_deadline_ = kNever;
    timed_out_ = true;
    cancelAll();
  }
  if (now >= total_deadline_) {
    total_deadline_ = kNever;
    total_expired_ = true;
    cancelAll();
  }
}

void DeadlineIo::cancelAll() {
  cancelClientIo();
  boost::system::error_code ec;
  if (upstream_socket_) upstream_socket_->cancel(ec);
  if (upstream_signal_) upstream_signal_->wake();
}

}  // namespace portico::proxy
