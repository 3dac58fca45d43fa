#pragma once
// A worker's connection to Redis: one TCP (or TLS) connection per worker and Redis setting,
// commands pipelined on it in order, written once per event-loop turn. Reconnects by itself
// with a growing back-off; while Redis is down, commands fail at once.
#include <memory>

#include "core/time_source.h"
#include "proxy/io_types.h"
#include "redis/client.h"

namespace portico::proxy {

class RedisClient : public redis::Client {
 public:
  // Stops the connection loop and fails what is pending (the worker is exiting).
  virtual void stop() = 0;
};

std::shared_ptr<RedisClient> makeRedisClient(asio::io_context& io, redis::Settings settings,
                                             const TimeSource& time);

}  // namespace portico::proxy
