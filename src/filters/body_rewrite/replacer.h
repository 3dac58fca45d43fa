#pragma once
// Literal string replacement over a body that arrives in pieces: a match split between two
// pieces is found, since the last (longest pattern - 1) bytes wait for the next piece.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace portico::filters {

using Replacements = std::vector<std::pair<std::string, std::string>>;  // from, to

class Replacer {
 public:
  explicit Replacer(const Replacements& rules) : rules_(rules) {
    for (const auto& [from, to] : rules_) longest_ = std::max(longest_, from.size());
  }
  // Appends the replaced text of `in` to `out`, holding back what may start a match unless
  // this is the end.
  void feed(std::string_view in, bool end, std::string& out);

 private:
  const Replacements& rules_;
  std::size_t longest_ = 0;
  std::string carry_;
};

}  // namespace portico::filters
