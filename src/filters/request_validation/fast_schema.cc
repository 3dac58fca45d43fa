#include "filters/request_validation/fast_schema.h"

#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace portico::filters {

// Bits of the JSON types a value may have ("number" also accepts integers).
constexpr unsigned kNull = 1, kBoolean = 2, kObject = 4, kArray = 8, kInteger = 16, kFraction = 32,
                   kNumber = kFraction | kInteger, kString = 64, kAny = 127;

constexpr double kInfinity = std::numeric_limits<double>::infinity();
constexpr std::uint64_t kUnbounded = std::numeric_limits<std::uint64_t>::max();

// A declared property's name, with its first 8 bytes as a word: most names are that short, and
// one compare of a word read from the document settles them (a byte loop showed in profiles).
struct PropertyName {
  std::string name;
  std::uint64_t prefix = 0;  // the first min(8, size) bytes, little-endian, zero above

  static PropertyName of(std::string name) {
    PropertyName n{std::move(name)};
    std::memcpy(&n.prefix, n.name.data(), std::min<std::size_t>(n.name.size(), 8));
    return n;
  }
};

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

  // Declared properties, names and checks apart (a vector of pairs holding the incomplete Check
  // is refused by clang's library checks).
  std::vector<PropertyName> property_names;
  std::vector<Check> properties;
  // `required` split at compile time: property i required ⇔ bit i (the first 64), and the
  // required names that are not declared properties (looked up field by field).
  std::uint64_t required_mask = 0;
  std::unique_ptr<Check> items;
  std::unique_ptr<Check> additional;  // additionalProperties as a schema
  std::uint64_t min_items = 0, max_items = kUnbounded, min_properties = 0,
                max_properties = kUnbounded;

  std::vector<std::string> required_undeclared;
  std::uint64_t required_undeclared_mask = 0;  // one bit per name in required_undeclared
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
        c.property_names.push_back(PropertyName::of(p.key()));
        c.properties.push_back(std::move(child));
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
    while (i < c.properties.size() && c.property_names[i].name != r) ++i;
    if (i < c.properties.size() && i < 64)
      c.required_mask |= std::uint64_t{1} << i;
    else
      c.required_undeclared.push_back(r);
  }
  if (c.required_undeclared.size() > 64) return false;  // seen by bit, as declared ones
  for (std::size_t r = 0; r < c.required_undeclared.size(); ++r)
    c.required_undeclared_mask |= std::uint64_t{1} << r;
  return true;
}

// UTF-8 code points, as JSON Schema counts string length.
std::uint64_t codePoints(std::string_view s) {
  std::uint64_t n = 0;
  for (const char ch : s) n += (static_cast<unsigned char>(ch) & 0xC0) != 0x80;
  return n;
}

// A string's length in code points against [min, max], counting only when its size in bytes
// (1 to 4 per code point) does not settle it.
inline bool lengthWithin(std::string_view s, std::uint64_t min, std::uint64_t max) {
  if (s.size() <= max && s.size() / 4 >= min) return true;
  if (s.size() < min) return false;
  const auto n = codePoints(s);
  return n >= min && n <= max;
}

// Deeper documents are left to valijson (simdjson's DOM, before, stopped at 1024).
constexpr int kMaxDepth = 256;

constexpr std::uint64_t kOnes = 0x0101010101010101ull, kHighs = 0x8080808080808080ull;

// Bytes of 8 (little-endian word) that are '"', '\\', a control character or not ASCII: the
// high bit of each such byte. Above the first one a byte may be flagged wrongly (a borrow), so
// only the lowest flag is read.
inline std::uint64_t stringStops(std::uint64_t w) {
  const auto zero_in = [](std::uint64_t x) { return (x - kOnes) & ~x & kHighs; };
  return (zero_in(w ^ (kOnes * '"')) | zero_in(w ^ (kOnes * '\\')) | ((w - kOnes * 0x20) & ~w) |
          w) &
         kHighs;
}

// A one-pass walk over JSON text, checking it against the compiled schema as it parses: no
// tape, no DOM. It accepts exactly RFC 8259 JSON (UTF-8 checked, escapes decoded where a value
// is compared); anything it cannot settle cheaply (a lone surrogate escape, depth over
// kMaxDepth) is "invalid", which sends the document to valijson for the verdict.
class Walk {
 public:
  explicit Walk(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

  bool document(const Check& root) {
    skipSpace();
    if (!value(&root)) return false;
    skipSpace();
    return p_ == end_;
  }

 private:
  struct Text {
    std::string_view raw;  // between the quotes, escapes as written
    bool escaped = false;
  };

  void skipSpace() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }
  bool at(char c) const { return p_ != end_ && *p_ == c; }

  // `c` is null for a value no keyword constrains: it is only parsed.
  bool value(const Check* c) {
    if (p_ == end_) return false;
    unsigned type;
    switch (*p_) {
      case '{':
        type = kObject;
        break;
      case '[':
        type = kArray;
        break;
      case '"':
        type = kString;
        break;
      case 't':
      case 'f':
        type = kBoolean;
        break;
      case 'n':
        type = kNull;
        break;
      default:
        type = 0;  // a number, told apart below
    }
    if (c && c->never) return false;
    switch (type) {
      // (enum/const hold no objects or arrays)
      case kObject:
        return (!c || ((c->types & kObject) && !c->one_of_values)) && object(c);
      case kArray:
        return (!c || ((c->types & kArray) && !c->one_of_values)) && array(c);
      case kString: {
        Text t;
        if (!string(t)) return false;
        if (!c) return true;
        if (!(c->types & kString)) return false;
        if (!c->leaf_keywords) return true;
        std::string_view s = t.raw;
        if (t.escaped && !unescape(t.raw, s)) return false;
        if (c->one_of_values && !inEnum(*c, kString, s, false)) return false;
        return lengthWithin(s, c->min_length, c->max_length);
      }
      case kBoolean: {
        const bool truth = *p_ == 't';
        if (!literal(truth ? "true" : "false")) return false;
        return !c ||
               ((c->types & kBoolean) && (!c->one_of_values || inEnum(*c, kBoolean, {}, truth)));
      }
      case kNull:
        if (!literal("null")) return false;
        return !c || ((c->types & kNull) && (!c->one_of_values || inEnum(*c, kNull, {}, false)));
      default:
        return number(c);
    }
  }

  bool literal(std::string_view word) {
    if (static_cast<std::size_t>(end_ - p_) < word.size() ||
        std::string_view(p_, word.size()) != word)
      return false;
    p_ += word.size();
    return true;
  }

  static bool inEnum(const Check& c, unsigned type, std::string_view s, bool truth) {
    for (const auto& v : *c.one_of_values) {
      if (v.is_null()      ? type == kNull
          : v.is_boolean() ? type == kBoolean && truth == v.get<bool>()
                           : type == kString && s == v.get_ref<const std::string&>())
        return true;
    }
    return false;
  }

  // -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?  An integer is one without fraction or
  // exponent that fits 64 bits (signed when negative), as nlohmann-json (valijson's input) reads
  // it.
  bool number(const Check* c) {
    const char* begin = p_;
    const bool negative = at('-');
    if (negative) ++p_;
    if (p_ == end_ || *p_ < '0' || *p_ > '9') return false;
    std::uint64_t magnitude = 0;
    bool fits = true;
    if (*p_ == '0') {
      ++p_;
    } else {
      while (p_ != end_ && *p_ >= '0' && *p_ <= '9') {
        const unsigned digit = static_cast<unsigned>(*p_ - '0');
        fits = fits && magnitude <= (kUnbounded - digit) / 10;
        magnitude = magnitude * 10 + digit;
        ++p_;
      }
    }
    bool integer = true;
    if (at('.')) {
      integer = false;
      ++p_;
      if (!digits()) return false;
    }
    double d;
    if (at('e') || at('E')) {
      integer = false;
      ++p_;
      if (at('+') || at('-')) ++p_;
      // Out of double's range (1e400): nlohmann-json refuses it; so does this walk.
      if (!digits() || std::from_chars(begin, p_, d).ec != std::errc()) return false;
    } else if (!fits && std::from_chars(begin, p_, d).ec != std::errc()) {
      return false;  // so is an integer part of 310 digits (found by fast_schema_fuzz)
    }
    if (integer && negative) fits = fits && magnitude <= (std::uint64_t{1} << 63);
    if (!c) return true;
    const unsigned type = integer && fits ? kInteger : kFraction;
    if (!(c->types & type) || c->one_of_values) return false;  // enum/const hold no numbers
    if (!c->leaf_keywords) return true;
    if (type == kInteger) {
      d = static_cast<double>(magnitude);
      if (negative) d = -d;
    } else if (std::from_chars(begin, p_, d).ec != std::errc()) {
      return false;
    }
    return d >= c->minimum && d <= c->maximum && d > c->exclusive_minimum &&
           d < c->exclusive_maximum;
  }

  bool digits() {
    const char* first = p_;
    while (p_ != end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    return p_ != first;
  }

  // At the opening quote; leaves p_ past the closing one. Inlined: as a call, the caller waited
  // on the Text it wrote (a quarter of the walk's time in profiles).
  [[gnu::always_inline]] bool string(Text& t) {
    const char* begin = ++p_;
    for (;;) {
      std::uint64_t stops = 0;
      while (end_ - p_ >= 8) {
        std::uint64_t w;
        std::memcpy(&w, p_, sizeof w);
        stops = stringStops(w);
        if (stops) break;
        p_ += 8;
      }
      if (stops) {
        p_ += std::countr_zero(stops) / 8;
      } else {
        while (p_ != end_ && !(stringStops(static_cast<unsigned char>(*p_)) & 0x80)) ++p_;
        if (p_ == end_) return false;
      }
      const auto ch = static_cast<unsigned char>(*p_);
      if (ch == '"') {
        t.raw = {begin, static_cast<std::size_t>(p_ - begin)};
        ++p_;
        return true;
      }
      if (ch == '\\') {
        t.escaped = true;
        if (!escape()) return false;
      } else if (ch >= 0x80) {
        if (!utf8()) return false;
      } else {
        return false;  // a control character
      }
    }
  }

  // At a backslash inside a string.
  bool escape() {
    if (end_ - p_ < 2) return false;
    const char e = p_[1];
    p_ += 2;
    if (e != 'u') return std::strchr("\"\\/bfnrt", e) != nullptr && e != '\0';
    const long unit = hex4();
    if (unit < 0 || (unit >= 0xDC00 && unit <= 0xDFFF)) return false;
    if (unit >= 0xD800 && unit <= 0xDBFF) {  // a high surrogate: its low half must follow
      if (!literal("\\u")) return false;
      const long low = hex4();
      return low >= 0xDC00 && low <= 0xDFFF;
    }
    return true;
  }

  long hex4() {
    if (end_ - p_ < 4) return -1;
    const long v = hexValue(p_);
    p_ += 4;
    return v;
  }

  // Four hex digits at `at`, or -1.
  static long hexValue(const char* at) {
    long v = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = at[i];
      const int d = h >= '0' && h <= '9'   ? h - '0'
                    : h >= 'a' && h <= 'f' ? h - 'a' + 10
                    : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                           : -1;
      if (d < 0) return -1;
      v = v * 16 + d;
    }
    return v;
  }

  // At a byte >= 0x80: one well-formed UTF-8 sequence (RFC 3629: no overlong forms, no
  // surrogates, nothing above U+10FFFF).
  bool utf8() {
    const auto b = [&](std::ptrdiff_t i) { return static_cast<unsigned char>(p_[i]); };
    const auto continuation = [&](std::ptrdiff_t i, unsigned lo = 0x80, unsigned hi = 0xBF) {
      return b(i) >= lo && b(i) <= hi;
    };
    const unsigned lead = b(0);
    const std::ptrdiff_t left = end_ - p_;
    std::ptrdiff_t n;
    if (lead >= 0xC2 && lead <= 0xDF) {
      n = 2;
      if (left < n || !continuation(1)) return false;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      n = 3;
      if (left < n) return false;
      const unsigned lo = lead == 0xE0 ? 0xA0 : 0x80, hi = lead == 0xED ? 0x9F : 0xBF;
      if (!continuation(1, lo, hi) || !continuation(2)) return false;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      n = 4;
      if (left < n) return false;
      const unsigned lo = lead == 0xF0 ? 0x90 : 0x80, hi = lead == 0xF4 ? 0x8F : 0xBF;
      if (!continuation(1, lo, hi) || !continuation(2) || !continuation(3)) return false;
    } else {
      return false;
    }
    p_ += n;
    return true;
  }

  // The value of a string with escapes (already checked by string()), into scratch_.
  bool unescape(std::string_view raw, std::string_view& out) {
    scratch_.clear();
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] != '\\') {
        scratch_ += raw[i];
        continue;
      }
      const char e = raw[++i];
      if (e != 'u') {
        scratch_ += e == 'b'   ? '\b'
                    : e == 'f' ? '\f'
                    : e == 'n' ? '\n'
                    : e == 'r' ? '\r'
                    : e == 't' ? '\t'
                               : e;
        continue;
      }
      const auto hex = [&](std::size_t at) {
        return static_cast<std::uint32_t>(hexValue(raw.data() + at));
      };
      std::uint32_t cp = hex(i + 1);
      i += 4;
      if (cp == 0) return false;  // valijson measures such a string up to the NUL: it decides
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        cp = 0x10000 + ((cp - 0xD800) << 10) + (hex(i + 3) - 0xDC00);
        i += 6;
      }
      if (cp < 0x80) {
        scratch_ += static_cast<char>(cp);
      } else if (cp < 0x800) {
        scratch_ += static_cast<char>(0xC0 | (cp >> 6));
        scratch_ += static_cast<char>(0x80 | (cp & 0x3F));
      } else if (cp < 0x10000) {
        scratch_ += static_cast<char>(0xE0 | (cp >> 12));
        scratch_ += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        scratch_ += static_cast<char>(0x80 | (cp & 0x3F));
      } else {
        scratch_ += static_cast<char>(0xF0 | (cp >> 18));
        scratch_ += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        scratch_ += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        scratch_ += static_cast<char>(0x80 | (cp & 0x3F));
      }
    }
    out = scratch_;
    return true;
  }

  // The items of an array or the members of an object, `one` parsing each (at its first byte;
  // it leaves p_ past it), counted into `n`; false on a syntax error or when `one` refuses.
  template <class Element>
  bool elements(char close, std::uint64_t& n, Element&& one) {
    ++p_;  // the '[' or '{'
    skipSpace();
    if (at(close)) {
      ++p_;
      return true;
    }
    for (;;) {
      ++n;
      if (!one()) return false;
      skipSpace();
      if (at(close)) {
        ++p_;
        return true;
      }
      if (!at(',')) return false;
      ++p_;
      skipSpace();
    }
  }

  bool array(const Check* c) {
    if (++depth_ > kMaxDepth) return false;
    std::uint64_t n = 0;
    const Check* items = c ? c->items.get() : nullptr;
    if (!elements(']', n, [&] { return value(items); })) return false;
    --depth_;
    return !c || (n >= c->min_items && n <= c->max_items);
  }

  bool object(const Check* c) {
    if (++depth_ > kMaxDepth) return false;
    std::uint64_t n = 0;
    std::uint64_t seen = 0;             // declared properties present, by index (the first 64)
    std::uint64_t seen_undeclared = 0;  // required names not declared, by index
    std::size_t next = 0;               // see memberCheck
    const bool parsed = elements('}', n, [&] {
      if (!at('"')) return false;
      Text key;
      if (!string(key)) return false;
      skipSpace();
      if (!at(':')) return false;
      ++p_;
      skipSpace();
      const Check* member = nullptr;
      if (c) {
        std::string_view name = key.raw;
        if (key.escaped && !unescape(key.raw, name)) return false;
        // A key in the document is followed by `":` and a value: a word from its start
        // stays within the text when 8 bytes are left.
        const bool word_readable = !key.escaped && end_ - key.raw.data() >= 8;
        member = memberCheck(*c, name, word_readable, next, seen, seen_undeclared);
        if (member == &kRefused) return false;
      }
      return value(member);
    });
    if (!parsed) return false;
    --depth_;
    if (!c) return true;
    return n >= c->min_properties && n <= c->max_properties &&
           (seen & c->required_mask) == c->required_mask &&
           seen_undeclared == c->required_undeclared_mask;
  }

  // The check for member `name` of an object checked by `c` (null: unconstrained), or
  // &kRefused when `c` allows no such member. Marks required names seen.
  // `next`: where the search starts, just past the previous member found, since documents
  // mostly list members in the schema's order.
  static const Check* memberCheck(const Check& c, std::string_view name, bool word_readable,
                                  std::size_t& next, std::uint64_t& seen,
                                  std::uint64_t& seen_undeclared) {
    const std::size_t count = c.properties.size();
    for (std::size_t tried = 0, p = next < count ? next : 0; tried < count;
         ++tried, p = p + 1 == count ? 0 : p + 1) {
      if (!sameName(c.property_names[p], name, word_readable)) continue;
      if (p < 64) seen |= std::uint64_t{1} << p;
      next = p + 1;
      return &c.properties[p];
    }
    for (std::size_t r = 0; r < c.required_undeclared.size(); ++r)
      if (c.required_undeclared[r] == name) seen_undeclared |= std::uint64_t{1} << r;
    if (c.no_additional) return &kRefused;
    return c.additional.get();
  }

  // A declared name against a key; `word_readable`: 8 bytes may be read from key.data().
  static bool sameName(const PropertyName& n, std::string_view key, bool word_readable) {
    if (n.name.size() != key.size()) return false;
    if (key.size() <= 8 && word_readable) {
      std::uint64_t w;
      std::memcpy(&w, key.data(), sizeof w);
      if (key.size() < 8) w &= (std::uint64_t{1} << (8 * key.size())) - 1;
      return w == n.prefix;
    }
    return std::memcmp(n.name.data(), key.data(), key.size()) == 0;
  }

  static const Check kRefused;

  const char* p_;
  const char* end_;
  int depth_ = 0;
  std::string scratch_;  // an escaped string's value
};

const Check Walk::kRefused{};

}  // namespace

std::optional<FastSchema> FastSchema::compile(const nlohmann::json& schema) {
  auto root = std::make_shared<Check>();
  if (!compileCheck(schema, *root)) return std::nullopt;
  FastSchema f;
  f.root_ = std::move(root);
  return f;
}

bool FastSchema::valid(std::string_view document) const {
  return Walk(document).document(*root_);
}

}  // namespace portico::filters
