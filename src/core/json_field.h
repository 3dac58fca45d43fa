#pragma once
// Reading a field of a JSON document someone else wrote (a client's body, a provider's answer)
// without exceptions: nlohmann's value(key, "") throws when the value is not a string, and
// inside a handler or a callback that costs an answer (or a request left waiting).
#include <string>

#include <nlohmann/json.hpp>

namespace portico {

// `key` of `object` as a string; "" when `object` is no map, or the value is absent or no string.
inline std::string stringField(const nlohmann::json& object, const char* key) {
  if (!object.is_object()) return "";
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

// `key` of `object` is the JSON literal true (absent, another type or not a map: false).
inline bool isTrue(const nlohmann::json& object, const char* key) {
  if (!object.is_object()) return false;
  const auto it = object.find(key);
  return it != object.end() && it->is_boolean() && it->get<bool>();
}

// `key` of `object` when it is a map, else an empty map (absent, another type, or `object` no
// map): what a walk over a document's nested maps reads without checking each level.
inline const nlohmann::json& objectField(const nlohmann::json& object, const char* key) {
  static const nlohmann::json empty = nlohmann::json::object();
  if (!object.is_object()) return empty;
  const auto it = object.find(key);
  return it != object.end() && it->is_object() ? *it : empty;
}

// `key` of `object` when it is a list, else an empty list.
inline const nlohmann::json& arrayField(const nlohmann::json& object, const char* key) {
  static const nlohmann::json empty = nlohmann::json::array();
  if (!object.is_object()) return empty;
  const auto it = object.find(key);
  return it != object.end() && it->is_array() ? *it : empty;
}

}  // namespace portico
