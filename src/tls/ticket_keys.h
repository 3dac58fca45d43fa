#pragma once
// Session-ticket keys shared by every TLS listener of the process, rotated on an interval.
// Tickets stay valid for two intervals (the current key and the one before), and across config
// reloads, because the ring outlives the snapshots that use it.
#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>

typedef struct ssl_ctx_st SSL_CTX;

namespace portico::tls {

class TicketKeys {
 public:
  struct Key {
    std::array<unsigned char, 16> name;
    std::array<unsigned char, 32> aes;
    std::array<unsigned char, 32> hmac;
    std::chrono::steady_clock::time_point created;
  };

  explicit TicketKeys(std::chrono::seconds rotation = std::chrono::hours(1));

  // Makes `ctx` issue and accept tickets sealed with these keys.
  void attach(SSL_CTX* ctx);

  // The key to seal a new ticket with (rotating first when it is due).
  Key current();
  // The key a ticket names, if it is still accepted; `is_current` tells whether to renew.
  bool find(const unsigned char* name, Key& out, bool& is_current);
  std::size_t size();

 private:
  void rotateIfDue(std::chrono::steady_clock::time_point now);

  std::chrono::seconds rotation_;
  std::mutex mu_;         // handshakes only, never the request path
  std::deque<Key> keys_;  // newest first
};

}  // namespace portico::tls
