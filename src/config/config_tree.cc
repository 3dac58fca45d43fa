#include "config/config_tree.h"

#include <cstdlib>

#include <yaml-cpp/yaml.h>

namespace portico::config {
namespace {

using nlohmann::json;

struct Converter {
  const std::string& file;
  const EnvLookup& env;
  Diagnostics& diag;
  ConfigTree& tree;

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
  diag.setLocations(&tree.locations);
  try {
    YAML::Node doc = YAML::Load(text);
    Converter conv{file, env, diag, tree};
    tree.root = conv.convert(doc, "");
  } catch (const YAML::Exception& e) {
    diag.add("", "syntax error: " + e.msg + " (" + file + ":" + std::to_string(e.mark.line + 1) +
                     ":" + std::to_string(e.mark.column + 1) + ")");
  }
}

nlohmann::json redacted(const ConfigTree& tree) {
  json copy = tree.root;
  redact(copy, "", tree.secrets);
  return copy;
}

}  // namespace portico::config
