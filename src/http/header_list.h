#pragma once
// An ordered list of header fields. Names keep their original case (relayed byte-faithfully)
// and are compared case-insensitively.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace portico::http {

namespace detail {
// Eight ASCII bytes with 'A'..'Z' lowered; every other byte (also obs-text) unchanged.
inline std::uint64_t lowerAscii8(std::uint64_t x) {
  constexpr std::uint64_t kLow7 = 0x7f7f7f7f7f7f7f7full;
  constexpr std::uint64_t kHigh = 0x8080808080808080ull;
  const std::uint64_t h = x & kLow7;
  const std::uint64_t at_least_a = h + 0x3f3f3f3f3f3f3f3full;  // bit 7 set where h >= 'A'
  const std::uint64_t above_z = h + 0x2525252525252525ull;     // bit 7 set where h > 'Z'
  return x | ((at_least_a & ~above_z & ~x & kHigh) >> 2);
}
inline std::uint64_t load8(const char* p) {
  std::uint64_t x;
  std::memcpy(&x, p, 8);
  return x;
}
inline char lowerAscii(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}
}  // namespace detail

// ASCII case-insensitive equality, eight bytes at a time (header names and tokens are short;
// the literal side of a compare folds at compile time).
inline bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  const std::size_t n = a.size();
  if (n != b.size()) return false;
  if (n < 8) {
    for (std::size_t i = 0; i < n; ++i) {
      if (detail::lowerAscii(a[i]) != detail::lowerAscii(b[i])) return false;
    }
    return true;
  }
  for (std::size_t i = 0;; i += 8) {
    if (i + 8 > n) i = n - 8;  // the last word overlaps the one before
    const std::uint64_t x = detail::load8(a.data() + i);
    const std::uint64_t y = detail::load8(b.data() + i);
    if (x != y && detail::lowerAscii8(x) != detail::lowerAscii8(y)) return false;
    if (i + 8 == n) return true;
  }
}
void toLower(std::string& s);
// A value made by Portico (a template) that may be sent as a field: no CR, LF or NUL.
bool isSafeFieldValue(std::string_view v);

// Header names the proxy itself looks at, classified once when a field is added, so that the
// per-request checks are integer compares instead of case-insensitive string compares.
enum class HeaderId : unsigned char {
  Other,
  Host,
  ContentLength,
  TransferEncoding,
  Connection,
  KeepAlive,
  ProxyConnection,
  TE,
  Upgrade,
  Expect,
  Via,
  XRequestId,
  XForwardedFor,
  XForwardedProto,
  XForwardedHost,
  Cookie,
};

HeaderId classifyHeader(std::string_view name);

// Framing, routing and connection-specific fields have no meaning in a trailer section (RFC
// 9110 §6.5.1) and make an HTTP/2 peer reset the stream (RFC 9113 §8.2.2): a trailer section
// keeps the others only.
inline bool allowedInTrailers(HeaderId id) {
  switch (id) {
    case HeaderId::Host:
    case HeaderId::ContentLength:
    case HeaderId::TransferEncoding:
    case HeaderId::Connection:
    case HeaderId::KeepAlive:
    case HeaderId::ProxyConnection:
    case HeaderId::TE:
    case HeaderId::Upgrade:
    case HeaderId::Expect:
      return false;
    default:
      return true;
  }
}

struct Header {
  std::string name;
  std::string value;
  HeaderId id = HeaderId::Other;
};

// clear() keeps the header objects (and their string capacity) for the next message on the
// connection, so a steady stream of requests parses without allocating.
class HeaderList {
 public:
  using iterator = std::vector<Header>::iterator;
  using const_iterator = std::vector<Header>::const_iterator;

  HeaderList() = default;
  HeaderList(const HeaderList& o) : items_(o.begin(), o.end()), size_(o.size_) {}
  HeaderList& operator=(const HeaderList& o) {
    if (this != &o) {
      items_.assign(o.begin(), o.end());
      size_ = o.size_;
    }
    return *this;
  }
  HeaderList(HeaderList&& o) noexcept : items_(std::move(o.items_)), size_(o.size_) {
    o.items_.clear();
    o.size_ = 0;
  }
  HeaderList& operator=(HeaderList&& o) noexcept {
    if (this != &o) {
      items_ = std::move(o.items_);
      size_ = o.size_;
      o.items_.clear();
      o.size_ = 0;
    }
    return *this;
  }

  void add(std::string_view name, std::string_view value) {
    add(name, value, classifyHeader(name));
  }
  // The same for a name whose class is known (`id`: classifyHeader(name)).
  void add(std::string_view name, std::string_view value, HeaderId id) {
    if (size_ < items_.size()) {
      items_[size_].name.assign(name);
      items_[size_].value.assign(value);
      items_[size_].id = id;
    } else {
      items_.push_back(Header{std::string(name), std::string(value), id});
    }
    ++size_;
  }
  // Adds a field of class `id`, or, when one of that class is already there, appends `value`
  // to that field's value after `separator` (HTTP/2's cookie crumbs, RFC 9113 §8.2.3).
  void addOrJoin(std::string_view name, std::string_view value, HeaderId id,
                 std::string_view separator) {
    for (auto& h : *this) {
      if (h.id == id) {
        h.value.append(separator).append(value);
        return;
      }
    }
    add(name, value, id);
  }
  // Adds a field with its name lower-cased (HTTP/2 field names), of class `id`.
  void addLowerCase(std::string_view name, std::string_view value, HeaderId id) {
    add(name, value, id);
    toLower(items_[size_ - 1].name);
  }
  // Exchanges contents with `o`: each keeps the other's header objects (and their capacity),
  // and the strings stay where they are.
  void swap(HeaderList& o) noexcept {
    items_.swap(o.items_);
    std::swap(size_, o.size_);
  }
  // Becomes a copy of `o`, reusing this list's header objects (no allocation once warm).
  void copyFrom(const HeaderList& o) {
    if (this == &o) return;
    size_ = 0;
    for (const auto& h : o) add(h.name, h.value, h.id);
  }
  // Replaces every field of that name by a single one.
  void set(std::string_view name, std::string_view value);
  // Removes every field of that name; returns how many were removed.
  size_t remove(std::string_view name);
  // The first value of that name, or nullptr.
  const std::string* find(std::string_view name) const;
  const std::string* find(HeaderId id) const {
    for (const auto& h : *this) {
      if (h.id == id) return &h.value;
    }
    return nullptr;
  }
  size_t count(std::string_view name) const;
  size_t count(HeaderId id) const {
    size_t n = 0;
    for (const auto& h : *this) n += h.id == id;
    return n;
  }
  bool has(std::string_view name) const { return find(name) != nullptr; }
  bool has(HeaderId id) const { return find(id) != nullptr; }

  void clear() { size_ = 0; }
  void reserve(size_t n) { items_.reserve(n); }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  iterator begin() { return items_.begin(); }
  iterator end() { return items_.begin() + static_cast<std::ptrdiff_t>(size_); }
  const_iterator begin() const { return items_.begin(); }
  const_iterator end() const { return items_.begin() + static_cast<std::ptrdiff_t>(size_); }
  // Removes matching fields, keeping the order of the others.
  template <class Pred>
  size_t removeIf(Pred pred) {
    size_t kept = 0;
    for (size_t i = 0; i < size_; ++i) {
      if (pred(items_[i])) continue;
      if (kept != i) std::swap(items_[kept], items_[i]);
      ++kept;
    }
    size_t removed = size_ - kept;
    size_ = kept;
    return removed;
  }

 private:
  std::vector<Header> items_;
  size_t size_ = 0;
};

// `s` without leading and trailing spaces and tabs (optional whitespace, RFC 9110).
inline std::string_view trimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls f(token) for each comma-separated token of a header value, trimmed of spaces.
template <class F>
void forEachToken(std::string_view value, F&& f) {
  while (!value.empty()) {
    auto comma = value.find(',');
    const std::string_view token = trimSpaces(value.substr(0, comma));
    if (!token.empty()) f(token);
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
}

// Whether `headers` says its body is JSON: Content-Type application/json or a *+json type.
bool hasJsonContentType(const HeaderList& headers);

}  // namespace portico::http
