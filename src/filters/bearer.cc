#include "filters/bearer.h"

#include <chrono>

#include "auth/consumer_directory.h"
#include "config/reader.h"
#include "http/header_list.h"

namespace portico::filters {

std::string_view bearerToken(const http::HeaderList& headers, const std::string& header) {
  const std::string* h = headers.find(header);
  constexpr std::string_view kBearer = "bearer ";
  if (!h || h->size() <= kBearer.size() ||
      !http::equalsIgnoreCase(std::string_view(*h).substr(0, kBearer.size()), kBearer))
    return {};
  std::string_view token = std::string_view(*h).substr(kBearer.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  return token;
}

bool fromClaims(const nlohmann::json& claims, const std::string& consumer_claim,
                const ClaimHeaders& claims_to_headers, const auth::ConsumerDirectory* consumers,
                Verified& v) {
  if (!consumer_claim.empty()) {
    auto it = claims.find(consumer_claim);
    if (it == claims.end() || !it->is_string() || !consumers) return false;
    v.consumer = consumers->byName(it->get<std::string>());
    if (!v.consumer) return false;
  }
  for (const auto& [claim, header] : claims_to_headers) {
    auto it = claims.find(claim);
    if (it == claims.end()) continue;
    std::string value = it->is_string() ? it->get<std::string>() : it->dump();
    // A claim is the token issuer's text, and some are the user's (a name, an email): CR, LF or
    // NUL in one would write a header of the client's choosing upstream. Such a token is refused.
    if (!http::isSafeFieldValue(value)) return false;
    v.headers.emplace_back(header, std::move(value));
  }
  return true;
}

void applyVerified(api::RequestContext& ctx, const Verified& v,
                   const ClaimHeaders& claims_to_headers) {
  auto& headers = ctx.request->headers;
  for (const auto& [claim, header] : claims_to_headers) headers.remove(header);
  for (const auto& [header, value] : v.headers) headers.add(header, value);
  ctx.consumer = v.consumer;
  ctx.authenticated = true;
}

std::int64_t unixNow(const api::RequestContext& ctx) {
  return std::chrono::duration_cast<std::chrono::seconds>(ctx.wall_start.time_since_epoch())
      .count();
}

bool TokenCache::find(const std::string& digest, std::int64_t now, Verified& out) {
  Shard& s = shard(digest);
  std::lock_guard lock(s.mu);
  auto it = s.entries.find(digest);
  if (it == s.entries.end()) return false;
  if (now >= it->second.expires) {
    s.entries.erase(it);
    return false;
  }
  out = it->second;
  return true;
}

void TokenCache::add(const std::string& digest, Verified v) {
  if (per_shard_ <= 1) return;
  Shard& s = shard(digest);
  std::lock_guard lock(s.mu);
  if (s.entries.size() >= per_shard_) s.entries.erase(s.entries.begin());  // bounded
  s.entries[digest] = std::move(v);
}

void readClaimHeaders(const nlohmann::json* j, const std::string& path, config::Diagnostics& diag,
                      ClaimHeaders& out) {
  if (!j) return;
  if (!j->is_object()) {
    diag.add(path, "expected a map of claim: header");
    return;
  }
  for (auto it = j->begin(); it != j->end(); ++it) {
    if (!it->is_string() || it->get<std::string>().empty()) {
      diag.add(config::joinPath(path, it.key()), "expected a header name");
      continue;
    }
    out.emplace_back(it.key(), it->get<std::string>());
  }
}

}  // namespace portico::filters
