#pragma once
// google.api.http path templates: "/v1/shelves/{shelf}/books/{book.id}",
// "/v1/{name=shelves/*/books/*}", "/v1/files/**", "/v1/things/{id}:cancel".
//
//   Template = "/" Segments [ ":" Verb ] ;  Segment = "*" | "**" | LITERAL | Variable ;
//   Variable = "{" FieldPath [ "=" Segments ] "}" ;  FieldPath = IDENT { "." IDENT } ;
//
// "**" (any number of segments, at least none) may only end a template.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"

namespace portico::filters::grpc_transcode {

class PathTemplate {
 public:
  static Result<PathTemplate> parse(std::string_view text);

  // Whether `path` (no query) matches; `bindings` gets each variable's field path and its
  // percent-decoded value.
  bool match(std::string_view path,
             std::vector<std::pair<std::string, std::string>>& bindings) const;

  const std::string& text() const { return text_; }
  // Field paths bound by the template (for checking them against the request message).
  std::vector<std::string> fieldPaths() const;

 private:
  struct Segment {
    enum class Kind { Literal, One, Rest };
    Kind kind = Kind::Literal;
    std::string literal;
  };
  struct Variable {
    std::string field_path;
    std::size_t first = 0, last = 0;  // the segments it covers: [first, last)
  };
  std::string text_;
  std::vector<Segment> segments_;
  std::vector<Variable> variables_;
  std::string verb_;
};

}  // namespace portico::filters::grpc_transcode
