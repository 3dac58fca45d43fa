#include "filters/body_rewrite/replacer.h"

#include <algorithm>

namespace portico::filters {

void Replacer::feed(std::string_view in, bool end, std::string& out) {
  if (longest_ == 0) {  // nothing to replace: pass through
    out.append(in);
    return;
  }
  std::string joined;
  std::string_view buf = in;
  if (!carry_.empty()) {
    joined = std::move(carry_);
    joined.append(in);
    buf = joined;
  }
  carry_.clear();
  // Unless this is the end, a match starting in the last (longest - 1) bytes may be the start
  // of a longer one that the next piece completes: those wait, and so does what follows them.
  const std::size_t hold_start = end ? buf.size() : buf.size() - std::min(buf.size(), longest_ - 1);
  std::size_t pos = 0;
  for (;;) {
    // The earliest match of any rule; at the same place, the longest.
    std::size_t best = std::string_view::npos;
    const std::pair<std::string, std::string>* rule = nullptr;
    for (const auto& r : rules_) {
      if (r.first.empty()) continue;
      const std::size_t at = buf.find(r.first, pos);
      if (at < best ||
          (at == best && at != std::string_view::npos && r.first.size() > rule->first.size())) {
        best = at;
        rule = &r;
      }
    }
    if (best == std::string_view::npos || best >= hold_start) break;
    out.append(buf.substr(pos, best - pos));
    out.append(rule->second);
    pos = best + rule->first.size();
  }
  const std::size_t safe = std::max(pos, hold_start);
  out.append(buf.substr(pos, safe - pos));
  if (!end) carry_.assign(buf.substr(safe));
}

}  // namespace portico::filters
