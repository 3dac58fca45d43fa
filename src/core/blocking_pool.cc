#include "core/blocking_pool.h"

#include <spdlog/spdlog.h>

#include <exception>

#include "core/exception_text.h"

namespace portico {

BlockingPool::BlockingPool(unsigned threads) {
  for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

BlockingPool::~BlockingPool() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void BlockingPool::post(std::function<void()> job) {
  {
    std::lock_guard lock(mu_);
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void BlockingPool::run() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
      if (jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    // A job that throws (a bug) is logged; the thread goes on with the next one, where the
    // exception would have ended the process.
    try {
      job();
    } catch (...) {
      spdlog::error("blocking pool: a job ended by an exception: {}",
                    exceptionText(std::current_exception()));
    }
  }
}

}  // namespace portico
