#include "config/diagnostics.h"

namespace portico::config {

std::string Diagnostic::format() const {
  std::string out = path.empty() ? message : path + ": " + message;
  if (!location.empty()) out += " (" + location + ")";
  return out;
}

void Diagnostics::add(const std::string& path, std::string message, bool at_key) {
  items_.push_back(Diagnostic{path, std::move(message), locate(path, at_key)});
}

std::string Diagnostics::format() const {
  std::string out;
  for (const auto& d : items_) out += d.format() + "\n";
  return out;
}

std::string Diagnostics::locate(std::string path, bool at_key) const {
  if (!locations_ && locator_) {
    locations_ = locator_();
    locator_ = nullptr;
  }
  if (!locations_) return {};
  for (bool key = at_key;; key = false) {
    auto it = locations_->find(key ? path + "#key" : path);
    if (it != locations_->end()) {
      const auto& l = it->second;
      return l.file + ":" + std::to_string(l.line) + ":" + std::to_string(l.column);
    }
    if (path.empty()) return {};
    // Walk up one level: "a.b[2]" -> "a.b" -> "a" -> "".
    auto cut = path.find_last_of(".[");
    path = cut == std::string::npos ? std::string() : path.substr(0, cut);
  }
}

}  // namespace portico::config
