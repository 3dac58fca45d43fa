#pragma once
// Redis as filters see it: one asynchronous command interface, no Boost.Asio. Each worker owns
// its connection (pipelined, on its own event loop); api::WorkerServices hands it out.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/diagnostics.h"
#include "config/model.h"

namespace portico::redis {

struct Reply {
  enum class Type : std::uint8_t { Nil, Integer, String, Status, Error, Array };
  Type type = Type::Nil;
  std::int64_t integer = 0;
  std::string str;  // String, Status and Error
  std::vector<Reply> elements;

  bool isError() const { return type == Type::Error; }
  static Reply error(std::string message) {
    Reply r;
    r.type = Type::Error;
    r.str = std::move(message);
    return r;
  }
};

// Where Redis is and how to talk to it. Two settings with the same key() share a connection.
struct Settings {
  std::string address;  // host:port of a single node
  // Sentinel: the master's address is asked from these sentinels (host:port), in order.
  std::vector<std::string> sentinels;
  std::string master_name;
  std::string username;  // ACL user (Redis 6+); empty = the default user
  std::string password;
  int database = 0;
  std::optional<config::UpstreamTlsConfig> tls;
  std::chrono::milliseconds timeout{200};          // per command
  std::chrono::milliseconds connect_timeout{500};  // per attempt

  std::string key() const;
};

// Reads a `redis:` block: { address | sentinel: { addresses, master }, username, password,
// database, tls: { ca, server_name, verify, client_cert, client_key }, timeout, connect_timeout }.
std::optional<Settings> parseSettings(const nlohmann::json* node, const std::string& path,
                                      config::Diagnostics& diag);

// A Lua script, identified by its SHA-1 (computed once). Connections load it (SCRIPT LOAD,
// pipelined) the first time they run it, so calls send only the hash.
struct Script {
  explicit Script(std::string source);
  std::string text;
  std::string sha1;  // hex
};

class Client {
 public:
  using Callback = std::function<void(Reply)>;
  virtual ~Client() = default;
  // Sends one command (pipelined behind the others). `done` runs once on the worker thread:
  // with the reply, or with an error reply when Redis is unreachable, too slow or refuses. It
  // may run before command() returns (when the connection is known to be down).
  virtual void command(std::vector<std::string> args, Callback done) = 0;
  // Runs `script` by its SHA-1 (EVALSHA). The connection loads it first when it has not yet
  // (a new connection after a Redis restart loads it again).
  virtual void eval(const Script& script, const std::vector<std::string>& keys,
                    const std::vector<std::string>& args, Callback done) = 0;
  // Whether the connection is up right now.
  virtual bool connected() const = 0;
};

}  // namespace portico::redis
