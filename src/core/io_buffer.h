#pragma once
// A flat byte buffer for one direction of a connection: read into the tail, parse or forward
// from the head, compact when the head has moved. Fixed capacity keeps memory bounded however
// large a body is. An empty buffer may be parked: its storage goes back to the worker's pool
// until bytes arrive again (an idle keep-alive connection holds none).
#include <cstring>
#include <memory>
#include <string_view>

#include "core/buffer_pool.h"

namespace portico {

class IoBuffer {
 public:
  explicit IoBuffer(std::size_t capacity) : data_(new char[capacity]), capacity_(capacity) {}
  // Parked from the start: storage comes from the pool on the first unpark().
  IoBuffer() : capacity_(0) {}

  bool parked() const { return !data_; }
  // Gives the storage of an empty buffer back: to the pool when it is the pool's size, else
  // (grown for a large head) to the allocator.
  void park(BufferPool& pool) {
    if (!data_ || !empty()) return;
    if (capacity_ == pool.bufferSize()) pool.give(std::move(data_));
    data_.reset();
    capacity_ = 0;
  }
  void unpark(BufferPool& pool) {
    if (data_) return;
    data_ = pool.take();
    capacity_ = pool.bufferSize();
  }

  std::string_view readable() const { return {data_.get() + begin_, end_ - begin_}; }
  std::size_t size() const { return end_ - begin_; }
  bool empty() const { return begin_ == end_; }
  void consume(std::size_t n) {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  void clear() { begin_ = end_ = 0; }

  // Space to read into; compacts first when the tail is full.
  char* writePtr() {
    if (end_ == capacity_ && begin_ > 0) compact();
    return data_.get() + end_;
  }
  std::size_t writable() {
    if (end_ == capacity_ && begin_ > 0) compact();
    return capacity_ - end_;
  }
  void commit(std::size_t n) { end_ += n; }
  std::size_t capacity() const { return capacity_; }

  // Grows to hold at least `capacity` bytes (used while a large head is arriving).
  void reserve(std::size_t capacity) {
    if (capacity <= capacity_) return;
    std::unique_ptr<char[]> bigger(new char[capacity]);
    if (data_) std::memcpy(bigger.get(), data_.get() + begin_, size());
    end_ -= begin_;
    begin_ = 0;
    data_ = std::move(bigger);
    capacity_ = capacity;
  }

  void compact() {
    if (begin_ == 0) return;
    std::memmove(data_.get(), data_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }

 private:
  std::unique_ptr<char[]> data_;
  std::size_t capacity_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

}  // namespace portico
