#include "filters/request_validation/fast_schema.h"

#include <cmath>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "filters/json_tape.h"

namespace portico::filters {

namespace dom = simdjson::dom;

// Bits of the JSON types a value may have ("number" also accepts integers).
constexpr unsigned kNull = 1, kBoolean = 2, kObject = 4, kArray = 8, kInteger = 16, kFraction = 32,
                   kNumber = kFraction | kInteger, kString = 64, kAny = 127;

struct FastSchema::Check {
  bool never = false;  // the schema `false`
  unsigned types = kAny;
  std::vector<std::pair<std::string, Check>> properties;
  std::vector<std::string> required;
  // `required` split at compile time: properties[i] required ⇔ bit i (the first 64), and the
  // required names that are not declared properties (looked up field by field).
  std::uint64_t required_mask = 0;
  std::vector<std::string> required_undeclared;
  // No keyword about arrays' items or objects' members: a value is checked without walking into
  // it (most leaves of a schema; they are most of the checks per document).
  bool scalar_only = false;
  bool no_additional = false;
  std::unique_ptr<Check> additional;  // additionalProperties as a schema
  std::unique_ptr<Check> items;
  std::optional<double> minimum, maximum, exclusive_minimum, exclusive_maximum;
  std::optional<std::uint64_t> min_length, max_length, min_items, max_items, min_properties,
      max_properties;
  std::optional<std::vector<nlohmann::json>> one_of_values;  // enum / const: strings, bools, null
};

namespace {

using Check = FastSchema::Check;

const std::set<std::string, std::less<>> kAnnotations = {
    "$schema", "$id", "$comment", "title", "description", "default", "examples"};

bool compileCheck(const nlohmann::json& s, Check& c) {
  if (s.is_boolean()) {
    c.never = !s.get<bool>();
    return true;
  }
  if (!s.is_object()) return false;
  for (auto it = s.begin(); it != s.end(); ++it) {
    const std::string& k = it.key();
    const nlohmann::json& v = *it;
    if (kAnnotations.count(k)) continue;
    if (k == "type") {
      const auto one = [](const nlohmann::json& t) -> unsigned {
        if (!t.is_string()) return 0;
        const auto n = t.get<std::string>();
        return n == "null"      ? kNull
               : n == "boolean" ? kBoolean
               : n == "object"  ? kObject
               : n == "array"   ? kArray
               : n == "integer" ? kInteger
               : n == "number"  ? kNumber
               : n == "string"  ? kString
                                : 0;
      };
      if (v.is_string()) {
        c.types = one(v);
      } else if (v.is_array()) {
        c.types = 0;
        for (const auto& t : v) {
          if (!one(t)) return false;
          c.types |= one(t);
        }
      }
      if (c.types == 0) return false;
    } else if (k == "properties" && v.is_object()) {
      for (auto p = v.begin(); p != v.end(); ++p) {
        Check child;
        if (!compileCheck(*p, child)) return false;
        c.properties.emplace_back(p.key(), std::move(child));
      }
    } else if (k == "required" && v.is_array()) {
      for (const auto& r : v) {
        if (!r.is_string()) return false;
        c.required.push_back(r.get<std::string>());
      }
    } else if (k == "additionalProperties") {
      if (v.is_boolean()) {
        c.no_additional = !v.get<bool>();
      } else {
        c.additional = std::make_unique<Check>();
        if (!compileCheck(v, *c.additional)) return false;
      }
    } else if (k == "items" && v.is_object()) {  // one schema for every item (not tuples)
      c.items = std::make_unique<Check>();
      if (!compileCheck(v, *c.items)) return false;
    } else if ((k == "minimum" || k == "maximum" || k == "exclusiveMinimum" ||
                k == "exclusiveMaximum") &&
               v.is_number()) {
      const double d = v.get<double>();
      (k == "minimum"            ? c.minimum
       : k == "maximum"          ? c.maximum
       : k == "exclusiveMinimum" ? c.exclusive_minimum
                                 : c.exclusive_maximum) = d;
    } else if ((k == "minLength" || k == "maxLength" || k == "minItems" || k == "maxItems" ||
                k == "minProperties" || k == "maxProperties") &&
               v.is_number_integer() && v.get<std::int64_t>() >= 0) {
      // (a config read from YAML holds signed integers, JSON text unsigned ones)
      const auto n = static_cast<std::uint64_t>(v.get<std::int64_t>());
      (k == "minLength"       ? c.min_length
       : k == "maxLength"     ? c.max_length
       : k == "minItems"      ? c.min_items
       : k == "maxItems"      ? c.max_items
       : k == "minProperties" ? c.min_properties
                              : c.max_properties) = n;
    } else if (k == "enum" || k == "const") {
      std::vector<nlohmann::json> values;
      if (k == "enum" && !v.is_array()) return false;
      for (const auto& e : k == "enum" ? v : nlohmann::json::array({v})) {
        if (!e.is_string() && !e.is_boolean() && !e.is_null()) return false;  // numbers, objects
        values.push_back(e);
      }
      if (c.one_of_values) return false;  // both enum and const: leave it to valijson
      c.one_of_values = std::move(values);
    } else {
      return false;  // a keyword (or a form of one) this fast path does not check
    }
  }
  c.scalar_only = c.properties.empty() && c.required.empty() && !c.no_additional && !c.additional &&
                  !c.items && !c.min_items && !c.max_items && !c.min_properties &&
                  !c.max_properties;
  for (const auto& r : c.required) {
    std::size_t i = 0;
    while (i < c.properties.size() && c.properties[i].first != r) ++i;
    if (i < c.properties.size() && i < 64)
      c.required_mask |= std::uint64_t{1} << i;
    else
      c.required_undeclared.push_back(r);
  }
  return true;
}

// UTF-8 code points, as JSON Schema counts string length.
std::uint64_t codePoints(std::string_view s) {
  std::uint64_t n = 0;
  for (const char ch : s) n += (static_cast<unsigned char>(ch) & 0xC0) != 0x80;
  return n;
}

// A property name against an object's key: schema names are short, and a call to memcmp per
// comparison showed in profiles.
bool sameName(const std::string& name, std::string_view key) {
  if (name.size() != key.size()) return false;
  for (std::size_t i = 0; i < key.size(); ++i)
    if (name[i] != key[i]) return false;
  return true;
}

unsigned typeOf(const dom::element& e) {
  switch (e.type()) {
    case dom::element_type::NULL_VALUE:
      return kNull;
    case dom::element_type::BOOL:
      return kBoolean;
    case dom::element_type::OBJECT:
      return kObject;
    case dom::element_type::ARRAY:
      return kArray;
    case dom::element_type::INT64:
    case dom::element_type::UINT64:
      return kInteger;
    case dom::element_type::DOUBLE:
      return kFraction;
    case dom::element_type::STRING:
      return kString;
  }
  return 0;
}

// What a value is checked for besides its items and members: its type, enum/const, number
// bounds, string length.
bool checkValue(const Check& c, const dom::element& e, unsigned type) {
  if (c.never || !(c.types & type)) return false;
  if (c.one_of_values) {
    bool found = false;
    for (const auto& v : *c.one_of_values) {
      if (v.is_null())
        found |= type == kNull;
      else if (v.is_boolean())
        found |= type == kBoolean && e.get_bool().value_unsafe() == v.get<bool>();
      else
        found |=
            type == kString && e.get_string().value_unsafe() == v.get_ref<const std::string&>();
    }
    if (!found) return false;
  }
  if (type & kNumber) {
    const double d = type == kInteger && e.type() == dom::element_type::UINT64
                         ? static_cast<double>(e.get_uint64().value_unsafe())
                     : type == kInteger ? static_cast<double>(e.get_int64().value_unsafe())
                                        : e.get_double().value_unsafe();
    if ((c.minimum && d < *c.minimum) || (c.maximum && d > *c.maximum) ||
        (c.exclusive_minimum && d <= *c.exclusive_minimum) ||
        (c.exclusive_maximum && d >= *c.exclusive_maximum))
      return false;
  } else if (type == kString) {
    const auto n = codePoints(e.get_string().value_unsafe());
    if ((c.min_length && n < *c.min_length) || (c.max_length && n > *c.max_length)) return false;
  }
  return true;
}

bool check(const Check& c, const dom::element& e);

// A member or an item: a scalar-only schema without the walk's call.
inline bool checkChild(const Check& c, const dom::element& e) {
  return c.scalar_only ? checkValue(c, e, typeOf(e)) : check(c, e);
}

bool check(const Check& c, const dom::element& e) {
  const unsigned type = typeOf(e);
  if (!checkValue(c, e, type)) return false;
  if (type == kArray) {
    const dom::array arr(e);
    std::uint64_t n = 0;
    for (const dom::element item : arr) {
      ++n;
      if (c.items && !checkChild(*c.items, item)) return false;
    }
    if ((c.min_items && n < *c.min_items) || (c.max_items && n > *c.max_items)) return false;
  } else if (type == kObject) {
    const dom::object obj(e);
    std::uint64_t n = 0;
    std::uint64_t seen = 0;  // declared properties present, by index (the first 64)
    for (const dom::key_value_pair field : obj) {
      ++n;
      bool declared = false;
      for (std::size_t i = 0; i < c.properties.size(); ++i) {
        if (!sameName(c.properties[i].first, field.key)) continue;
        declared = true;
        if (i < 64) seen |= std::uint64_t{1} << i;
        if (!checkChild(c.properties[i].second, field.value)) return false;
        break;  // property names are unique
      }
      if (!declared &&
          (c.no_additional || (c.additional && !checkChild(*c.additional, field.value))))
        return false;
    }
    if ((c.min_properties && n < *c.min_properties) || (c.max_properties && n > *c.max_properties))
      return false;
    if ((seen & c.required_mask) != c.required_mask) return false;
    for (const auto& r : c.required_undeclared) {
      bool present = false;
      for (const dom::key_value_pair field : obj) present |= field.key == r;
      if (!present) return false;
    }
  }
  return true;
}

}  // namespace

std::optional<FastSchema> FastSchema::compile(const nlohmann::json& schema) {
  auto root = std::make_shared<Check>();
  if (!compileCheck(schema, *root)) return std::nullopt;
  FastSchema f;
  f.root_ = std::move(root);
  return f;
}

bool FastSchema::valid(std::string_view document, std::size_t capacity) const {
  // A gathered body has read-ahead room (BufferedBodyTransform::kReadAhead): parsed where it
  // lies. Otherwise simdjson copies it into a padded buffer of its own.
  const bool copy = capacity < document.size() + simdjson::SIMDJSON_PADDING;
  std::optional<dom::parser> own;
  dom::element root;
  if (bodyParser(document.size(), own).parse(document.data(), document.size(), copy).get(root))
    return false;
  return check(*root_, root);
}

}  // namespace portico::filters
