#include "ratelimit/redis_scripts.h"

namespace portico::ratelimit {
namespace {

// KEYS: one hash per limit (field: bucket number, value: count).
// ARGV: buckets per window, then requests, window_us, bucket_us per limit.
// Returns {refused limit (0: admitted), now_us, then per limit: count, newest bucket, n, and
// for the refusing limit only n (bucket, count) pairs}, counts as they were before this
// request. Small replies on the common path: the full list is only needed for Retry-After.
const redis::Script kSlidingWindow(R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local P = tonumber(ARGV[1])
local refused = 0
local out = {0, now}
local buckets = {}
for i = 1, #KEYS do
  local limit = tonumber(ARGV[3 * i - 1])
  local window = tonumber(ARGV[3 * i])
  local d = tonumber(ARGV[3 * i + 1])
  local b = math.floor(now / d)
  buckets[i] = {b, math.ceil((window + 2 * d) / 1000)}
  local h = redis.call('HGETALL', KEYS[i])
  local sum = 0
  local newest = 0
  local live = {}
  for j = 1, #h, 2 do
    local bucket = tonumber(h[j])
    local c = tonumber(h[j + 1])
    if b - bucket > P then
      redis.call('HDEL', KEYS[i], h[j])
    else
      sum = sum + c
      if bucket > newest then newest = bucket end
      live[#live + 1] = bucket
      live[#live + 1] = c
    end
  end
  out[#out + 1] = sum
  out[#out + 1] = newest
  if refused == 0 and sum + 1 > limit then
    refused = i
    out[#out + 1] = #live / 2
    for j = 1, #live do out[#out + 1] = live[j] end
  else
    out[#out + 1] = 0
  end
end
if refused == 0 then
  for i = 1, #KEYS do
    redis.call('HINCRBY', KEYS[i], string.format('%.0f', buckets[i][1]), 1)
    redis.call('PEXPIRE', KEYS[i], buckets[i][2])
  end
end
out[1] = refused
return out
)lua");

// KEYS: one string per limit (the theoretical arrival time, in microseconds).
// ARGV: window_us, emission_us per limit.
// Returns {refused limit (0: admitted), now_us, tat per limit (before this request)}.
const redis::Script kTokenBucket(R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local refused = 0
local out = {0, now}
for i = 1, #KEYS do
  local window = tonumber(ARGV[2 * i - 1])
  local e = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  out[i + 2] = tat
  if tat < now then tat = now end
  if refused == 0 and tat + e - now > window then refused = i end
end
if refused == 0 then
  for i = 1, #KEYS do
    local e = tonumber(ARGV[2 * i])
    local tat = out[i + 2]
    if tat < now then tat = now end
    local next = tat + e
    redis.call('SET', KEYS[i], string.format('%.0f', next), 'PX', math.ceil((next - now) / 1000) + 1)
  end
end
out[1] = refused
return out
)lua");

}  // namespace

const redis::Script& redisScript(Algorithm algorithm) {
  return algorithm == Algorithm::SlidingWindow ? kSlidingWindow : kTokenBucket;
}

std::vector<std::string> redisArgs(Algorithm algorithm, const std::vector<Limit>& limits) {
  std::vector<std::string> args;
  if (algorithm == Algorithm::SlidingWindow) {
    args.push_back(std::to_string(kBuckets));
    for (const auto& l : limits) {
      args.push_back(std::to_string(l.requests));
      args.push_back(std::to_string(l.window_us));
      args.push_back(std::to_string(l.bucketUs()));
    }
  } else {
    for (const auto& l : limits) {
      args.push_back(std::to_string(l.window_us));
      args.push_back(std::to_string(emissionUs(l)));
    }
  }
  return args;
}

bool parseRedisReply(Algorithm algorithm, const std::vector<Limit>& limits,
                     const redis::Reply& reply, Outcome& out, std::size_t& which) {
  using Type = redis::Reply::Type;
  const auto& e = reply.elements;
  if (reply.type != Type::Array || e.size() < 2) return false;
  for (const auto& x : e)
    if (x.type != Type::Integer) return false;
  const std::int64_t refused = e[0].integer;
  const std::int64_t now = e[1].integer;
  if (refused < 0 || refused > static_cast<std::int64_t>(limits.size())) return false;
  std::size_t pos = 2;
  bool first = true;
  for (std::size_t i = 0; i < limits.size(); ++i) {
    const bool allowed = refused == 0 || refused != static_cast<std::int64_t>(i) + 1;
    Outcome o;
    if (algorithm == Algorithm::SlidingWindow) {
      if (pos + 3 > e.size()) return false;
      std::int64_t sum = e[pos].integer;
      std::int64_t newest = e[pos + 1].integer;
      const auto n = static_cast<std::size_t>(e[pos + 2].integer);
      pos += 3;
      if (n > kBuckets + 1 || pos + 2 * n > e.size()) return false;
      std::array<BucketCount, kBuckets + 1> live;
      std::size_t count = 0;
      if (!allowed) {
        for (std::size_t j = 0; j < n; ++j, pos += 2)
          live[count++] = {e[pos].integer, e[pos + 1].integer};
      } else {
        pos += 2 * n;
        if (refused == 0) {  // counted: the request itself is in the current bucket
          ++sum;
          newest = std::max(newest, now / limits[i].bucketUs());
        }
        // The total and the newest bucket are all the figures of an admitting limit need.
        if (sum > 0) live[count++] = {newest, sum};
      }
      o = slidingOutcome(limits[i], now, std::span<BucketCount>(live.data(), count), allowed);
    } else {
      if (pos >= e.size()) return false;
      std::int64_t next = 0;
      o = gcraOutcome(limits[i], e[pos++].integer, now, next);
    }
    if (first || tighter(o, out)) {
      out = o;
      which = i;
      first = false;
    }
  }
  return true;
}

}  // namespace portico::ratelimit
