#pragma once
// A coroutine's parking place on a worker: it waits there until another party on the same
// worker wakes it (a stream waiting for its request, a writer for output).
//
// Why not an Asio timer that never expires and is cancelled to wake (what this replaces): each
// wait took the reactor's mutex and inserted into its timer heap, each wake took the mutex
// again, removed the entry and posted the completion — two lock pairs and ~700 instructions
// per wait and wake. Here the waiter's completion handler is kept in the event and posted
// when it is woken: one post, no heap, no reactor.
//
// Same semantics as the timer it replaces: a wake with nobody waiting is not remembered (the
// waiter checks its condition in a loop); the event going away completes a parked waiter
// with operation_aborted; the worker's io_context shutting down destroys a parked waiter's
// handler (its coroutine frames) without running it, as Asio does with pending operations.
#include "proxy/io_types.h"

#include <boost/asio/async_result.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace portico::proxy {

class WakeEvent;

// The events of one io_context, so that its shutdown can let go of parked waiters (their
// handlers are in no queue of Asio's, which would otherwise destroy them).
class WakeEventRegistry final : public asio::execution_context::service {
 public:
  using key_type = WakeEventRegistry;
  static asio::execution_context::id id;

  explicit WakeEventRegistry(asio::execution_context& context) : service(context) {}
  void shutdown() override;

 private:
  friend class WakeEvent;
  void link(WakeEvent* e);
  void unlink(WakeEvent* e);
  WakeEvent* head_ = nullptr;
  bool shut_down_ = false;
};

class WakeEvent {
 public:
  explicit WakeEvent(Executor ex);
  ~WakeEvent();
  WakeEvent(const WakeEvent&) = delete;
  WakeEvent& operator=(const WakeEvent&) = delete;

  // Completes once woken (no error), or with operation_aborted when the event goes first.
  // One waiter at a time.
  template <class Token>
  auto async_wait(Token&& token) {
    return asio::async_initiate<Token, void(boost::system::error_code)>(
        [this](auto handler) { this->park(std::move(handler)); }, token);
  }

  // Wakes the waiter, if any: its completion is posted, to run once the caller is back in the
  // event loop. With nobody waiting, nothing happens.
  void wake() { complete(boost::system::error_code()); }
  bool waiting() const { return post_ != nullptr; }

 private:
  friend class WakeEventRegistry;
  using PostFn = void (*)(void* storage, Executor ex, boost::system::error_code ec);
  using DropFn = void (*)(void* storage);

  template <class Handler>
  void park(Handler handler) {
    static_assert(sizeof(Handler) <= kStorage && alignof(Handler) <= alignof(std::max_align_t),
                  "the waiter's handler does not fit the event's storage");
    complete(asio::error::operation_aborted);  // a second waiter: the first one goes
    ::new (static_cast<void*>(storage_)) Handler(std::move(handler));
    post_ = [](void* storage, Executor ex, boost::system::error_code ec) {
      Handler* parked = std::launder(static_cast<Handler*>(storage));
      Handler h(std::move(*parked));
      parked->~Handler();
      // A plain function object: no associated executor, so no work tracking on the way.
      asio::post(ex, [h = std::move(h), ec]() mutable { std::move(h)(ec); });
    };
    // Moved out first: destroying it destroys coroutine frames, which may own this event.
    drop_ = [](void* storage) {
      Handler* parked = std::launder(static_cast<Handler*>(storage));
      Handler h(std::move(*parked));
      parked->~Handler();
    };
  }
  void complete(boost::system::error_code ec) {
    if (!post_) return;
    const PostFn post = std::exchange(post_, nullptr);
    drop_ = nullptr;
    post(storage_, ex_, ec);
  }
  void drop() {  // the io_context shuts down: the handler goes without running
    if (!drop_) return;
    const DropFn d = std::exchange(drop_, nullptr);
    post_ = nullptr;
    d(storage_);
  }

  static constexpr std::size_t kStorage = 64;
  Executor ex_;
  WakeEventRegistry* registry_;
  WakeEvent* prev_ = nullptr;
  WakeEvent* next_ = nullptr;
  PostFn post_ = nullptr;
  DropFn drop_ = nullptr;
  alignas(std::max_align_t) unsigned char storage_[kStorage];
};

}  // namespace portico::proxy
