#include "filters/cache/cache_store.h"

#include <algorithm>

namespace portico::filters::cache {

std::string CachedResponse::requestValue(const http::HeaderList& request, std::string_view name) {
  std::string value;
  for (const auto& h : request) {
    if (!http::equalsIgnoreCase(h.name, name)) continue;
    if (!value.empty()) value += ", ";
    value += h.value;
  }
  return value;
}

bool CachedResponse::matches(const http::HeaderList& request) const {
  for (const auto& [name, value] : vary)
    if (requestValue(request, name) != value) return false;
  return true;
}

CacheStore::CacheStore(const TimeSource& time) : time_(time) {}

std::unique_ptr<CacheStore::Claim> CacheStore::claim(std::uint64_t bytes) {
  std::lock_guard lock(claims_mu_);
  claims_.insert(bytes);
  capacity_.store(*claims_.rbegin(), std::memory_order_relaxed);
  return std::make_unique<Claim>(*this, bytes);
}

void CacheStore::release(Claim* c) {
  std::lock_guard lock(claims_mu_);
  if (auto it = claims_.find(c->bytes()); it != claims_.end()) claims_.erase(it);
  capacity_.store(claims_.empty() ? 0 : *claims_.rbegin(), std::memory_order_relaxed);
}

std::shared_ptr<const CachedResponse> CacheStore::find(const std::string& key,
                                                       const http::HeaderList& request) {
  Shard& s = shardOf(key);
  std::lock_guard lock(s.mu);
  auto v = s.variants.find(key);
  if (v == s.variants.end()) return nullptr;
  for (const Lru::iterator it : v->second) {
    if (!(*it)->matches(request)) continue;
    s.lru.splice(s.lru.begin(), s.lru, it);
    return *it;
  }
  return nullptr;
}

bool CacheStore::insert(std::shared_ptr<CachedResponse> entry) {
  const std::uint64_t limit = maxEntryBytes();
  if (entry->bytes > limit) return false;
  Shard& s = shardOf(entry->key);
  std::lock_guard lock(s.mu);
  auto& list = s.variants[entry->key];
  for (auto it = list.begin(); it != list.end(); ++it) {
    if ((**it)->vary == entry->vary) {  // the same variant: replaced
      s.bytes -= (**it)->bytes;
      s.lru.erase(*it);
      list.erase(it);
      break;
    }
  }
  s.bytes += entry->bytes;
  s.lru.push_front(std::move(entry));
  list.push_back(s.lru.begin());
  while (s.bytes > limit && s.lru.size() > 1) {
    erase(s, std::prev(s.lru.end()));
    evictions_.fetch_add(1, std::memory_order_relaxed);
  }
  return true;
}

void CacheStore::erase(Shard& s, Lru::iterator it) {
  auto v = s.variants.find((*it)->key);
  if (v != s.variants.end()) {
    std::erase(v->second, it);
    if (v->second.empty()) s.variants.erase(v);
  }
  s.bytes -= (*it)->bytes;
  s.lru.erase(it);
}

bool CacheStore::joinFill(const std::string& key, std::function<void()> wake) {
  Shard& s = shardOf(key);
  std::lock_guard lock(s.mu);
  auto [it, first] = s.fills.try_emplace(key);
  if (!first) it->second.push_back(std::move(wake));
  return first;
}

void CacheStore::finishFill(const std::string& key) {
  std::vector<std::function<void()>> waiting;
  {
    Shard& s = shardOf(key);
    std::lock_guard lock(s.mu);
    auto it = s.fills.find(key);
    if (it == s.fills.end()) return;
    waiting = std::move(it->second);
    s.fills.erase(it);
  }
  for (auto& wake : waiting) wake();
}

std::size_t CacheStore::purge(const Purge& what) {
  auto selected = [&](const CachedResponse& e) {
    switch (what.kind) {
      case Purge::Kind::Key:
        return e.primary == what.value;
      case Purge::Kind::Tag:
        return std::find(e.tags.begin(), e.tags.end(), what.value) != e.tags.end();
      case Purge::Kind::Prefix:
        return e.path.starts_with(what.value);
      case Purge::Kind::All:
        return true;
    }
    return false;
  };
  std::size_t n = 0;
  for (Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    for (auto it = s.lru.begin(); it != s.lru.end();) {
      auto next = std::next(it);
      if (selected(**it)) {
        erase(s, it);
        ++n;
      }
      it = next;
    }
  }
  purged_.fetch_add(n, std::memory_order_relaxed);
  return n;
}

CacheStore::Totals CacheStore::totals() const {
  Totals t;
  for (const Slot& slot : slots_)
    for (std::size_t i = 0; i < t.events.size(); ++i)
      t.events[i] += slot.events[i].load(std::memory_order_relaxed);
  for (const Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    t.bytes += s.bytes;
    t.entries += s.lru.size();
  }
  t.evictions = evictions_.load(std::memory_order_relaxed);
  t.purged = purged_.load(std::memory_order_relaxed);
  t.capacity = capacity();
  return t;
}

void CacheStore::appendMetrics(std::string& out) const {
  const Totals t = totals();
  auto series = [&](std::string_view name, std::string_view type, std::string_view help,
                    std::uint64_t value) {
    out.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
    out.append(name).append(" ").append(std::to_string(value)).append("\n");
  };
  auto event = [&](Event e) { return t.events[static_cast<std::size_t>(e)]; };
  series("portico_cache_hits_total", "counter", "Requests answered from the response cache.",
         event(Event::Hit));
  series("portico_cache_misses_total", "counter",
         "Cacheable requests that went upstream (nothing usable stored).", event(Event::Miss));
  series("portico_cache_stale_total", "counter",
         "Stale answers served (stale-while-revalidate, stale-if-error).", event(Event::Stale));
  series("portico_cache_coalesced_total", "counter",
         "Requests that waited for another request's fetch of the same key.",
         event(Event::Coalesced));
  series("portico_cache_stored_total", "counter", "Answers stored.", event(Event::Stored));
  series("portico_cache_evictions_total", "counter", "Entries evicted for memory.", t.evictions);
  series("portico_cache_purged_total", "counter", "Entries removed by purge requests.", t.purged);
  series("portico_cache_bytes", "gauge", "Memory used by stored answers.", t.bytes);
  series("portico_cache_entries", "gauge", "Stored answers.", t.entries);
  series("portico_cache_capacity_bytes", "gauge", "The cache's memory.", t.capacity);
}

}  // namespace portico::filters::cache
