#include "flow/template.h"

#include "http/url.h"

#include <cctype>
#include <functional>

namespace portico::flow {
namespace {

// '@' and '#': the attribute and text keys of answers read as XML ("@currency", "#text").
bool isNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '@' ||
         c == '#';
}

// Splits "a.b[2].c[*]" into name tokens and bracket steps.
Result<std::vector<Step>> parseSteps(std::string_view s) {
  std::vector<Step> out;
  std::size_t i = 0;
  while (i < s.size()) {
    if (s[i] == '.') {
      ++i;
      const std::size_t start = i;
      while (i < s.size() && isNameChar(s[i])) ++i;
      if (i == start) return makeError("expected a name after '.'");
      out.push_back(Step{Step::Kind::Key, std::string(s.substr(start, i - start)), 0});
    } else if (s[i] == '[') {
      const auto close = s.find(']', i);
      if (close == std::string_view::npos) return makeError("unclosed '['");
      const std::string_view inside = s.substr(i + 1, close - i - 1);
      if (inside == "*") {
        out.push_back(Step{Step::Kind::All, {}, 0});
      } else {
        if (inside.empty() || inside.size() > 9) return makeError("bad index");
        std::size_t n = 0;
        for (char c : inside) {
          if (!std::isdigit(static_cast<unsigned char>(c))) return makeError("bad index");
          n = n * 10 + static_cast<std::size_t>(c - '0');
        }
        out.push_back(Step{Step::Kind::Index, {}, n});
      }
      i = close + 1;
    } else {
      return makeError("unexpected '" + std::string(1, s[i]) + "'");
    }
  }
  return out;
}

// The first name of a reference and the rest ("user[*].body.x" -> "user", "[*].body.x").
std::pair<std::string_view, std::string_view> head(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size() && isNameChar(s[i])) ++i;
  return {s.substr(0, i), s.substr(i)};
}

Result<Reference> parseReference(std::string_view text) {
  Reference ref;
  ref.text = std::string(text);
  auto bad = [&](std::string why) {
    return makeError("{" + std::string(text) + "}: " + std::move(why));
  };
  auto [root, rest] = head(text);
  if (root.empty()) return bad("expected a name");
  auto steps = parseSteps(rest);
  if (!steps) return bad(steps.error().message);
  std::vector<Step>& s = *steps;
  auto key = [&](std::size_t i) -> const std::string* {
    return i < s.size() && s[i].kind == Step::Kind::Key ? &s[i].key : nullptr;
  };
  auto rest_from = [&](std::size_t i) { return std::vector<Step>(s.begin() + i, s.end()); };
  if (root == "request") {
    const std::string* part = key(0);
    if (!part) return bad("expected request.path, .query, .header or .body");
    if (*part == "body") {
      ref.root = Reference::Root::RequestBody;
      ref.steps = rest_from(1);
      return ref;
    }
    const std::string* name = key(1);
    if (!name || s.size() != 2) return bad("expected request." + *part + ".NAME");
    ref.name = *name;
    if (*part == "path") {
      ref.root = Reference::Root::RequestPath;
    } else if (*part == "query") {
      ref.root = Reference::Root::RequestQuery;
    } else if (*part == "header") {
      ref.root = Reference::Root::RequestHeader;
      for (char& c : ref.name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else {
      return bad("expected request.path, .query, .header or .body");
    }
    return ref;
  }
  if (root == "consumer") {
    const std::string* part = key(0);
    if (!part || s.size() != 1 || (*part != "name" && *part != "groups"))
      return bad("expected consumer.name or consumer.groups");
    ref.root = *part == "name" ? Reference::Root::ConsumerName : Reference::Root::ConsumerGroups;
    return ref;
  }
  if (root == "item") {
    ref.root = Reference::Root::Item;
    ref.steps = std::move(s);
    return ref;
  }
  ref.root = Reference::Root::Call;
  ref.name = std::string(root);
  std::size_t i = 0;
  if (!s.empty() && s[0].kind == Step::Kind::All) {
    ref.every_item = true;
    i = 1;
  } else if (!s.empty() && s[0].kind == Step::Kind::Index) {
    ref.item = s[0].index;
    i = 1;
  }
  const std::string* field = key(i);
  if (!field) return bad("expected " + ref.name + ".status, .header.NAME or .body");
  if (*field == "status" && s.size() == i + 1) {
    ref.field = Reference::Field::Status;
  } else if (*field == "header" && key(i + 1) && s.size() == i + 2) {
    ref.field = Reference::Field::Header;
    ref.steps = rest_from(i + 1);
    for (char& c : ref.steps[0].key)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  } else if (*field == "body") {
    ref.field = Reference::Field::Body;
    ref.steps = rest_from(i + 1);
  } else {
    return bad("expected " + ref.name + ".status, .header.NAME or .body");
  }
  return ref;
}

}  // namespace

json walk(const json& value, const std::vector<Step>& steps, std::size_t from) {
  const json* v = &value;
  for (std::size_t i = from; i < steps.size(); ++i) {
    const Step& st = steps[i];
    switch (st.kind) {
      case Step::Kind::Key: {
        if (!v->is_object()) return nullptr;
        auto it = v->find(st.key);
        if (it == v->end()) return nullptr;
        v = &*it;
        break;
      }
      case Step::Kind::Index:
        if (!v->is_array() || st.index >= v->size()) return nullptr;
        v = &(*v)[st.index];
        break;
      case Step::Kind::All: {
        if (!v->is_array()) return nullptr;
        json out = json::array();
        for (const auto& e : *v) out.push_back(walk(e, steps, i + 1));
        return out;
      }
    }
  }
  return *v;
}

std::string toText(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_null()) return {};
  return jsonText(value);
}

std::string jsonText(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<StringTemplate> StringTemplate::parse(std::string_view text) {
  StringTemplate t;
  std::string literal;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if ((c == '{' || c == '}') && i + 1 < text.size() && text[i + 1] == c) {
      literal.push_back(c);
      ++i;
      continue;
    }
    if (c == '}') return makeError("unmatched '}' (write }} for a literal brace)");
    if (c != '{') {
      literal.push_back(c);
      continue;
    }
    const auto close = text.find('}', i);
    if (close == std::string_view::npos)
      return makeError("unclosed '{' (write {{ for a literal brace)");
    auto ref = parseReference(text.substr(i + 1, close - i - 1));
    if (!ref) return ref.error();
    if (!literal.empty()) t.parts_.emplace_back(std::move(literal));
    literal.clear();
    t.parts_.emplace_back(std::move(*ref));
    i = close;
  }
  if (!literal.empty()) t.parts_.emplace_back(std::move(literal));
  return t;
}

StringTemplate StringTemplate::literal(std::string text) {
  StringTemplate t;
  if (!text.empty()) t.parts_.emplace_back(std::move(text));
  return t;
}

json StringTemplate::render(const Scope& scope) const {
  if (parts_.size() == 1 && std::holds_alternative<Reference>(parts_[0]))
    return scope.resolve(std::get<Reference>(parts_[0]));
  return renderText(scope);
}

std::string StringTemplate::renderText(const Scope& scope, bool url_encode) const {
  std::string out;
  for (const auto& p : parts_) {
    if (const auto* s = std::get_if<std::string>(&p)) {
      out += *s;
    } else {
      const std::string v = toText(scope.resolve(std::get<Reference>(p)));
      out += url_encode ? http::encodeQueryComponent(v) : v;
    }
  }
  return out;
}

bool StringTemplate::writesDotSegment() const {
  std::string text;  // a reference stands for a value that is not all dots
  for (const auto& p : parts_) {
    const auto* s = std::get_if<std::string>(&p);
    text += s ? std::string_view(*s) : "x";
  }
  return http::hasDotSegment(http::pathOfTarget(text));
}

Result<JsonTemplate> JsonTemplate::parse(const json& value) {
  JsonTemplate t;
  if (value.is_string()) {
    auto s = StringTemplate::parse(value.get<std::string>());
    if (!s) return s.error();
    t.kind_ = Kind::String;
    t.string_ = std::make_shared<const StringTemplate>(std::move(*s));
  } else if (value.is_array() || value.is_object()) {
    t.kind_ = value.is_array() ? Kind::Array : Kind::Object;
    for (auto it = value.begin(); it != value.end(); ++it) {
      auto child = parse(*it);
      if (!child) return child.error();
      t.children_.emplace_back(value.is_object() ? it.key() : std::string(), std::move(*child));
    }
  } else {
    t.literal_ = value;
  }
  bool constant = true;
  t.forEachReference([&](const Reference&) { constant = false; });
  if (constant && t.kind_ != Kind::Literal) {
    // Nothing to resolve: rendered once here. No reference means no call on the scope.
    struct NoScope final : Scope {
      json resolve(const Reference&) const override { return nullptr; }
    };
    t.literal_ = t.render(NoScope());
    t.kind_ = Kind::Literal;
    t.string_.reset();
    t.children_.clear();
  }
  return t;
}

json JsonTemplate::render(const Scope& scope) const {
  switch (kind_) {
    case Kind::Literal:
      return literal_;
    case Kind::String:
      return string_->render(scope);
    case Kind::Array: {
      json out = json::array();
      for (const auto& [_, c] : children_) out.push_back(c.render(scope));
      return out;
    }
    case Kind::Object: {
      json out = json::object();
      for (const auto& [k, c] : children_) out[k] = c.render(scope);
      return out;
    }
  }
  return nullptr;
}

void JsonTemplate::forEachReference(const std::function<void(const Reference&)>& f) const {
  if (kind_ == Kind::String) {
    for (const auto& p : string_->parts())
      if (const auto* r = std::get_if<Reference>(&p)) f(*r);
  }
  for (const auto& [_, c] : children_) c.forEachReference(f);
}

}  // namespace portico::flow
