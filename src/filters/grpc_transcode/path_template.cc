#include "filters/grpc_transcode/path_template.h"

#include <optional>

#include "http/url.h"

namespace portico::filters::grpc_transcode {
namespace {

bool identChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

}  // namespace

Result<PathTemplate> PathTemplate::parse(std::string_view text) {
  PathTemplate t;
  t.text_ = std::string(text);
  auto fail = [&](const std::string& why) {
    return makeError("path template \"" + std::string(text) + "\": " + why);
  };
  if (text.empty() || text.front() != '/') return fail("must start with /");
  std::string_view rest = text.substr(1);
  // The verb: a ":" in the last segment, outside braces.
  int depth = 0;
  for (std::size_t i = 0; i < rest.size(); ++i) {
    if (rest[i] == '{') ++depth;
    if (rest[i] == '}') --depth;
    if (rest[i] == ':' && depth == 0 && rest.find('/', i) == std::string_view::npos) {
      t.verb_ = std::string(rest.substr(i + 1));
      rest = rest.substr(0, i);
      if (t.verb_.empty()) return fail("empty verb");
      break;
    }
  }
  auto addSegment = [&](std::string_view s) -> std::optional<std::string> {
    if (s.empty()) return "empty segment";
    if (!t.segments_.empty() && t.segments_.back().kind == Segment::Kind::Rest)
      return "** must be the last segment";
    Segment seg;
    if (s == "*") {
      seg.kind = Segment::Kind::One;
    } else if (s == "**") {
      seg.kind = Segment::Kind::Rest;
    } else {
      for (char c : s)
        if (c == '{' || c == '}' || c == '*' || c == '=')
          return "unexpected '" + std::string(1, c) + "'";
      seg.literal = std::string(s);
    }
    t.segments_.push_back(std::move(seg));
    return std::nullopt;
  };
  std::size_t i = 0;
  while (i <= rest.size()) {
    if (i < rest.size() && rest[i] == '{') {
      const std::size_t close = rest.find('}', i);
      if (close == std::string_view::npos) return fail("unclosed {");
      std::string_view inner = rest.substr(i + 1, close - i - 1);
      const std::size_t eq = inner.find('=');
      Variable v;
      v.field_path = std::string(inner.substr(0, eq));
      if (v.field_path.empty() || v.field_path.front() == '.' || v.field_path.back() == '.' ||
          v.field_path.find("..") != std::string::npos)
        return fail("bad field path \"" + v.field_path + "\"");
      for (char c : v.field_path)
        if (!identChar(c) && c != '.') return fail("bad field path \"" + v.field_path + "\"");
      v.first = t.segments_.size();
      if (eq == std::string_view::npos) {
        t.segments_.push_back({Segment::Kind::One, {}});
      } else {
        std::string_view sub = inner.substr(eq + 1);
        std::size_t from = 0;
        for (;;) {
          const std::size_t slash = sub.find('/', from);
          if (auto err = addSegment(sub.substr(from, slash - from))) return fail(*err);
          if (slash == std::string_view::npos) break;
          from = slash + 1;
        }
      }
      v.last = t.segments_.size();
      t.variables_.push_back(std::move(v));
      i = close + 1;
      if (i < rest.size() && rest[i] != '/') return fail("a variable must end its segment");
      if (i >= rest.size()) break;
      ++i;  // the '/'
      continue;
    }
    const std::size_t slash = rest.find('/', i);
    if (auto err = addSegment(rest.substr(i, slash - i))) return fail(*err);
    if (slash == std::string_view::npos) break;
    i = slash + 1;
  }
  return t;
}

bool PathTemplate::match(std::string_view path,
                         std::vector<std::pair<std::string, std::string>>& bindings) const {
  if (path.empty() || path.front() != '/') return false;
  path.remove_prefix(1);
  if (!verb_.empty()) {
    if (path.size() <= verb_.size() + 1 || path.substr(path.size() - verb_.size()) != verb_ ||
        path[path.size() - verb_.size() - 1] != ':')
      return false;
    path.remove_suffix(verb_.size() + 1);
  }
  std::vector<std::string_view> parts;
  for (std::size_t from = 0;;) {
    const std::size_t slash = path.find('/', from);
    parts.push_back(path.substr(from, slash - from));
    if (slash == std::string_view::npos) break;
    from = slash + 1;
  }
  if (parts.size() == 1 && parts[0].empty()) parts.clear();  // "/"
  std::size_t consumed = 0;
  std::vector<std::size_t> ends(segments_.size() + 1, 0);  // parts consumed before segment i
  for (std::size_t i = 0; i < segments_.size(); ++i) {
    ends[i] = consumed;
    const Segment& s = segments_[i];
    if (s.kind == Segment::Kind::Rest) {
      consumed = parts.size();
      continue;
    }
    if (consumed >= parts.size() || parts[consumed].empty()) return false;
    if (s.kind == Segment::Kind::Literal && parts[consumed] != s.literal) return false;
    ++consumed;
  }
  ends[segments_.size()] = consumed;
  if (consumed != parts.size()) return false;
  bindings.clear();
  for (const Variable& v : variables_) {
    std::string value;
    for (std::size_t p = ends[v.first]; p < ends[v.last]; ++p) {
      if (p > ends[v.first]) value += '/';
      value += http::decodePathComponent(parts[p]);
    }
    bindings.emplace_back(v.field_path, std::move(value));
  }
  return true;
}

std::vector<std::string> PathTemplate::fieldPaths() const {
  std::vector<std::string> out;
  for (const auto& v : variables_) out.push_back(v.field_path);
  return out;
}

}  // namespace portico::filters::grpc_transcode
