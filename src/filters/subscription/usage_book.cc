#include "filters/subscription/usage_book.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <tuple>

namespace portico::filters {

using nlohmann::json;

namespace {

std::string utcDate(std::int64_t unix_seconds, const char* format) {
  const std::time_t secs = unix_seconds;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char out[32];
  std::strftime(out, sizeof out, format, &tm);
  return out;
}

std::uint64_t count(const json& v, const char* key) {
  const auto it = v.find(key);
  if (it == v.end() || !it->is_number_integer()) return 0;
  return it->is_number_unsigned() ? it->get<std::uint64_t>()
                                  : static_cast<std::uint64_t>(std::max<std::int64_t>(0, *it));
}

// Whether quota figures `b` were seen after `a`: by time, and for answers at the same time
// (two workers, one microsecond) the later period, then the fewer left (a count only grows).
bool seenLater(const QuotaSeen& a, const QuotaSeen& b) {
  return std::tuple(a.seen_at, a.resets_at, -a.remaining) <=
         std::tuple(b.seen_at, b.resets_at, -b.remaining);
}

QuotaSeen quotaOf(const json& q) {
  return {q.value("limit", std::int64_t{-1}), q.value("remaining", std::int64_t{0}),
          q.value("resets_at", std::int64_t{0}), q.value("seen_at", std::int64_t{0})};
}

}  // namespace

std::int64_t UsageBook::dayOf(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::hours>(t.time_since_epoch()).count() / 24;
}

void UsageBook::record(int worker, const std::string& application, const std::string& api,
                       std::int64_t day, int status, std::chrono::nanoseconds latency,
                       const QuotaSeen& quota) {
  Shard& s = shards_[static_cast<std::size_t>(worker) % shards_.size()];
  std::lock_guard lock(s.mu);
  Counts& c = s.counts[{application, day, api}];
  ++c.requests;
  if (status >= 400 && status < 500) ++c.errors_4xx;
  if (status >= 500 || status == 0) ++c.errors_5xx;
  ++c.latency[observability::FineLatency::bucketOf(latency)];
  if (quota.limit >= 0 && seenLater(c.quota, quota)) c.quota = quota;
  // Old days go as new ones come (a day's first request in a shard pays for it).
  if (c.requests == 1)
    std::erase_if(s.counts, [&](const auto& e) { return std::get<1>(e.first) <= day - kDays; });
}

json UsageBook::valueOf(const Counts& c) {
  json latency = json::object();
  for (std::size_t i = 0; i < c.latency.size(); ++i)
    if (c.latency[i]) latency[std::to_string(i)] = c.latency[i];
  json v = {{"requests", c.requests},
            {"errors_4xx", c.errors_4xx},
            {"errors_5xx", c.errors_5xx},
            {"latency", std::move(latency)}};
  if (c.quota.limit >= 0)
    v["quota"] = {{"limit", c.quota.limit},
                  {"remaining", c.quota.remaining},
                  {"resets_at", c.quota.resets_at},
                  {"seen_at", c.quota.seen_at}};
  return v;
}

std::vector<store::UsageRecord> UsageBook::take() {
  std::vector<store::UsageRecord> out;
  for (Shard& s : shards_) {
    std::map<Key, Counts> taken;
    {
      std::lock_guard lock(s.mu);
      taken.swap(s.counts);
    }
    for (const auto& [key, c] : taken)
      out.push_back({std::get<0>(key), std::get<2>(key), std::get<1>(key), valueOf(c)});
  }
  return coalesce(std::move(out));
}

std::vector<store::UsageRecord> UsageBook::coalesce(std::vector<store::UsageRecord> records) {
  std::map<Key, json> merged;
  for (auto& r : records) merge(merged[{r.application, r.day, r.api}], r.value);
  std::vector<store::UsageRecord> out;
  out.reserve(merged.size());
  for (auto& [key, value] : merged)
    out.push_back({std::get<0>(key), std::get<2>(key), std::get<1>(key), std::move(value)});
  return out;
}

std::vector<store::UsageRecord> UsageBook::peek(const std::string& application,
                                                std::int64_t from_day) const {
  std::vector<store::UsageRecord> out;
  for (const Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    for (auto it = s.counts.lower_bound({application, from_day, ""});
         it != s.counts.end() && std::get<0>(it->first) == application; ++it)
      out.push_back(
          {application, std::get<2>(it->first), std::get<1>(it->first), valueOf(it->second)});
  }
  return out;
}

void UsageBook::merge(json& into, const json& add) {
  if (!into.is_object()) into = json::object();
  if (!add.is_object()) return;
  for (const char* key : {"requests", "errors_4xx", "errors_5xx"})
    into[key] = count(into, key) + count(add, key);
  json& latency = into["latency"];
  if (!latency.is_object()) latency = json::object();
  if (const auto it = add.find("latency"); it != add.end() && it->is_object())
    for (const auto& item : it->items())
      latency[item.key()] = count(latency, item.key().c_str()) + count(*it, item.key().c_str());
  const auto quota = add.find("quota");
  if (quota != add.end() && quota->is_object() &&
      (!into.contains("quota") || seenLater(quotaOf(into["quota"]), quotaOf(*quota))))
    into["quota"] = *quota;
}

json UsageBook::report(const std::vector<store::UsageRecord>& records, std::int64_t today, int days,
                       std::int64_t now_unix) {
  std::map<std::pair<std::int64_t, std::string>, json, std::greater<>> merged;  // (day, api)
  std::map<std::string, json> quota;  // per API: the figures seen last, on any day
  for (const auto& r : records) {
    if (const auto q = r.value.find("quota"); q != r.value.end() && q->is_object()) {
      json& last = quota[r.api];
      if (last.is_null() || seenLater(quotaOf(last), quotaOf(*q))) last = *q;
    }
    if (r.day > today || r.day <= today - days) continue;
    merge(merged[{r.day, r.api}], r.value);
  }
  json data = json::array();
  for (const auto& [key, v] : merged) {
    observability::ReleaseTotals t;  // its quantile over the same buckets
    t.requests = count(v, "requests");
    const json& latency = v.at("latency");  // merge() always makes it
    for (const auto& item : latency.items()) {
      const auto i = static_cast<std::size_t>(std::strtoul(item.key().c_str(), nullptr, 10));
      if (i < t.latency.size()) t.latency[i] = count(latency, item.key().c_str());
    }
    data.push_back({{"day", utcDate(key.first * 86400, "%Y-%m-%d")},
                    {"api", key.second},
                    {"requests", t.requests},
                    {"errors_4xx", count(v, "errors_4xx")},
                    {"errors_5xx", count(v, "errors_5xx")},
                    {"p95_ms", std::round(t.quantileMs(0.95) * 100) / 100}});
  }
  json left = json::array();
  for (const auto& [api, q] : quota) {
    const std::int64_t limit = q.value("limit", 0LL);
    const std::int64_t resets_at = q.value("resets_at", 0LL);
    json item = {{"api", api}, {"limit", limit}};
    if (resets_at > now_unix) {  // else its period ended: a new one starts with all of it
      item["remaining"] = q.value("remaining", 0LL);
      item["resets_at"] = utcDate(resets_at, "%Y-%m-%dT%H:%M:%SZ");
    } else {
      item["remaining"] = limit;
    }
    left.push_back(std::move(item));
  }
  return {{"data", std::move(data)}, {"quota", std::move(left)}};
}

}  // namespace portico::filters
