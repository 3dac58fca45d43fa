#pragma once
// The cluster side of rate limits: one Lua script per algorithm, run atomically by Redis on
// Redis's own clock, so that every node counts against the same numbers. The scripts only
// count; the figures for headers are computed here from what they return, with the same
// functions as the local counters.
#include <string>
#include <vector>

#include "ratelimit/counters.h"
#include "redis/client.h"

namespace portico::ratelimit {

const redis::Script& redisScript(Algorithm algorithm);

// ARGV for the script of `algorithm` over `limits`.
std::vector<std::string> redisArgs(Algorithm algorithm, const std::vector<Limit>& limits);

// The script's reply as the outcome of the refusing (or tightest) limit. False when the reply
// is not what the script returns.
bool parseRedisReply(Algorithm algorithm, const std::vector<Limit>& limits,
                     const redis::Reply& reply, Outcome& out, std::size_t& which);

}  // namespace portico::ratelimit
