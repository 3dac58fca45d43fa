#pragma once
// A hash map for lookups on the request path into tables that are cold in the CPU cache
// (one of 1,000 routes' tables, one of 10,000 consumers): open addressing with linear probing
// over a power-of-two array whose slots hold the key's hash, the key and the value side by
// side. A lookup reads one slot (a run of neighbours at worst) and compares the stored hash
// before the key. std::unordered_map reads a bucket, the node before the chain and the node:
// three dependent cache misses where this reads one (issue 17's spread scale row,
// docs/performance.md "Session 22").
//
// A stored hash of 0 marks a free slot (a key that hashes to 0 is stored as 1). The table is
// at most half full. A value's address changes when the table grows or a neighbour is erased:
// keep what a value points to, not the value's address, across changes.
#include <cstddef>
#include <memory>
#include <utility>
#include <vector>

namespace portico {

template <class K, class V, class Hash, class Alloc = std::allocator<K>>
class FlatMap {
  struct Slot {
    std::size_t hash = 0;
    K key{};
    V value{};
  };
  using SlotAlloc = typename std::allocator_traits<Alloc>::template rebind_alloc<Slot>;

 public:
  FlatMap() = default;
  explicit FlatMap(const Alloc& alloc) : slots_(SlotAlloc(alloc)) {}

  template <class Q>
  V* find(const Q& key) {
    if (size_ == 0) return nullptr;
    const std::size_t h = hashOf(key);
    for (std::size_t i = h & mask();; i = (i + 1) & mask()) {
      Slot& s = slots_[i];
      if (s.hash == h && s.key == key) return &s.value;
      if (s.hash == 0) return nullptr;
    }
  }
  template <class Q>
  const V* find(const Q& key) const {
    return const_cast<FlatMap*>(this)->find(key);
  }

  // Adds key -> value unless the key is present. Returns the key's value and whether it was
  // added (a present key keeps its value).
  std::pair<V*, bool> emplace(K key, V value) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    const std::size_t h = hashOf(key);
    std::size_t i = h & mask();
    for (; slots_[i].hash != 0; i = (i + 1) & mask()) {
      if (slots_[i].hash == h && slots_[i].key == key) return {&slots_[i].value, false};
    }
    slots_[i] = Slot{h, std::move(key), std::move(value)};
    ++size_;
    return {&slots_[i].value, true};
  }

  // Erases the key; its value goes to `out` (when given). False when the key is absent.
  template <class Q>
  bool erase(const Q& key, V* out = nullptr) {
    if (size_ == 0) return false;
    const std::size_t h = hashOf(key);
    std::size_t i = h & mask();
    for (; !(slots_[i].hash == h && slots_[i].key == key); i = (i + 1) & mask()) {
      if (slots_[i].hash == 0) return false;
    }
    if (out) *out = std::move(slots_[i].value);
    eraseAt(i);
    return true;
  }

  // Erases every entry for which pred(key, value) holds; returns how many.
  template <class Pred>
  std::size_t eraseIf(Pred pred) {
    std::size_t erased = 0;
    for (std::size_t i = 0; i < slots_.size();) {
      // An erase shifts a later slot into i: look at i again before moving on.
      if (slots_[i].hash != 0 && pred(std::as_const(slots_[i].key), slots_[i].value)) {
        eraseAt(i);
        ++erased;
      } else {
        ++i;
      }
    }
    return erased;
  }

  // Calls f(key, value) for each entry. f must not add or erase entries.
  template <class F>
  void forEach(F&& f) {
    for (Slot& s : slots_)
      if (s.hash != 0) f(std::as_const(s.key), s.value);
  }

  void clear() {
    for (Slot& s : slots_) s = Slot{};
    size_ = 0;
  }

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  Alloc get_allocator() const { return Alloc(slots_.get_allocator()); }

 private:
  template <class Q>
  static std::size_t hashOf(const Q& key) {
    const std::size_t h = Hash{}(key);
    return h != 0 ? h : 1;
  }
  std::size_t mask() const { return slots_.size() - 1; }

  void grow() {
    std::vector<Slot, SlotAlloc> old(slots_.get_allocator());
    old.swap(slots_);
    slots_.resize(old.empty() ? 8 : old.size() * 2);
    for (Slot& s : old) {
      if (s.hash == 0) continue;
      std::size_t i = s.hash & mask();
      while (slots_[i].hash != 0) i = (i + 1) & mask();
      slots_[i] = std::move(s);
    }
  }

  // Backward shift: later members of the run move into the hole when their home slot is not
  // between the hole and where they sit, so a lookup never stops early at a free slot.
  void eraseAt(std::size_t hole) {
    for (std::size_t j = (hole + 1) & mask(); slots_[j].hash != 0; j = (j + 1) & mask()) {
      const std::size_t home = slots_[j].hash & mask();
      const bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
      if (stays) continue;
      slots_[hole] = std::move(slots_[j]);
      hole = j;
    }
    slots_[hole] = Slot{};
    --size_;
  }

  std::vector<Slot, SlotAlloc> slots_;
  std::size_t size_ = 0;
};

}  // namespace portico
