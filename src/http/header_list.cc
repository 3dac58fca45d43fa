#include "http/header_list.h"

namespace portico::http {

namespace {
inline char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}
}  // namespace

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

void toLower(std::string& s) {
  for (auto& c : s) c = lower(c);
}

void HeaderList::set(std::string_view name, std::string_view value) {
  remove(name);
  add(name, value);
}

size_t HeaderList::remove(std::string_view name) {
  return removeIf([&](const Header& h) { return equalsIgnoreCase(h.name, name); });
}

const std::string* HeaderList::find(std::string_view name) const {
  for (const auto& h : *this) {
    if (equalsIgnoreCase(h.name, name)) return &h.value;
  }
  return nullptr;
}

size_t HeaderList::count(std::string_view name) const {
  size_t n = 0;
  for (const auto& h : *this) n += equalsIgnoreCase(h.name, name);
  return n;
}

}  // namespace portico::http
