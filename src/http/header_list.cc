#include "http/header_list.h"

namespace portico::http {

bool isSafeFieldValue(std::string_view v) {
  return v.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

bool hasJsonContentType(const HeaderList& headers) {
  const std::string* type = headers.find("content-type");
  if (!type) return false;
  std::string_view t = std::string_view(*type).substr(0, type->find(';'));
  while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
  return equalsIgnoreCase(t, "application/json") ||
         (t.size() > 5 && equalsIgnoreCase(t.substr(t.size() - 5), "+json"));
}

void toLower(std::string& s) {
  char* p = s.data();
  const std::size_t n = s.size();
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const std::uint64_t x = detail::lowerAscii8(detail::load8(p + i));
    std::memcpy(p + i, &x, 8);
  }
  for (; i < n; ++i) p[i] = detail::lowerAscii(p[i]);
}

HeaderId classifyHeader(std::string_view n) {
  switch (n.size()) {
    case 2:
      return equalsIgnoreCase(n, "te") ? HeaderId::TE : HeaderId::Other;
    case 3:
      return equalsIgnoreCase(n, "via") ? HeaderId::Via : HeaderId::Other;
    case 4:
      return equalsIgnoreCase(n, "host") ? HeaderId::Host : HeaderId::Other;
    case 6:
      if (equalsIgnoreCase(n, "expect")) return HeaderId::Expect;
      return equalsIgnoreCase(n, "cookie") ? HeaderId::Cookie : HeaderId::Other;
    case 7:
      return equalsIgnoreCase(n, "upgrade") ? HeaderId::Upgrade : HeaderId::Other;
    case 10:
      if (equalsIgnoreCase(n, "connection")) return HeaderId::Connection;
      return equalsIgnoreCase(n, "keep-alive") ? HeaderId::KeepAlive : HeaderId::Other;
    case 12:
      return equalsIgnoreCase(n, "x-request-id") ? HeaderId::XRequestId : HeaderId::Other;
    case 14:
      return equalsIgnoreCase(n, "content-length") ? HeaderId::ContentLength : HeaderId::Other;
    case 15:
      return equalsIgnoreCase(n, "x-forwarded-for") ? HeaderId::XForwardedFor : HeaderId::Other;
    case 16:
      if (equalsIgnoreCase(n, "proxy-connection")) return HeaderId::ProxyConnection;
      return equalsIgnoreCase(n, "x-forwarded-host") ? HeaderId::XForwardedHost : HeaderId::Other;
    case 17:
      if (equalsIgnoreCase(n, "transfer-encoding")) return HeaderId::TransferEncoding;
      return equalsIgnoreCase(n, "x-forwarded-proto") ? HeaderId::XForwardedProto : HeaderId::Other;
    default:
      return HeaderId::Other;
  }
}

void HeaderList::set(std::string_view name, std::string_view value) {
  remove(name);
  add(name, value);
}

size_t HeaderList::remove(std::string_view name) {
  return removeIf([&](const Header& h) { return equalsIgnoreCase(h.name, name); });
}

const std::string* HeaderList::find(std::string_view name) const {
  if (HeaderId id = classifyHeader(name); id != HeaderId::Other) return find(id);
  for (const auto& h : *this) {
    if (equalsIgnoreCase(h.name, name)) return &h.value;
  }
  return nullptr;
}

size_t HeaderList::count(std::string_view name) const {
  if (HeaderId id = classifyHeader(name); id != HeaderId::Other) return count(id);
  size_t n = 0;
  for (const auto& h : *this) n += equalsIgnoreCase(h.name, name);
  return n;
}

}  // namespace portico::http
