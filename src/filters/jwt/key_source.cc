#include "filters/jwt/key_source.h"

#include <spdlog/spdlog.h>

#include "core/json_field.h"

namespace portico::filters {

KeySource::KeySource(api::Services& services, Options options)
    : services_(services), options_(std::move(options)) {}

std::shared_ptr<KeySource> KeySource::create(api::Services& services, Options options) {
  auto source = std::make_shared<KeySource>(services, std::move(options));
  std::lock_guard lock(source->mu_);
  source->start();
  return source;
}

std::string KeySource::issuer() const {
  return discovered("issuer");
}

std::string KeySource::discovered(const char* field) const {
  std::lock_guard lock(mu_);
  return stringField(discovery_, field);
}

void KeySource::refreshIfStale() {
  std::lock_guard lock(mu_);
  const auto now = services_.time().steady();
  if (in_flight_ || now - last_attempt_ < options_.min_refetch) return;
  if (loaded_once_ && now - last_success_ < options_.refresh_interval) return;
  start();
}

void KeySource::refetch(std::function<void()> done) {
  {
    std::lock_guard lock(mu_);
    if (in_flight_ || services_.time().steady() - last_attempt_ >= options_.min_refetch) {
      waiters_.push_back(std::move(done));
      if (!in_flight_) start();
      return;
    }
  }
  done();  // rate-limited: answer with the keys we have
}

void KeySource::whenLoaded(std::function<void()> done) {
  {
    std::lock_guard lock(mu_);
    if (!loaded_once_ && in_flight_) {
      waiters_.push_back(std::move(done));
      return;
    }
  }
  done();
}

void KeySource::start() {
  in_flight_ = true;
  last_attempt_ = services_.time().steady();
  if (!options_.discovery) {
    fetchJwks(options_.url);
    return;
  }
  api::HttpRequest req;
  req.url = options_.url;
  req.timeout = options_.timeout;
  req.ca_file = options_.ca_file;
  services_.fetch(std::move(req), [weak = weak_from_this()](api::HttpResponse r) {
    if (auto self = weak.lock()) self->onDiscovery(r);
  });
}

void KeySource::onDiscovery(const api::HttpResponse& r) {
  auto doc = r.status == 200 ? nlohmann::json::parse(r.body, nullptr, false) : nlohmann::json();
  if (!doc.is_object() || !doc.contains("jwks_uri") || !doc["jwks_uri"].is_string()) {
    spdlog::warn(
        "jwt: discovery {} failed: {}", options_.url,
        r.error.empty() ? "no jwks_uri (status " + std::to_string(r.status) + ")" : r.error);
    finish(nullptr, {});
    return;
  }
  {
    std::lock_guard lock(mu_);
    discovery_ = doc;
  }
  fetchJwks(doc["jwks_uri"].get<std::string>());
}

void KeySource::fetchJwks(const std::string& url) {
  api::HttpRequest req;
  req.url = url;
  req.timeout = options_.timeout;
  req.ca_file = options_.ca_file;
  services_.fetch(std::move(req), [weak = weak_from_this(), url](api::HttpResponse r) {
    auto self = weak.lock();
    if (!self) return;  // no config uses this key set any more
    std::string errors;
    std::shared_ptr<const auth::KeySet> set;
    if (r.status == 200) {
      set = auth::KeySet::fromJwks(nlohmann::json::parse(r.body, nullptr, false), errors);
    } else {
      errors = r.error.empty() ? "status " + std::to_string(r.status) : r.error;
    }
    if (!set) spdlog::warn("jwt: JWKS {} failed: {}; keeping the last key set", url, errors);
    self->finish(set, {});
  });
}

void KeySource::finish(std::shared_ptr<const auth::KeySet> set, std::string) {
  std::vector<std::function<void()>> waiters;
  {
    std::lock_guard lock(mu_);
    in_flight_ = false;
    if (set) {
      keys_.store(std::move(set));
      last_success_ = services_.time().steady();
      loaded_once_ = true;
    }
    waiters.swap(waiters_);
  }
  for (auto& w : waiters) w();
}

}  // namespace portico::filters
