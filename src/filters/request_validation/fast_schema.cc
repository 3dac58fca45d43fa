#include "filters/request_validation/fast_schema.h"

#include <cmath>
#include <cstring>
#include <limits>
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

constexpr double kInfinity = std::numeric_limits<double>::infinity();
constexpr std::uint64_t kUnbounded = std::numeric_limits<std::uint64_t>::max();

// Laid out for the walk: what every value is checked for first (one cache line), what objects
// and arrays need next, what the compiler and rare keywords need last.
struct FastSchema::Check {
  bool never = false;  // the schema `false`
  // No keyword about arrays' items or objects' members: a value is checked without walking into
  // it (most leaves of a schema; they are most of the checks per document).
  bool scalar_only = false;
  // Any keyword about a value itself besides `type` (enum/const, number bounds, string length).
  bool leaf_keywords = false;
  bool no_additional = false;
  unsigned types = kAny;
  // Absent bounds are the widest ones, so a check compares without asking whether a bound is set.
  double minimum = -kInfinity, maximum = kInfinity, exclusive_minimum = -kInfinity,
         exclusive_maximum = kInfinity;
  std::uint64_t min_length = 0, max_length = kUnbounded;

  std::vector<std::pair<std::string, Check>> properties;
  // `required` split at compile time: properties[i] required ⇔ bit i (the first 64), and the
  // required names that are not declared properties (looked up field by field).
  std::uint64_t required_mask = 0;
  std::unique_ptr<Check> items;
  std::unique_ptr<Check> additional;  // additionalProperties as a schema
  std::uint64_t min_items = 0, max_items = kUnbounded, min_properties = 0,
                max_properties = kUnbounded;

  std::vector<std::string> required_undeclared;
  std::vector<std::string> required;
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
                  !c.items && c.min_items == 0 && c.max_items == kUnbounded &&
                  c.min_properties == 0 && c.max_properties == kUnbounded;
  c.leaf_keywords = c.one_of_values || c.minimum != -kInfinity || c.maximum != kInfinity ||
                    c.exclusive_minimum != -kInfinity || c.exclusive_maximum != kInfinity ||
                    c.min_length != 0 || c.max_length != kUnbounded;
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

// The walk reads simdjson's tape directly (its documented format, doc/tape.md): one 64-bit word
// per value, the type in the top byte; numbers take a second word; a string's word points at
// its 32-bit length and bytes in the string buffer; `{` and `[` hold the index just past their
// matching `}` / `]`. Going through dom::element cost a call and a type switch per accessor.
struct Tape {
  const std::uint64_t* words;
  const std::uint8_t* strings;

  char typeAt(std::size_t i) const { return static_cast<char>(words[i] >> 56); }
  std::string_view stringAt(std::size_t i) const {
    const std::uint8_t* at = strings + (words[i] & simdjson::internal::JSON_VALUE_MASK);
    std::uint32_t size;
    std::memcpy(&size, at, sizeof size);
    return {reinterpret_cast<const char*>(at + sizeof size), size};
  }
  // Index of the value after the one at i.
  std::size_t after(std::size_t i) const {
    switch (typeAt(i)) {
      case '{':
      case '[':
        return static_cast<std::uint32_t>(words[i]);
      case 'l':
      case 'u':
      case 'd':
        return i + 2;
      default:
        return i + 1;
    }
  }
};

unsigned typeBits(char t) {
  switch (t) {
    case 'n':
      return kNull;
    case 't':
    case 'f':
      return kBoolean;
    case '{':
      return kObject;
    case '[':
      return kArray;
    case 'l':
    case 'u':
      return kInteger;
    case 'd':
      return kFraction;
    case '"':
      return kString;
  }
  return 0;
}

[[gnu::noinline]] bool inEnum(const Check& c, const Tape& tape, std::size_t i, unsigned type) {
  for (const auto& v : *c.one_of_values) {
    if (v.is_null()      ? type == kNull
        : v.is_boolean() ? type == kBoolean && (tape.typeAt(i) == 't') == v.get<bool>()
                         : type == kString && tape.stringAt(i) == v.get_ref<const std::string&>())
      return true;
  }
  return false;
}

// A string's length in code points against [min, max], counting only when its size in bytes
// (1 to 4 per code point) does not settle it.
inline bool lengthWithin(std::string_view s, std::uint64_t min, std::uint64_t max) {
  if (s.size() <= max && s.size() / 4 >= min) return true;
  if (s.size() < min) return false;
  const auto n = codePoints(s);
  return n >= min && n <= max;
}

// The keywords about a value itself besides `type`: enum/const, number bounds, string length.
[[gnu::always_inline]] inline bool checkLeafKeywords(const Check& c, const Tape& tape,
                                                     std::size_t i, unsigned type) {
  if (c.one_of_values && !inEnum(c, tape, i, type)) return false;
  if (type & kNumber) {
    const std::uint64_t bits = tape.words[i + 1];
    double d;
    switch (tape.typeAt(i)) {
      case 'u':
        d = static_cast<double>(bits);
        break;
      case 'l':
        d = static_cast<double>(static_cast<std::int64_t>(bits));
        break;
      default:
        std::memcpy(&d, &bits, sizeof d);
    }
    return d >= c.minimum && d <= c.maximum && d > c.exclusive_minimum && d < c.exclusive_maximum;
  }
  return type != kString || lengthWithin(tape.stringAt(i), c.min_length, c.max_length);
}

// What a value is checked for besides its items and members.
[[gnu::always_inline]] inline bool checkValue(const Check& c, const Tape& tape, std::size_t i,
                                              unsigned type) {
  if (c.never || !(c.types & type)) return false;
  return !c.leaf_keywords || checkLeafKeywords(c, tape, i, type);
}

bool check(const Check& c, const Tape& tape, std::size_t i);

// A member or an item: a scalar-only schema without the walk's call.
inline bool checkChild(const Check& c, const Tape& tape, std::size_t i) {
  return c.scalar_only ? checkValue(c, tape, i, typeBits(tape.typeAt(i))) : check(c, tape, i);
}

bool check(const Check& c, const Tape& tape, std::size_t i) {
  const unsigned type = typeBits(tape.typeAt(i));
  if (!checkValue(c, tape, i, type)) return false;
  if (type == kArray) {
    const std::size_t end = tape.after(i) - 1;  // the `]`
    std::uint64_t n = 0;
    for (std::size_t item = i + 1; item < end; item = tape.after(item)) {
      ++n;
      if (c.items && !checkChild(*c.items, tape, item)) return false;
    }
    if (n < c.min_items || n > c.max_items) return false;
  } else if (type == kObject) {
    const std::size_t end = tape.after(i) - 1;  // the `}`
    std::uint64_t n = 0;
    std::uint64_t seen = 0;  // declared properties present, by index (the first 64)
    for (std::size_t key = i + 1; key < end; key = tape.after(key + 1)) {
      ++n;
      const std::string_view name = tape.stringAt(key);
      bool declared = false;
      for (std::size_t p = 0; p < c.properties.size(); ++p) {
        if (!sameName(c.properties[p].first, name)) continue;
        declared = true;
        if (p < 64) seen |= std::uint64_t{1} << p;
        if (!checkChild(c.properties[p].second, tape, key + 1)) return false;
        break;  // property names are unique
      }
      if (!declared &&
          (c.no_additional || (c.additional && !checkChild(*c.additional, tape, key + 1))))
        return false;
    }
    if (n < c.min_properties || n > c.max_properties) return false;
    if ((seen & c.required_mask) != c.required_mask) return false;
    for (const auto& r : c.required_undeclared) {
      bool present = false;
      for (std::size_t key = i + 1; key < end && !present; key = tape.after(key + 1))
        present = tape.stringAt(key) == r;
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
  dom::parser& parser = bodyParser(document.size(), own);
  if (parser.parse(document.data(), document.size(), copy).get(root)) return false;
  // The tape starts with the root word; the document's value is the next one.
  return check(*root_, Tape{parser.doc.tape.get(), parser.doc.string_buf.get()}, 1);
}

}  // namespace portico::filters
