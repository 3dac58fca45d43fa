#include "config/reader.h"

#include <cstdio>

#include <algorithm>

namespace portico::config {

using nlohmann::json;

std::string joinPath(const std::string& parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  std::string out;
  out.reserve(parent.size() + key.size() + 1);
  out += parent;
  out += '.';
  out += key;
  return out;
}

std::string indexPath(const std::string& parent, size_t index) {
  return parent + "[" + std::to_string(index) + "]";
}

namespace {
const char* typeName(const json& j) {
  switch (j.type()) {
    case json::value_t::object:
      return "a map";
    case json::value_t::array:
      return "a list";
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::null:
      return "null";
    default:
      return "a number";
  }
}
}  // namespace

bool readString(const json& j, const std::string& path, Diagnostics& d, std::string& out) {
  if (j.is_string()) {
    out = j.get<std::string>();
    return true;
  }
  if (j.is_number_integer()) {
    out = std::to_string(j.get<std::int64_t>());
    return true;
  }
  d.add(path, std::string("expected a string, got ") + typeName(j));
  return false;
}

bool readInt(const json& j, const std::string& path, Diagnostics& d, std::int64_t min,
             std::int64_t max, std::int64_t& out) {
  std::int64_t v = 0;
  if (j.is_number_integer()) {
    v = j.get<std::int64_t>();
  } else if (j.is_string()) {
    const auto& s = j.get_ref<const std::string&>();
    char* end = nullptr;
    v = std::strtoll(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0') {
      d.add(path, "expected an integer, got \"" + s + "\"");
      return false;
    }
  } else {
    d.add(path, std::string("expected an integer, got ") + typeName(j));
    return false;
  }
  if (v < min || v > max) {
    d.add(path, "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                    ", got " + std::to_string(v));
    return false;
  }
  out = v;
  return true;
}

bool ObjectReader::real(std::string_view key, double min, double max, double& out) {
  const json* j = get(key);
  if (!j) return true;
  if (!j->is_number() || j->get<double>() < min || j->get<double>() > max) {
    char range[64];
    std::snprintf(range, sizeof range, "must be a number from %g to %g", min, max);
    diag_.add(childPath(key), range);
    return false;
  }
  out = j->get<double>();
  return true;
}

bool readBool(const json& j, const std::string& path, Diagnostics& d, bool& out) {
  if (!j.is_boolean()) {
    d.add(path, std::string("expected true or false, got ") + typeName(j));
    return false;
  }
  out = j.get<bool>();
  return true;
}

bool readDuration(const json& j, const std::string& path, Diagnostics& d, Duration& out) {
  if (j.is_number_integer() && j.get<std::int64_t>() == 0) {
    out = Duration(0);
    return true;
  }
  if (!j.is_string()) {
    d.add(path, std::string("expected a duration such as 250ms or 10s, got ") + typeName(j));
    return false;
  }
  auto r = parseDuration(j.get_ref<const std::string&>());
  if (!r) {
    d.add(path, r.error().message);
    return false;
  }
  out = *r;
  return true;
}

bool readSize(const json& j, const std::string& path, Diagnostics& d, std::uint64_t& out) {
  if (j.is_number_integer() && j.get<std::int64_t>() >= 0) {
    out = j.get<std::uint64_t>();
    return true;
  }
  if (!j.is_string()) {
    d.add(path, std::string("expected a size such as 512 or 64KiB, got ") + typeName(j));
    return false;
  }
  auto r = parseSize(j.get_ref<const std::string&>());
  if (!r) {
    d.add(path, r.error().message);
    return false;
  }
  out = *r;
  return true;
}

bool readStringList(const json& j, const std::string& path, Diagnostics& d,
                    std::vector<std::string>& out) {
  if (j.is_string()) {  // a single value is accepted as a list of one
    out = {j.get<std::string>()};
    return true;
  }
  if (!j.is_array()) {
    d.add(path, std::string("expected a list of strings, got ") + typeName(j));
    return false;
  }
  out.clear();
  bool ok = true;
  for (size_t i = 0; i < j.size(); ++i) {
    std::string s;
    if (readString(j[i], indexPath(path, i), d, s)) {
      out.push_back(std::move(s));
    } else {
      ok = false;
    }
  }
  return ok;
}

ObjectReader::ObjectReader(const json& node, std::string path, Diagnostics& diag)
    : node_(node), path_(std::move(path)), diag_(diag) {
  if (!node_.is_object() && !node_.is_null()) {
    diag_.add(path_, std::string("expected a map, got ") + typeName(node_));
    valid_ = false;
  }
}

bool ObjectReader::has(std::string_view key) const {
  return node_.is_object() && node_.contains(key) && !node_.at(std::string(key)).is_null();
}

const json* ObjectReader::get(std::string_view key) {
  if (!node_.is_object()) return nullptr;
  if (std::find(seen_.begin(), seen_.end(), key) == seen_.end()) seen_.emplace_back(key);
  auto it = node_.find(key);
  if (it == node_.end() || it->is_null()) return nullptr;
  return &*it;
}

const json* ObjectReader::require(std::string_view key) {
  const json* j = get(key);
  if (!j && valid_) diag_.add(childPath(key), "is required");
  return j;
}

bool ObjectReader::string(std::string_view key, std::string& out, bool required) {
  const json* j = required ? require(key) : get(key);
  if (!j) return !required;
  return readString(*j, childPath(key), diag_, out);
}

bool ObjectReader::choiceIndex(std::string_view key, std::span<const std::string_view> names,
                               std::string_view what, std::size_t& at) {
  std::string given;
  const json* j = get(key);
  if (!j) return true;
  if (!readString(*j, childPath(key), diag_, given)) return false;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i] == given) {
      at = i;
      return true;
    }
  }
  std::string message = "unknown ";
  message.append(what.empty() ? key : what).append(" \"").append(given).append("\" (");
  for (std::size_t i = 0; i < names.size(); ++i) message.append(i ? ", " : "").append(names[i]);
  diag_.add(childPath(key), message + ")");
  return false;
}

bool ObjectReader::optionalString(std::string_view key, std::optional<std::string>& out) {
  const json* j = get(key);
  if (!j) return true;
  std::string s;
  if (!readString(*j, childPath(key), diag_, s)) return false;
  out = std::move(s);
  return true;
}

bool ObjectReader::integer(std::string_view key, std::int64_t min, std::int64_t max,
                           std::int64_t& out, bool required) {
  const json* j = required ? require(key) : get(key);
  if (!j) return !required;
  return readInt(*j, childPath(key), diag_, min, max, out);
}

bool ObjectReader::boolean(std::string_view key, bool& out) {
  const json* j = get(key);
  return !j || readBool(*j, childPath(key), diag_, out);
}

bool ObjectReader::duration(std::string_view key, Duration& out) {
  const json* j = get(key);
  return !j || readDuration(*j, childPath(key), diag_, out);
}

bool ObjectReader::size(std::string_view key, std::uint64_t& out) {
  const json* j = get(key);
  return !j || readSize(*j, childPath(key), diag_, out);
}

bool ObjectReader::stringList(std::string_view key, std::vector<std::string>& out) {
  const json* j = get(key);
  return !j || readStringList(*j, childPath(key), diag_, out);
}

void ObjectReader::finish() {
  if (finished_ || !node_.is_object()) return;
  finished_ = true;
  std::vector<std::string> unknown;
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    if (std::find(seen_.begin(), seen_.end(), it.key()) == seen_.end()) unknown.push_back(it.key());
  }
  std::sort(unknown.begin(), unknown.end());
  for (const auto& key : unknown) {
    diag_.add(childPath(key), "unknown key \"" + key + "\"", true);
  }
}

}  // namespace portico::config
