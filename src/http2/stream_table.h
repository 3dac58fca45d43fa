#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace portico::http2 {

// The streams of one HTTP/2 connection by id: open addressing with linear probing over a
// power-of-two array, the id without its initiator bit as the slot. One side's ids are
// consecutive odd (or even) numbers, and the streams alive at a time are a window of them, so
// each usually sits in its own slot: a lookup is one masked index and one compare.
// std::unordered_map divided by a prime and followed a node pointer on every lookup, several
// times per request (docs/performance.md, "Session 20"). Ids a client picks to collide cost
// a probe per stream alive, which the connection's concurrent-stream limit bounds.
//
// Id 0 (the connection itself, never a stream) marks a free slot. A value's address changes
// when the table grows or a neighbour is removed: keep what a value points to, not the slot.
template <class V>
class StreamTable {
 public:
  V* find(std::int32_t id) {
    if (slots_.empty() || id == 0) return nullptr;
    for (std::size_t i = home(id);; i = next(i)) {
      Slot& s = slots_[i];
      if (s.id == id) return &s.value;
      if (s.id == 0) return nullptr;
    }
  }
  const V* find(std::int32_t id) const { return const_cast<StreamTable*>(this)->find(id); }

  // Adds the stream, or gives an id already present the new value.
  V& insert(std::int32_t id, V value) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    std::size_t i = home(id);
    while (slots_[i].id != 0 && slots_[i].id != id) i = next(i);
    Slot& s = slots_[i];
    if (s.id == 0) ++size_;
    s.id = id;
    s.value = std::move(value);
    return s.value;
  }

  // Removes the stream; its value goes to `out` (when given). False when the id is absent.
  bool erase(std::int32_t id, V* out = nullptr) {
    if (slots_.empty() || id == 0) return false;
    std::size_t i = home(id);
    while (slots_[i].id != id) {
      if (slots_[i].id == 0) return false;
      i = next(i);
    }
    if (out) *out = std::move(slots_[i].value);
    // Backward shift: later members of the run move into the hole when their home slot is not
    // between the hole and where they sit, so a lookup never stops early at a free slot.
    for (std::size_t j = next(i);; j = next(j)) {
      Slot& s = slots_[j];
      if (s.id == 0) break;
      std::size_t h = home(s.id);
      bool stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
      if (stays) continue;
      slots_[i].id = s.id;
      slots_[i].value = std::move(s.value);
      i = j;
    }
    slots_[i].id = 0;
    slots_[i].value = V{};
    --size_;
    return true;
  }

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  void clear() {
    for (Slot& s : slots_) s = Slot{};
    size_ = 0;
  }

  // Calls f(id, value) for each stream. f must not add or remove streams.
  template <class F>
  void forEach(F&& f) {
    for (Slot& s : slots_)
      if (s.id != 0) f(s.id, s.value);
  }

 private:
  struct Slot {
    std::int32_t id = 0;
    V value{};
  };

  std::size_t home(std::int32_t id) const {
    return (static_cast<std::uint32_t>(id) >> 1) & (slots_.size() - 1);
  }
  std::size_t next(std::size_t i) const { return (i + 1) & (slots_.size() - 1); }

  void grow() {
    std::vector<Slot> old =
        std::exchange(slots_, std::vector<Slot>(slots_.empty() ? 8 : slots_.size() * 2));
    size_ = 0;
    for (Slot& s : old)
      if (s.id != 0) insert(s.id, std::move(s.value));
  }

  std::vector<Slot> slots_;
  std::size_t size_ = 0;
};

}  // namespace portico::http2
