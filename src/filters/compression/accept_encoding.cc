#include "filters/compression/accept_encoding.h"

#include <charconv>

#include "http/header_list.h"

namespace portico::filters::compression {
namespace {

using http::trimSpaces;

// The q of one element's parameters ("q=0.5"), in thousandths; 1000 when absent, 0 when bad.
int qValue(std::string_view params) {
  while (!params.empty()) {
    const auto semi = params.find(';');
    const std::string_view p = trimSpaces(params.substr(0, semi));
    if (p.size() >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
      const std::string_view v = p.substr(2);
      double q = 0;
      const auto r = std::from_chars(v.data(), v.data() + v.size(), q);
      if (r.ec != std::errc() || r.ptr != v.data() + v.size() || q < 0 || q > 1) return 0;
      return static_cast<int>(q * 1000 + 0.5);
    }
    if (semi == std::string_view::npos) break;
    params.remove_prefix(semi + 1);
  }
  return 1000;
}

}  // namespace

std::optional<Coding> chooseCoding(std::string_view accept_encoding,
                                   std::span<const Coding> offered) {
  constexpr int kUnset = -1;
  int q[3] = {kUnset, kUnset, kUnset};  // per Coding
  int star = kUnset;
  http::forEachToken(accept_encoding, [&](std::string_view element) {
    const auto semi = element.find(';');
    const std::string_view name = trimSpaces(element.substr(0, semi));
    const int value = semi == std::string_view::npos ? 1000 : qValue(element.substr(semi + 1));
    if (name == "*") {
      star = value;
    } else if (const auto c = parseCoding(name)) {
      q[static_cast<int>(*c)] = value;
    }
  });
  std::optional<Coding> best;
  int best_q = 0;
  for (const Coding c : offered) {
    const int v = q[static_cast<int>(c)] != kUnset ? q[static_cast<int>(c)] : star;
    if (v > best_q) {
      best = c;
      best_q = v;
    }
  }
  return best;
}

}  // namespace portico::filters::compression
