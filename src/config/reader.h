#pragma once
// Strict, typed reading of one JSON object of the config tree. Every accessor records the key
// as known; finish() reports the keys nobody asked for as errors. Type errors name the path.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/diagnostics.h"
#include "config/units.h"

namespace portico::config {

std::string joinPath(const std::string& parent, std::string_view key);
std::string indexPath(const std::string& parent, size_t index);

// Scalar readers usable on any node; each returns false (and reports) on a type error.
bool readString(const nlohmann::json& j, const std::string& path, Diagnostics& d, std::string& out);
bool readInt(const nlohmann::json& j, const std::string& path, Diagnostics& d, std::int64_t min,
             std::int64_t max, std::int64_t& out);
bool readBool(const nlohmann::json& j, const std::string& path, Diagnostics& d, bool& out);
bool readDuration(const nlohmann::json& j, const std::string& path, Diagnostics& d, Duration& out);
bool readSize(const nlohmann::json& j, const std::string& path, Diagnostics& d, std::uint64_t& out);
bool readStringList(const nlohmann::json& j, const std::string& path, Diagnostics& d,
                    std::vector<std::string>& out);

class ObjectReader {
 public:
  // A null node reads as an empty object (so `server:` with nothing below is fine).
  ObjectReader(const nlohmann::json& node, std::string path, Diagnostics& diag);
  ObjectReader(const ObjectReader&) = delete;
  ObjectReader& operator=(const ObjectReader&) = delete;

  bool valid() const { return valid_; }
  const std::string& path() const { return path_; }
  Diagnostics& diagnostics() { return diag_; }
  std::string childPath(std::string_view key) const { return joinPath(path_, key); }
  bool has(std::string_view key) const;

  // Returns the value and marks the key known; nullptr when absent (or null).
  const nlohmann::json* get(std::string_view key);
  // Like get(), but reports "is required" when absent.
  const nlohmann::json* require(std::string_view key);

  // Typed accessors: leave `out` unchanged when the key is absent. Return false on error.
  bool string(std::string_view key, std::string& out, bool required = false);
  bool optionalString(std::string_view key, std::optional<std::string>& out);
  bool integer(std::string_view key, std::int64_t min, std::int64_t max, std::int64_t& out,
               bool required = false);
  template <class Int>
  bool number(std::string_view key, std::int64_t min, std::int64_t max, Int& out) {
    std::int64_t v = static_cast<std::int64_t>(out);
    bool ok = integer(key, min, max, v);
    if (ok) out = static_cast<Int>(v);
    return ok;
  }
  bool boolean(std::string_view key, bool& out);
  // A number from 0 to 1 (sampling ratios).
  bool ratio(std::string_view key, double& out) { return real(key, 0, 1, out); }
  // A number (integer or not) from `min` to `max`.
  bool real(std::string_view key, double min, double max, double& out);
  bool duration(std::string_view key, Duration& out);
  bool size(std::string_view key, std::uint64_t& out);
  bool stringList(std::string_view key, std::vector<std::string>& out);
  // One of a fixed set of names, each standing for a value: sets `out` to the value of the
  // name given; any other string (the empty one too) is reported as `unknown <what> "x" (a,
  // b, c)`, `what` being the key unless named. Leaves `out` unchanged when the key is absent.
  template <class T, std::size_t N>
  bool choice(std::string_view key, const std::pair<std::string_view, T> (&names)[N], T& out,
              std::string_view what = {}) {
    std::string_view listed[N];
    for (std::size_t i = 0; i < N; ++i) listed[i] = names[i].first;
    std::size_t at = N;
    if (!choiceIndex(key, listed, what, at)) return false;
    if (at < N) out = names[at].second;
    return true;
  }

  // Reports every key that was present but never read.
  void finish();

 private:
  // choice() apart from its values: `at` is the index of the name given, unchanged when absent.
  bool choiceIndex(std::string_view key, std::span<const std::string_view> names,
                   std::string_view what, std::size_t& at);

  const nlohmann::json& node_;
  std::string path_;
  Diagnostics& diag_;
  bool valid_ = true;
  bool finished_ = false;
  // Keys read so far: a handful per object, mostly short enough to live inside the string (no
  // allocation per key: with 10,000 routes a compile read ~100,000 keys).
  std::vector<std::string> seen_;
};

}  // namespace portico::config
