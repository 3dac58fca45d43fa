#pragma once
// Templates of flows: strings with {references} to the request, the consumer, the answers of
// other calls and the current for_each item, and JSON values whose strings are such templates.
// Compiled once at config load (every reference checked there); rendered per request against a
// Scope. A string that is exactly one reference keeps the JSON type of what it names; in a
// longer string each value is rendered as text. `{{` and `}}` are literal braces.
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace portico::flow {

using json = nlohmann::json;

// One step into a JSON value: an object key, an array index, or every element (`[*]`).
struct Step {
  enum class Kind { Key, Index, All };
  Kind kind = Kind::Key;
  std::string key;
  std::size_t index = 0;
};

struct Reference {
  enum class Root {
    RequestPath,     // request.path.NAME (a {param} of the route's path)
    RequestQuery,    // request.query.NAME
    RequestHeader,   // request.header.NAME (case-insensitive)
    RequestBody,     // request.body.a.b (the JSON request body)
    ConsumerName,    // consumer.name
    ConsumerGroups,  // consumer.groups
    Call,            // CALL.status, CALL.header.NAME, CALL.body.a.b; CALL[*]... per item
    Item,            // item, item.x (inside for_each)
  };
  enum class Field { Status, Header, Body };
  Root root = Root::Item;
  std::string name;  // path/query/header name (headers lower-cased); the call's name
  Field field = Field::Body;
  bool every_item = false;          // CALL[*]: each answer of a for_each call
  std::optional<std::size_t> item;  // CALL[N]: one answer of a for_each call
  std::vector<Step> steps;          // into the body, the request body or the item
  std::string text;                 // as written, for messages
};

// Follows `steps` into `value`; a missing field is null, `[*]` maps over an array.
json walk(const json& value, const std::vector<Step>& steps, std::size_t from = 0);

class Scope {
 public:
  virtual ~Scope() = default;
  virtual json resolve(const Reference& ref) const = 0;
};

class StringTemplate {
 public:
  using Part = std::variant<std::string, Reference>;
  // Parses `text`; the error names the bad reference.
  static Result<StringTemplate> parse(std::string_view text);
  static StringTemplate literal(std::string text);

  // The value: typed when the template is exactly one reference, else a string.
  json render(const Scope& scope) const;
  // As text; with `url_encode`, the referenced values are percent-encoded (literal parts are
  // kept as written).
  std::string renderText(const Scope& scope, bool url_encode = false) const;
  // Whether the template's own text, as a path or URL, holds a "." or ".." segment (checked
  // when the config loads; what references give is checked when they are rendered).
  bool writesDotSegment() const;

  const std::vector<Part>& parts() const { return parts_; }
  bool empty() const { return parts_.empty(); }

 private:
  std::vector<Part> parts_;
};

// A JSON value whose strings are templates (objects and arrays keep their shape).
class JsonTemplate {
 public:
  static Result<JsonTemplate> parse(const json& value);
  json render(const Scope& scope) const;
  // The value itself when it has no reference (rendering it would only copy it), else null.
  const json* constant() const { return kind_ == Kind::Literal ? &literal_ : nullptr; }
  // Every reference in it, in order.
  void forEachReference(const std::function<void(const Reference&)>& f) const;

 private:
  enum class Kind { Literal, String, Array, Object };
  Kind kind_ = Kind::Literal;
  json literal_;
  std::shared_ptr<const StringTemplate> string_;
  std::vector<std::pair<std::string, JsonTemplate>> children_;  // keys "" in arrays
};

// A value as text: strings as they are, null as "", others as JSON (via jsonText).
std::string toText(const json& value);

// JSON text of a value that may hold a text answer's bytes: bytes that are not UTF-8 are
// written as U+FFFD (nlohmann's dump() would throw on them).
std::string jsonText(const json& value);

}  // namespace portico::flow
