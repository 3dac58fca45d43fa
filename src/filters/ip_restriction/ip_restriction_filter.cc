#include "filters/ip_restriction/ip_restriction_filter.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

#include "config/reader.h"
#include "filters/auth_reply.h"
#include "filters/config_factory.h"

namespace portico::filters {

std::optional<std::array<unsigned char, 16>> parseAddress(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']')
    text = text.substr(1, text.size() - 2);
  if (text.empty() || text.size() > 45) return std::nullopt;
  const std::string s(text);
  std::array<unsigned char, 16> out{};
  if (s.find(':') == std::string::npos) {
    in_addr v4;
    if (inet_pton(AF_INET, s.c_str(), &v4) != 1) return std::nullopt;
    out[10] = out[11] = 0xff;
    std::memcpy(out.data() + 12, &v4, 4);
    return out;
  }
  if (inet_pton(AF_INET6, s.c_str(), out.data()) != 1) return std::nullopt;
  return out;
}

std::optional<Cidr> parseCidr(std::string_view text) {
  const auto slash = text.find('/');
  auto address = parseAddress(text.substr(0, slash));
  if (!address) return std::nullopt;
  const bool v4 = text.substr(0, slash).find(':') == std::string_view::npos;
  Cidr c;
  c.bytes = *address;
  c.prefix = 128;
  if (slash != std::string_view::npos) {
    int bits = -1;
    std::string_view b = text.substr(slash + 1);
    auto [p, ec] = std::from_chars(b.data(), b.data() + b.size(), bits);
    if (ec != std::errc() || p != b.data() + b.size() || bits < 0 || bits > (v4 ? 32 : 128))
      return std::nullopt;
    c.prefix = v4 ? 96 + bits : bits;
  }
  return c;
}

bool Cidr::contains(const std::array<unsigned char, 16>& address) const {
  int bits = prefix;
  for (std::size_t i = 0; i < 16 && bits > 0; ++i, bits -= 8) {
    const unsigned char mask = bits >= 8 ? 0xff : static_cast<unsigned char>(0xff << (8 - bits));
    if ((address[i] & mask) != (bytes[i] & mask)) return false;
  }
  return true;
}

namespace {

struct IpRestrictionConfig {
  std::vector<Cidr> allow;
  std::vector<Cidr> deny;
  std::vector<Cidr> trusted_proxies;
};

bool inAny(const std::vector<Cidr>& list, const std::array<unsigned char, 16>& a) {
  for (const auto& c : list)
    if (c.contains(a)) return true;
  return false;
}

class IpRestrictionFilter final : public api::Filter {
 public:
  explicit IpRestrictionFilter(const IpRestrictionConfig& c) : c_(c) {}

  api::FilterStatus onRequestHeaders(api::RequestContext& ctx) override {
    auto address = parseAddress(ctx.client_ip);
    if (!address) return refuse(ctx, api::AuthFailure::AddressDenied);
    if (inAny(c_.trusted_proxies, *address)) {
      auto forwarded = fromForwardedFor(ctx, *address);
      if (!forwarded) return refuse(ctx, api::AuthFailure::AddressDenied);
      address = forwarded;
    }
    if (inAny(c_.deny, *address)) return refuse(ctx, api::AuthFailure::AddressDenied);
    if (!c_.allow.empty() && !inAny(c_.allow, *address))
      return refuse(ctx, api::AuthFailure::AddressDenied);
    return api::FilterStatus::Continue;
  }

 private:
  // Walks X-Forwarded-For from the right past trusted proxies. A malformed hop gives no
  // address (refused): garbage must not pass for an allowed client.
  std::optional<std::array<unsigned char, 16>> fromForwardedFor(
      const api::RequestContext& ctx, std::array<unsigned char, 16> peer) const {
    std::optional<std::array<unsigned char, 16>> current = peer;
    for (const auto& h : ctx.request->headers) {
      if (h.id != http::HeaderId::XForwardedFor) continue;
      std::string_view list = h.value;
      // Hops are appended: the rightmost entries are the closest ones.
      std::vector<std::string_view> hops;
      for (std::size_t pos = 0; pos <= list.size();) {
        auto comma = list.find(',', pos);
        if (comma == std::string_view::npos) comma = list.size();
        hops.push_back(list.substr(pos, comma - pos));
        pos = comma + 1;
      }
      walk_.insert(walk_.end(), hops.begin(), hops.end());
    }
    for (auto it = walk_.rbegin(); it != walk_.rend(); ++it) {
      current = parseAddress(*it);
      if (!current || !inAny(c_.trusted_proxies, *current)) break;
    }
    walk_.clear();
    return current;
  }

  const IpRestrictionConfig& c_;
  mutable std::vector<std::string_view> walk_;
};

void readCidrs(config::ObjectReader& r, const char* key, std::vector<Cidr>& out) {
  std::vector<std::string> texts;
  r.stringList(key, texts);
  for (std::size_t i = 0; i < texts.size(); ++i) {
    if (auto c = parseCidr(texts[i])) {
      out.push_back(*c);
    } else {
      r.diagnostics().add(config::indexPath(r.childPath(key), i),
                          "not an IPv4/IPv6 address or CIDR block: \"" + texts[i] + "\"");
    }
  }
}

}  // namespace

api::FilterType ipRestrictionFilterType() {
  return {"ip-restriction",
          [](api::FilterBuildContext& b) -> std::shared_ptr<const api::FilterFactory> {
            IpRestrictionConfig c;
            config::ObjectReader r(b.config, b.path, b.diag);
            readCidrs(r, "allow", c.allow);
            readCidrs(r, "deny", c.deny);
            readCidrs(r, "trusted_proxies", c.trusted_proxies);
            r.finish();
            if (c.allow.empty() && c.deny.empty() && r.valid())
              b.diag.add(b.path, "give allow or deny (lists of CIDR blocks)");
            return std::make_shared<ConfigFactory<IpRestrictionFilter, IpRestrictionConfig>>(
                std::move(c));
          }};
}

}  // namespace portico::filters
