#pragma once
// A worker's spare connection buffers. A keep-alive connection waiting for its next request
// holds no buffer of its own (IoBuffer::park): it takes one from here when bytes arrive and
// gives it back once the request is done, so a worker's buffers number its busy connections,
// not its open ones. One thread only.
//
// Client connections read requests into 16 KiB (HAProxy's size). Upstream connections read
// responses into 32 KiB: a response of 16 KiB and its head arrive in one read and are relayed
// at once, where 16 KiB took a second read and the streaming relay (docs/performance.md,
// session 21).
#include <cstddef>
#include <memory>
#include <vector>

namespace portico {

class BufferPool {
 public:
  static constexpr std::size_t kClientBufferSize = 16 * 1024;
  static constexpr std::size_t kUpstreamBufferSize = 32 * 1024;

  // Buffers of `buffer_size` bytes; keeps at most `keep` spares, more given back are freed.
  // With 64 connections busy, 64 spares sent a buffer per request to malloc
  // (portico_alloc_tests).
  explicit BufferPool(std::size_t buffer_size = kClientBufferSize, std::size_t keep = 256)
      : buffer_size_(buffer_size), keep_(keep) {}

  std::size_t bufferSize() const { return buffer_size_; }
  std::unique_ptr<char[]> take() {
    if (spare_.empty()) return std::unique_ptr<char[]>(new char[buffer_size_]);
    std::unique_ptr<char[]> b = std::move(spare_.back());
    spare_.pop_back();
    return b;
  }
  void give(std::unique_ptr<char[]> buffer) {
    if (spare_.size() < keep_) spare_.push_back(std::move(buffer));
  }
  std::size_t spare() const { return spare_.size(); }

 private:
  std::size_t buffer_size_;
  std::size_t keep_;
  std::vector<std::unique_ptr<char[]>> spare_;
};

}  // namespace portico
