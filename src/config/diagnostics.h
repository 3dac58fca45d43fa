#pragma once
// Collects every configuration error with its key path and source position, so that all
// problems are reported at once: `routes[3].upstream: unknown upstream "api" (portico.yaml:41:15)`.
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

namespace portico::config {

struct SourceLocation {
  std::string file;
  int line = 0;    // 1-based
  int column = 0;  // 1-based
};

struct Diagnostic {
  std::string path;
  std::string message;
  std::string location;  // "file:line:col" or empty
  std::string format() const;
};

class Diagnostics {
 public:
  using LocationMap = std::unordered_map<std::string, SourceLocation>;

  Diagnostics() = default;
  explicit Diagnostics(const LocationMap* locations) : locations_(locations) {}
  void setLocations(const LocationMap* locations) { locations_ = locations; }
  // Locations computed only when the first error needs one (they are costly for big files).
  void setLocator(std::function<const LocationMap*()> locator) { locator_ = std::move(locator); }

  // Records an error at `path`; the location is that of the value at `path` (or of the nearest
  // ancestor the source knows). `at_key`: point at the key itself (unknown or duplicate keys).
  void add(const std::string& path, std::string message, bool at_key = false);
  bool empty() const { return items_.empty(); }
  const std::vector<Diagnostic>& items() const { return items_; }
  std::string format() const;  // one error per line

 private:
  std::string locate(std::string path, bool at_key) const;

  mutable const LocationMap* locations_ = nullptr;
  mutable std::function<const LocationMap*()> locator_;
  std::vector<Diagnostic> items_;
};

}  // namespace portico::config
