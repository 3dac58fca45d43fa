#include "proxy/wake_event.h"

namespace portico::proxy {

asio::execution_context::id WakeEventRegistry::id;

void WakeEventRegistry::link(WakeEvent* e) {
  e->next_ = head_;
  if (head_) head_->prev_ = e;
  head_ = e;
}

void WakeEventRegistry::unlink(WakeEvent* e) {
  if (e->prev_) e->prev_->next_ = e->next_;
  if (e->next_) e->next_->prev_ = e->prev_;
  if (head_ == e) head_ = e->next_;
  e->prev_ = e->next_ = nullptr;
}

void WakeEventRegistry::shutdown() {
  shut_down_ = true;
  // Dropping a handler destroys coroutine frames, which may destroy other events (they unlink
  // themselves): take them one at a time from the head.
  while (WakeEvent* e = head_) {
    unlink(e);
    e->registry_ = nullptr;
    e->drop();
  }
}

WakeEvent::WakeEvent(Executor ex)
    : ex_(ex), registry_(&asio::use_service<WakeEventRegistry>(ex.context())) {
  if (registry_->shut_down_) {
    registry_ = nullptr;
  } else {
    registry_->link(this);
  }
}

WakeEvent::~WakeEvent() {
  if (registry_) {
    registry_->unlink(this);
    if (!registry_->shut_down_) {
      complete(asio::error::operation_aborted);
      return;
    }
  }
  drop();
}

}  // namespace portico::proxy
