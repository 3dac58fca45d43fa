#pragma once
// Log lines handed from request threads to the log writer's thread without a lock: one
// single-producer, single-consumer byte ring per (sink, writing thread), made the first time a
// thread writes to the sink. A push is a copy and one release store; a full ring drops the
// line (the caller counts it). Lines of one thread stay in order; lines of different threads
// are interleaved by drain, not by time.
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace portico::observability {

class LineRings {
 public:
  // Each thread's ring holds `ring_bytes` (rounded up to a power of two).
  explicit LineRings(std::size_t ring_bytes);
  ~LineRings();
  LineRings(const LineRings&) = delete;
  LineRings& operator=(const LineRings&) = delete;

  // Producer side, any thread: appends `line` and a newline; false when it does not fit.
  bool push(std::string_view line);
  // Consumer side, one thread at a time: appends whole lines (each with its newline) to `out`,
  // at most `max_lines`, and returns how many (0 when not counting: max_lines == kAll).
  static constexpr std::size_t kAll = static_cast<std::size_t>(-1);
  std::size_t drain(std::string& out, std::size_t max_lines = kAll);
  // Consumer side: hands every buffered byte to `write` in contiguous pieces (whole lines
  // taken together), then frees them. No copy: for writers that can take the pieces as they are.
  template <class Write>
  void drainPieces(Write&& write) {
    std::lock_guard lock(mu_);
    for (auto& ring : rings_) {
      const Pieces p = piecesOf(*ring);
      if (p.first.empty()) continue;
      write(p.first);
      if (!p.second.empty()) write(p.second);
      release(*ring, p.first.size() + p.second.size());
    }
  }
  bool empty() const;

 private:
  struct Ring;
  struct Pieces {
    std::string_view first, second;
  };
  Ring& mine();
  static Pieces piecesOf(Ring& r);
  static void release(Ring& r, std::size_t n);

  const std::uint64_t
      id_;  // never reused: a thread's cache entry of a destroyed object never matches
  const std::size_t ring_bytes_;
  mutable std::mutex mu_;  // guards rings_ (registration, and the consumer's walk)
  std::vector<std::unique_ptr<Ring>> rings_;
};

}  // namespace portico::observability
