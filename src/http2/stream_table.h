#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "core/flat_map.h"

namespace portico::http2 {

// The streams of one HTTP/2 connection by id: a FlatMap (open addressing with linear probing
// over a power-of-two array, core/flat_map.h), the id without its initiator bit as the slot. One
// side's ids are consecutive odd (or even) numbers, and the streams alive at a time are a window of
// them, so each usually sits in its own slot: a lookup reads one slot.
// std::unordered_map divided by a prime and followed a node pointer on every lookup, several
// times per request (docs/performance.md, "Session 20"). Ids a client picks to collide cost
// a probe per stream alive, which the connection's concurrent-stream limit bounds.
//
// Id 0 is the connection itself, never a stream: never found. A value's address changes when
// the table grows or a neighbour is removed: keep what a value points to, not the slot.
template <class V>
class StreamTable {
 public:
  V* find(std::int32_t id) { return id == 0 ? nullptr : map_.find(id); }
  const V* find(std::int32_t id) const { return id == 0 ? nullptr : map_.find(id); }

  // Adds the stream, or gives an id already present the new value.
  V& insert(std::int32_t id, V value) {
    V& slot = *map_.emplace(id, V{}).first;
    slot = std::move(value);
    return slot;
  }

  // Removes the stream; its value goes to `out` (when given). False when the id is absent.
  bool erase(std::int32_t id, V* out = nullptr) { return id != 0 && map_.erase(id, out); }

  std::size_t size() const { return map_.size(); }
  bool empty() const { return map_.empty(); }
  void clear() { map_.clear(); }

  // Calls f(id, value) for each stream. f must not add or remove streams.
  template <class F>
  void forEach(F&& f) {
    map_.forEach(std::forward<F>(f));
  }

 private:
  // The id without its initiator bit: consecutive ids of one side take consecutive slots.
  struct Home {
    std::size_t operator()(std::int32_t id) const { return static_cast<std::uint32_t>(id) >> 1; }
  };
  FlatMap<std::int32_t, V, Home> map_;
};

}  // namespace portico::http2
