#pragma once
// ip-restriction: allow and deny lists of CIDR blocks (IPv4 and IPv6). Behind trusted proxies
// the client address is taken from X-Forwarded-For: the rightmost address that is not a
// trusted proxy.
#include <array>
#include <optional>
#include <string_view>

#include "api/filter.h"

namespace portico::filters {

// An address block; IPv4 is held as IPv4-mapped IPv6 (::ffff:a.b.c.d).
struct Cidr {
  std::array<unsigned char, 16> bytes{};
  int prefix = 128;
  bool contains(const std::array<unsigned char, 16>& address) const;
};

std::optional<Cidr> parseCidr(std::string_view text);  // "10.0.0.0/8", "::1", "2001:db8::/32"
std::optional<std::array<unsigned char, 16>> parseAddress(std::string_view text);

api::FilterType ipRestrictionFilterType();

}  // namespace portico::filters
