#include "observability/line_rings.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <utility>

namespace portico::observability {

struct LineRings::Ring {
  explicit Ring(std::size_t bytes) : data(new char[bytes]), mask(bytes - 1) {}
  std::unique_ptr<char[]> data;
  const std::uint64_t mask;
  // Written by the producer only (head) and the consumer only (tail), on separate cache lines.
  alignas(64) std::atomic<std::uint64_t> head{0};
  alignas(64) std::atomic<std::uint64_t> tail{0};
  std::uint64_t cached_tail = 0;  // producer's last view of tail: rereads it only when full

  std::size_t capacity() const { return mask + 1; }
  void copyIn(std::uint64_t at, const char* src, std::size_t n) {
    const std::size_t offset = at & mask;
    const std::size_t first = std::min(n, capacity() - offset);
    std::memcpy(data.get() + offset, src, first);
    std::memcpy(data.get(), src + first, n - first);
  }
  char byteAt(std::uint64_t at) const { return data[at & mask]; }
};

namespace {

std::atomic<std::uint64_t> next_id{1};

}  // namespace

LineRings::LineRings(std::size_t ring_bytes)
    : id_(next_id.fetch_add(1)),
      ring_bytes_(std::bit_ceil(std::max<std::size_t>(ring_bytes, 4096))) {}

LineRings::~LineRings() = default;

LineRings::Ring& LineRings::mine() {
  // A few sinks per thread at most: a linear search of (owner id, ring).
  thread_local std::vector<std::pair<std::uint64_t, Ring*>> cache;
  for (const auto& [id, ring] : cache)
    if (id == id_) return *ring;
  std::lock_guard lock(mu_);
  rings_.push_back(std::make_unique<Ring>(ring_bytes_));
  cache.emplace_back(id_, rings_.back().get());
  return *rings_.back();
}

bool LineRings::push(std::string_view line) {
  Ring& r = mine();
  const std::uint64_t head = r.head.load(std::memory_order_relaxed);
  const std::size_t need = line.size() + 1;
  if (head + need - r.cached_tail > r.capacity()) {
    r.cached_tail = r.tail.load(std::memory_order_acquire);
    if (head + need - r.cached_tail > r.capacity()) return false;
  }
  r.copyIn(head, line.data(), line.size());
  r.data[(head + line.size()) & r.mask] = '\n';
  r.head.store(head + need, std::memory_order_release);
  return true;
}

std::size_t LineRings::drain(std::string& out, std::size_t max_lines) {
  const bool counting = max_lines != kAll;
  std::lock_guard lock(mu_);
  std::size_t lines = 0;
  for (auto& ring : rings_) {
    Ring& r = *ring;
    const std::uint64_t tail = r.tail.load(std::memory_order_relaxed);
    const std::uint64_t head = r.head.load(std::memory_order_acquire);
    if (head == tail) continue;
    // The buffered bytes are one or two contiguous pieces of the ring.
    const std::size_t offset = tail & r.mask;
    const std::size_t n = head - tail;
    const std::size_t first = std::min(n, r.capacity() - offset);
    const std::string_view pieces[2] = {{r.data.get() + offset, first}, {r.data.get(), n - first}};
    std::uint64_t taken = 0;
    for (std::string_view piece : pieces) {
      if (counting) {
        // Up to the newline that ends the last line still wanted.
        std::size_t cut = 0;
        while (cut < piece.size() && lines < max_lines) {
          const void* nl = std::memchr(piece.data() + cut, '\n', piece.size() - cut);
          if (!nl) {  // a line that goes on in the second piece
            cut = piece.size();
            break;
          }
          cut = static_cast<std::size_t>(static_cast<const char*>(nl) - piece.data()) + 1;
          ++lines;
        }
        piece = piece.substr(0, cut);
      }
      out.append(piece);
      taken += piece.size();
      if (counting && lines >= max_lines) break;
    }
    r.tail.store(tail + taken, std::memory_order_release);
    if (counting && lines >= max_lines) break;
  }
  return lines;
}

LineRings::Pieces LineRings::piecesOf(Ring& r) {
  const std::uint64_t tail = r.tail.load(std::memory_order_relaxed);
  const std::uint64_t head = r.head.load(std::memory_order_acquire);
  const std::size_t offset = tail & r.mask;
  const std::size_t n = head - tail;
  const std::size_t first = std::min(n, r.capacity() - offset);
  return {{r.data.get() + offset, first}, {r.data.get(), n - first}};
}

void LineRings::release(Ring& r, std::size_t n) {
  r.tail.store(r.tail.load(std::memory_order_relaxed) + n, std::memory_order_release);
}

bool LineRings::empty() const {
  std::lock_guard lock(mu_);
  for (const auto& r : rings_)
    if (r->head.load(std::memory_order_acquire) != r->tail.load(std::memory_order_relaxed))
      return false;
  return true;
}

}  // namespace portico::observability
