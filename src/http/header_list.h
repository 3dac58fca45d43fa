#pragma once
// An ordered list of header fields. Names keep their original case (relayed byte-faithfully)
// and are compared case-insensitively.
#include <string>
#include <string_view>
#include <vector>

namespace portico::http {

bool equalsIgnoreCase(std::string_view a, std::string_view b);
void toLower(std::string& s);

struct Header {
  std::string name;
  std::string value;
};

class HeaderList {
 public:
  using iterator = std::vector<Header>::iterator;
  using const_iterator = std::vector<Header>::const_iterator;

  void add(std::string_view name, std::string_view value) {
    items_.push_back(Header{std::string(name), std::string(value)});
  }
  // Replaces every field of that name by a single one.
  void set(std::string_view name, std::string_view value);
  // Removes every field of that name; returns how many were removed.
  size_t remove(std::string_view name);
  // The first value of that name, or nullptr.
  const std::string* find(std::string_view name) const;
  size_t count(std::string_view name) const;
  bool has(std::string_view name) const { return find(name) != nullptr; }

  void clear() { items_.clear(); }
  void reserve(size_t n) { items_.reserve(n); }
  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  iterator begin() { return items_.begin(); }
  iterator end() { return items_.end(); }
  const_iterator begin() const { return items_.begin(); }
  const_iterator end() const { return items_.end(); }
  template <class Pred>
  size_t removeIf(Pred pred) {
    size_t before = items_.size();
    std::erase_if(items_, pred);
    return before - items_.size();
  }

 private:
  std::vector<Header> items_;
};

// Calls f(token) for each comma-separated token of a header value, trimmed of spaces.
template <class F>
void forEachToken(std::string_view value, F&& f) {
  while (!value.empty()) {
    auto comma = value.find(',');
    std::string_view token = value.substr(0, comma);
    while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) token.remove_prefix(1);
    while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
    if (!token.empty()) f(token);
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
}

}  // namespace portico::http
