#pragma once
// Where a jwt filter gets its keys: a JWKS URI, or an OpenID Connect discovery document that
// names one. Process-wide per URI (Services::shared), so that reloads keep the fetched keys.
// Fetches run on the HTTP client's thread; the current key set is swapped atomically and read
// without a lock. The last good key set keeps serving while the provider is down.
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/services.h"
#include "auth/jwt.h"

namespace portico::filters {

class KeySource : public std::enable_shared_from_this<KeySource> {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    std::string url;  // the JWKS, or the discovery document when `discovery`
    bool discovery = false;
    std::string ca_file;
    std::chrono::milliseconds timeout{5000};
    Clock::duration refresh_interval = std::chrono::minutes(5);
    Clock::duration min_refetch = std::chrono::seconds(10);  // unknown kid: at most this often
  };

  // Starts the first fetch. Fetch callbacks hold the source weakly: one that no config uses
  // any more may go while a fetch is in flight.
  static std::shared_ptr<KeySource> create(api::Services& services, Options options);
  KeySource(api::Services& services, Options options);  // create() starts it

  std::shared_ptr<const auth::KeySet> keys() const { return keys_.load(); }
  std::string issuer() const;  // from discovery, "" otherwise
  // A string field of the discovery document (token_endpoint...), "" when absent or not yet.
  std::string discovered(const char* field) const;
  const std::string& url() const { return options_.url; }

  // Starts a refresh when the set is stale; never waits.
  void refreshIfStale();
  // Fetches now unless one ran within min_refetch (an unknown kid); `done` runs once the
  // attempt ends (on the HTTP client's thread) or at once when rate-limited.
  void refetch(std::function<void()> done);
  // Waits for the first fetch (the set is empty until then).
  void whenLoaded(std::function<void()> done);

 private:
  void start();  // under mu_
  void finish(std::shared_ptr<const auth::KeySet> set, std::string issuer);
  void fetchJwks(const std::string& url);
  void onDiscovery(const api::HttpResponse& r);

  api::Services& services_;
  Options options_;
  std::atomic<std::shared_ptr<const auth::KeySet>> keys_;
  mutable std::mutex mu_;
  bool in_flight_ = false;
  bool loaded_once_ = false;
  Clock::time_point last_attempt_{};
  Clock::time_point last_success_{};
  nlohmann::json discovery_;  // the last discovery document
  std::vector<std::function<void()>> waiters_;
};

}  // namespace portico::filters
