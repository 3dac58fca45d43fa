#include "ratelimit/redis_scripts.h"

#include <array>
#include <charconv>
#include <span>

namespace portico::ratelimit {
namespace {

// How both scripts end: `out` (refused limit first) as one string of integers.
const std::string kAnswer = R"lua(
out[1] = refused
for i = 1, #out do out[i] = string.format('%.0f', out[i]) end
return table.concat(out, ' ')
)lua";

// KEYS: one hash per limit (field: bucket number, value: count).
// ARGV: buckets per window, then requests, window_us, bucket_us per limit.
// Returns "refused now_us" (refused: the refusing limit, 0 when admitted), then per limit
// "count newest_bucket n" and, for the refusing limit only, n "bucket count" pairs; counts as
// they were before this request. One string of integers: one reply object to parse, and the
// full bucket list only when Retry-After needs it.
constexpr std::string_view kSlidingWindow = R"lua(
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
)lua";

// KEYS: one string per limit (the theoretical arrival time, in microseconds).
// ARGV: window_us, emission_us per limit.
// Returns "refused now_us tat..." (tat per limit, before this request), as one string.
constexpr std::string_view kTokenBucket = R"lua(
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
)lua";

}  // namespace

const redis::Script& redisScript(Algorithm algorithm) {
  // Made on first use (a Redis-backed filter's config load): a script's SHA-1 is OpenSSL's
  // first use in a process, which a config without Redis then never pays for.
  static const redis::Script sliding_window(std::string(kSlidingWindow) + kAnswer);
  static const redis::Script token_bucket(std::string(kTokenBucket) + kAnswer);
  return algorithm == Algorithm::SlidingWindow ? sliding_window : token_bucket;
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
  if (reply.type != redis::Reply::Type::String) return false;
  // Two, three per limit (kMaxLimits), and one bucket list.
  std::array<std::int64_t, 2 + 3 * kMaxLimits + 2 * (kBuckets + 1)> numbers;
  std::size_t parsed = 0;
  const char* p = reply.str.data();
  const char* end = p + reply.str.size();
  while (p < end) {
    if (parsed == numbers.size()) return false;
    auto [next, ec] = std::from_chars(p, end, numbers[parsed]);
    if (ec != std::errc()) return false;
    ++parsed;
    p = next;
    if (p < end && *p++ != ' ') return false;
  }
  const std::span<const std::int64_t> e(numbers.data(), parsed);
  if (e.size() < 2) return false;
  const std::int64_t refused = e[0];
  const std::int64_t now = e[1];
  if (refused < 0 || refused > static_cast<std::int64_t>(limits.size())) return false;
  std::size_t pos = 2;
  bool first = true;
  for (std::size_t i = 0; i < limits.size(); ++i) {
    const bool allowed = refused == 0 || refused != static_cast<std::int64_t>(i) + 1;
    Outcome o;
    if (algorithm == Algorithm::SlidingWindow) {
      if (pos + 3 > e.size()) return false;
      std::int64_t sum = e[pos];
      std::int64_t newest = e[pos + 1];
      const auto n = static_cast<std::size_t>(e[pos + 2]);
      pos += 3;
      if (n > kBuckets + 1 || pos + 2 * n > e.size()) return false;
      std::array<BucketCount, kBuckets + 1> live;
      std::size_t count = 0;
      if (!allowed) {
        for (std::size_t j = 0; j < n; ++j, pos += 2) live[count++] = {e[pos], e[pos + 1]};
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
      o = gcraOutcome(limits[i], e[pos++], now, next);
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
