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
    if (best == std::string_view::npos) break;
    out.append(buf.substr(pos, best - pos));
    out.append(rule->second);
    pos = best + rule->first.size();
  }
  // A match cannot start before `safe` and end in a later piece.
  const std::size_t hold = end ? 0 : std::min(buf.size() - pos, longest_ - 1);
  const std::size_t safe = buf.size() - hold;
  out.append(buf.substr(pos, safe - pos));
  if (!end) carry_.assign(buf.substr(safe));
}

}  // namespace portico::filters
