#pragma once
// Per-request state of filters (Envoy's filter state, Pingora's CTX): typed slots that live
// for one request, so that a filter (or two cooperating filters) need no new RequestContext
// field. Slots are keyed by type; the first get<T>() makes a T, later ones return it. Cleared
// when the request ends. Worker thread only.
#include <memory>
#include <utility>
#include <vector>

namespace portico::api {

class FilterState {
 public:
  // The request's T, made (value-initialised) on first use.
  template <class T>
  T& get() {
    if (T* found = find<T>()) return *found;
    auto owned = std::make_unique<Slot<T>>();
    T& value = owned->value;
    slots_.push_back(std::move(owned));
    return value;
  }
  // The request's T, or nullptr when no filter made one.
  template <class T>
  T* find() const {
    for (const auto& s : slots_)
      if (s->key() == key<T>()) return &static_cast<Slot<T>*>(s.get())->value;
    return nullptr;
  }
  bool empty() const { return slots_.empty(); }
  void clear() { slots_.clear(); }

 private:
  struct SlotBase {
    virtual ~SlotBase() = default;
    virtual const void* key() const = 0;
  };
  template <class T>
  struct Slot final : SlotBase {
    T value{};
    const void* key() const override { return FilterState::key<T>(); }
  };
  // One address per type: a key without RTTI.
  template <class T>
  static const void* key() {
    static const char tag = 0;
    return &tag;
  }
  std::vector<std::unique_ptr<SlotBase>> slots_;
};

}  // namespace portico::api
