#pragma once
// A worker's spare connection buffers. A keep-alive connection waiting for its next request
// holds no buffer of its own (IoBuffer::park): it takes one from here when bytes arrive and
// gives it back once the request is done, so a worker's buffers number its busy connections,
// not its open ones (16 KiB each; nginx and HAProxy do the same). One thread only.
#include <cstddef>
#include <memory>
#include <vector>

namespace portico {

class BufferPool {
 public:
  static constexpr std::size_t kBufferSize = 16 * 1024;

  // Keeps at most `keep` spare buffers; more given back are freed. Client and pooled upstream
  // connections both park here: with 64 of each busy, 64 spares sent a buffer per request to
  // malloc (portico_alloc_tests).
  explicit BufferPool(std::size_t keep = 256) : keep_(keep) {}

  std::unique_ptr<char[]> take() {
    if (spare_.empty()) return std::unique_ptr<char[]>(new char[kBufferSize]);
    std::unique_ptr<char[]> b = std::move(spare_.back());
    spare_.pop_back();
    return b;
  }
  void give(std::unique_ptr<char[]> buffer) {
    if (spare_.size() < keep_) spare_.push_back(std::move(buffer));
  }
  std::size_t spare() const { return spare_.size(); }

 private:
  std::size_t keep_;
  std::vector<std::unique_ptr<char[]>> spare_;
};

}  // namespace portico
