#include "config/config_tree.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include <yaml-cpp/yaml.h>

#include "core/utf8.h"

namespace portico::config {
namespace {

using nlohmann::json;

struct Converter {
  const std::string& file;
  const EnvLookup& env;
  Diagnostics& diag;
  ConfigTree& tree;
  // How many more values may be made. Aliases let a short text name the same values again and
  // again (an alias of a list of aliases...): 10 lines can stand for 10 million values. Without
  // aliases a document holds fewer values than bytes, so that is the budget.
  std::size_t values_left = SIZE_MAX;

  void remember(const std::string& path, const YAML::Mark& mark) {
    tree.locations[path] = SourceLocation{file, mark.line + 1, mark.column + 1};
  }

  // Replaces ${NAME} occurrences; `$${` escapes a literal "${".
  std::string substitute(const std::string& in, const std::string& path, bool& substituted) {
    std::string out;
    out.reserve(in.size());
    for (size_t i = 0; i < in.size(); ++i) {
      if (in[i] == '$' && i + 2 < in.size() && in[i + 1] == '$' && in[i + 2] == '{') {
        out += "${";
        i += 2;
        continue;
      }
      if (in[i] == '$' && i + 1 < in.size() && in[i + 1] == '{') {
        auto end = in.find('}', i + 2);
        if (end == std::string::npos) {
          diag.add(path, "unterminated ${ in \"" + in + "\"");
          return in;
        }
        std::string name = in.substr(i + 2, end - i - 2);
        auto value = env(name);
        if (!value) {
          diag.add(path, "environment variable " + name + " is not set");
        } else if (!isValidUtf8(*value)) {
          diag.add(path, "environment variable " + name + " is not valid UTF-8");
        } else {
          out += *value;
        }
        substituted = true;
        i = end;
        continue;
      }
      out += in[i];
    }
    return out;
  }

  json scalar(const YAML::Node& node, const std::string& path) {
    const std::string& raw = node.Scalar();
    bool substituted = false;
    std::string text =
        raw.find('$') == std::string::npos ? raw : substitute(raw, path, substituted);
    if (substituted) tree.secrets.insert(path);
    if (node.Tag() == "!" || substituted) return text;  // quoted, or from the environment
    if (text.empty() || text == "~" || text == "null") return nullptr;
    if (text == "true") return true;
    if (text == "false") return false;
    char* end = nullptr;
    errno = 0;
    long long i = std::strtoll(text.c_str(), &end, 10);
    if (errno == 0 && end && *end == '\0' && !text.empty()) return i;
    errno = 0;
    double d = std::strtod(text.c_str(), &end);
    if (errno == 0 && end && *end == '\0' && text.find_first_of("0123456789") == 0) return d;
    return text;
  }

  json convert(const YAML::Node& node, const std::string& path) {
    if (values_left == 0) return nullptr;  // reported when it ran out
    if (--values_left == 0) {
      diag.add(path, "aliases repeat more values than the text holds");
      return nullptr;
    }
    remember(path, node.Mark());
    switch (node.Type()) {
      case YAML::NodeType::Map: {
        json obj = json::object();
        for (const auto& kv : node) {
          if (!kv.first.IsScalar()) {
            diag.add(path, "map keys must be strings");
            continue;
          }
          const std::string key = kv.first.Scalar();
          std::string child = path.empty() ? key : path + "." + key;
          remember(child + "#key", kv.first.Mark());
          if (obj.contains(key)) {
            diag.add(child, "duplicate key \"" + key + "\"", true);
            continue;
          }
          obj[key] = convert(kv.second, child);
        }
        return obj;
      }
      case YAML::NodeType::Sequence: {
        json arr = json::array();
        size_t i = 0;
        for (const auto& item : node) {
          arr.push_back(convert(item, path + "[" + std::to_string(i) + "]"));
          ++i;
        }
        return arr;
      }
      case YAML::NodeType::Scalar:
        return scalar(node, path);
      default:
        return nullptr;
    }
  }
};

void redact(json& node, const std::string& path, const std::unordered_set<std::string>& secrets) {
  if (secrets.count(path)) {
    node = "<redacted>";
    return;
  }
  if (node.is_object()) {
    for (auto& [key, value] : node.items()) {
      redact(value, path.empty() ? key : path + "." + key, secrets);
    }
  } else if (node.is_array()) {
    for (size_t i = 0; i < node.size(); ++i) {
      redact(node[i], path + "[" + std::to_string(i) + "]", secrets);
    }
  }
}

// Builds the DOM from nlohmann's SAX events, refusing duplicate keys (the DOM parser keeps the
// last one silently). Paths are only spelled out for an error.
class StrictJsonBuilder : public nlohmann::json_sax<json> {
 public:
  StrictJsonBuilder(json& root, Diagnostics& diag) : root_(root), diag_(diag) {}

  bool null() override { return put(nullptr); }
  bool boolean(bool v) override { return put(v); }
  bool number_integer(number_integer_t v) override { return put(v); }
  bool number_unsigned(number_unsigned_t v) override { return put(v); }
  bool number_float(number_float_t v, const string_t&) override { return put(v); }
  bool string(string_t& v) override { return put(std::move(v)); }
  bool binary(binary_t&) override { return false; }
  bool start_object(std::size_t) override { return open(json::object()); }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(json::array()); }
  bool end_array() override { return close(); }
  bool key(string_t& k) override {
    Frame& f = stack_.back();
    if (f.node->contains(k)) {
      diag_.add(pathOf(k), "duplicate key \"" + k + "\"", true);
      f.skip = true;
    } else {
      f.skip = false;
    }
    f.key = std::move(k);
    return true;
  }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& e) override {
    diag_.add("", "syntax error at byte " + std::to_string(position) + ": " + e.what());
    return false;
  }

 private:
  struct Frame {
    json* node;
    std::string key;
    bool skip = false;
  };

  json* slot() {
    if (stack_.empty()) return &root_;
    Frame& f = stack_.back();
    if (f.node->is_array()) {
      f.node->push_back(nullptr);
      return &f.node->back();
    }
    if (f.skip) {
      scratch_ = nullptr;
      return &scratch_;  // a duplicate's value is read and dropped
    }
    return &(*f.node)[f.key];
  }
  bool put(json v) {
    *slot() = std::move(v);
    return true;
  }
  bool open(json v) {
    json* s = slot();
    *s = std::move(v);
    if (s == &scratch_) {  // keep nested duplicates out of the tree
      dropped_.push_back(std::make_unique<json>(std::move(scratch_)));
      s = dropped_.back().get();
    }
    stack_.push_back(Frame{s, {}, false});
    return true;
  }
  bool close() {
    stack_.pop_back();
    return true;
  }
  std::string pathOf(const std::string& last) const {
    std::string path;
    for (const auto& f : stack_) {
      if (&f == &stack_.back()) break;
      if (f.node->is_array()) {
        path += "[" + std::to_string(f.node->size() - 1) + "]";
      } else {
        path += path.empty() ? f.key : "." + f.key;
      }
    }
    return path.empty() ? last : path + "." + last;
  }

  json& root_;
  Diagnostics& diag_;
  std::vector<Frame> stack_;
  json scratch_;
  std::vector<std::unique_ptr<json>> dropped_;
};

// ${ENV} in every string of a JSON tree; the path is spelled out only where one occurs.
void substituteTree(json& node, std::vector<std::string>& path, Converter& conv) {
  if (node.is_string()) {
    const std::string& s = node.get_ref<const std::string&>();
    if (s.find('$') == std::string::npos) return;
    std::string joined;
    for (const auto& piece : path) {
      if (!joined.empty() && piece.front() != '[') joined += '.';
      joined += piece;
    }
    bool substituted = false;
    std::string out = conv.substitute(s, joined, substituted);
    if (substituted) conv.tree.secrets.insert(joined);
    node = std::move(out);
  } else if (node.is_object()) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      path.push_back(it.key());
      substituteTree(it.value(), path, conv);
      path.pop_back();
    }
  } else if (node.is_array()) {
    for (std::size_t i = 0; i < node.size(); ++i) {
      path.push_back("[" + std::to_string(i) + "]");
      substituteTree(node[i], path, conv);
      path.pop_back();
    }
  }
}

bool looksLikeJson(const std::string& text) {
  for (char c : text) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    return c == '{';
  }
  return false;
}

// How deep flow collections ([ and {) may nest: yaml-cpp's parser, the tree's walkers and the
// model's readers recurse once per level, on the thread's stack.
constexpr int kMaxNesting = 256;

struct RefusedText {
  std::size_t offset;
  std::string why;
};

// What is refused before any parser sees the text. The YAML reader keeps any bytes in a string
// and takes text with NUL bytes near its start for UTF-16 or UTF-32, where JSON's parser
// refuses both: refused for both, so names, paths and values are UTF-8 text wherever they go
// next (metrics labels, the Admin API's JSON, the store). Nesting is counted over every
// bracket, quoted or not: an over-estimate, so no deeper document gets through.
std::optional<RefusedText> refuseText(std::string_view text) {
  const std::size_t invalid = firstInvalidUtf8(text);
  int depth = 0;
  for (std::size_t i = 0; i < invalid; ++i) {
    const char c = text[i];
    if (c == '[' || c == '{') {
      if (++depth > kMaxNesting)
        return RefusedText{i, "nested more than " + std::to_string(kMaxNesting) + " levels deep"};
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    } else if (c == '\0') {
      return RefusedText{i, "a NUL byte"};
    }
  }
  if (invalid != text.size()) return RefusedText{invalid, "not valid UTF-8"};
  return std::nullopt;
}

}  // namespace

EnvLookup processEnvironment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

void parseConfigText(const std::string& text, const std::string& file, const EnvLookup& env,
                     ConfigTree& tree, Diagnostics& diag) {
  if (const auto refused = refuseText(text)) {
    const std::string_view before(text.data(), refused->offset);
    const std::size_t line_start = before.rfind('\n') + 1;  // npos + 1 == 0
    const auto line = std::count(before.begin(), before.end(), '\n') + 1;
    diag.add("", refused->why + " (" + file + ":" + std::to_string(line) + ":" +
                     std::to_string(refused->offset - line_start + 1) + ")");
    return;
  }
  if (looksLikeJson(text)) {
    // Positions come from a YAML pass over the same text, run only if an error is reported.
    tree.json_source = text;
    diag.setLocator([&tree, file, env]() -> const Diagnostics::LocationMap* {
      try {
        Diagnostics ignored;
        ConfigTree scratch;
        Converter conv{file, env, ignored, scratch};
        conv.convert(YAML::Load(tree.json_source), "");
        tree.locations = std::move(scratch.locations);
      } catch (const YAML::Exception&) {
      }
      return &tree.locations;
    });
    StrictJsonBuilder builder(tree.root, diag);
    json::sax_parse(text, &builder);
    std::vector<std::string> path;
    Converter conv{file, env, diag, tree};
    substituteTree(tree.root, path, conv);
    return;
  }
  diag.setLocations(&tree.locations);
  try {
    YAML::Node doc = YAML::Load(text);
    Converter conv{file, env, diag, tree, text.size() + 1024};
    tree.root = conv.convert(doc, "");
  } catch (const YAML::Exception& e) {
    diag.add("", "syntax error: " + e.msg + " (" + file + ":" + std::to_string(e.mark.line + 1) +
                     ":" + std::to_string(e.mark.column + 1) + ")");
  }
}

nlohmann::json redacted(const ConfigTree& tree) {
  ConfigTree copy;
  copy.root = tree.root;
  copy.secrets = tree.secrets;
  return redacted(std::move(copy));
}

nlohmann::json redacted(ConfigTree&& tree) {
  json copy = std::move(tree.root);
  if (!tree.secrets.empty()) redact(copy, "", tree.secrets);
  // Consumer credentials are secrets whether or not they came from the environment.
  if (copy.is_object() && copy.contains("consumers") && copy["consumers"].is_array()) {
    for (auto& consumer : copy["consumers"]) {
      if (consumer.is_object() && consumer.contains("credentials"))
        consumer["credentials"] = "<redacted>";
    }
  }
  return copy;
}

}  // namespace portico::config

namespace portico::config {
namespace {

// A value read back must not be taken for ${NAME}: a literal "${" is written "$${", as the
// reader's substitution expects.
std::string escapeSubstitution(const std::string& value) {
  std::string out;
  std::size_t from = 0;
  for (std::size_t at; (at = value.find("${", from)) != std::string::npos; from = at + 2)
    out.append(value, from, at - from).append("$${");
  return from == 0 ? value : out.append(value, from);
}

}  // namespace

nlohmann::json escapeSubstitutions(nlohmann::json value) {
  if (value.is_string()) {
    const auto& text = value.get_ref<const std::string&>();
    if (text.find("${") != std::string::npos) value = escapeSubstitution(text);
  } else if (value.is_structured()) {
    for (auto& item : value) item = escapeSubstitutions(std::move(item));
  }
  return value;
}

namespace {

void emit(YAML::Emitter& out, const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::object:
      out << YAML::BeginMap;
      for (auto it = v.begin(); it != v.end(); ++it) {
        out << YAML::Key << it.key() << YAML::Value;
        emit(out, *it);
      }
      out << YAML::EndMap;
      break;
    case nlohmann::json::value_t::array:
      out << YAML::BeginSeq;
      for (const auto& item : v) emit(out, item);
      out << YAML::EndSeq;
      break;
    case nlohmann::json::value_t::string:
      out << YAML::DoubleQuoted << escapeSubstitution(v.get_ref<const std::string&>());
      break;
    case nlohmann::json::value_t::null:
      out << YAML::Null;
      break;
    default:
      out << v.dump();  // numbers and booleans as JSON writes them are YAML too
  }
}

}  // namespace

std::string toYaml(const nlohmann::json& value) {
  YAML::Emitter out;
  emit(out, value);
  return std::string(out.c_str()) + "\n";
}

}  // namespace portico::config
