#include "ratelimit/concurrency.h"

namespace portico::ratelimit {

bool InFlight::tryAcquire() {
  std::int64_t n = in_flight_.load();
  while (n < max_)
    if (in_flight_.compare_exchange_weak(n, n + 1)) return true;
  return false;
}

bool InFlight::enqueue(const std::shared_ptr<Waiter>& w, std::size_t queue_max) {
  std::unique_lock lock(mu_);
  if (queue_.size() >= queue_max) return false;
  // Announce the wait before trying once more: a release that ran between the caller's failed
  // tryAcquire and here either sees `waiting_` or left a slot this try takes.
  waiting_.fetch_add(1);
  if (tryAcquire()) {
    waiting_.fetch_sub(1);
    lock.unlock();
    if (w->cancel()) w->grant();
    return true;
  }
  queue_.push_back(w);
  return true;
}

void InFlight::forget(const std::shared_ptr<Waiter>& w) {
  std::lock_guard lock(mu_);
  for (auto it = queue_.begin(); it != queue_.end(); ++it) {
    if (*it == w) {
      queue_.erase(it);
      waiting_.fetch_sub(1);
      return;
    }
  }
}

void InFlight::release() {
  in_flight_.fetch_sub(1);
  if (waiting_.load() == 0) return;
  std::unique_lock lock(mu_);
  while (!queue_.empty() && tryAcquire()) {
    auto w = std::move(queue_.front());
    queue_.pop_front();
    waiting_.fetch_sub(1);
    if (w->cancel()) {
      lock.unlock();
      w->grant();
      return;
    }
    in_flight_.fetch_sub(1);  // it gave up meanwhile: the slot goes to the next one
  }
}

bool InFlight::idle() const {
  std::lock_guard lock(mu_);
  return in_flight_.load() == 0 && queue_.empty();
}

std::shared_ptr<InFlight> InFlightTable::get(std::string_view key) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it != entries_.end()) return it->second;
  if (entries_.size() >= 10000) {
    for (auto i = entries_.begin(); i != entries_.end();)
      i = i->second.use_count() == 1 && i->second->idle() ? entries_.erase(i) : std::next(i);
  }
  return entries_.emplace(std::string(key), std::make_shared<InFlight>(max_)).first->second;
}

}  // namespace portico::ratelimit
