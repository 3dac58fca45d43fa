#include "upstream/lb/consistent_hash.h"

#include <algorithm>

namespace portico::upstream {
namespace {

class Ring final : public ConsistentHash {
 public:
  Ring(const std::vector<Member>& members, std::uint32_t vnodes) : count_(members.size()) {
    for (std::size_t i = 0; i < members.size(); ++i) {
      std::uint32_t n = vnodes * std::max<std::uint32_t>(1, members[i].weight);
      for (std::uint32_t v = 0; v < n; ++v) {
        std::string k = members[i].key + "#" + std::to_string(v);
        points_.push_back({hash64(k), static_cast<int>(i)});
      }
    }
    std::sort(points_.begin(), points_.end());
  }

  int lookup(std::uint64_t hash, const Excluded& excluded) const override {
    if (points_.empty()) return -1;
    auto it = std::lower_bound(points_.begin(), points_.end(), Point{hash, -1});
    std::size_t start = static_cast<std::size_t>(it - points_.begin()) % points_.size();
    // Walk clockwise to the first target not excluded.
    for (std::size_t step = 0; step < points_.size(); ++step) {
      const auto& p = points_[(start + step) % points_.size()];
      if (!isExcluded(excluded, static_cast<std::size_t>(p.target))) return p.target;
    }
    return -1;
  }

 private:
  struct Point {
    std::uint64_t hash;
    int target;
    bool operator<(const Point& o) const {
      return hash != o.hash ? hash < o.hash : target < o.target;
    }
  };
  std::size_t count_;
  std::vector<Point> points_;
};

class Maglev final : public ConsistentHash {
 public:
  Maglev(const std::vector<Member>& members, std::uint32_t m) : table_(m, -1) {
    const std::size_t n = members.size();
    if (n == 0) return;
    std::vector<std::uint64_t> offset(n), skip(n), next(n, 0);
    std::uint32_t max_weight = 1;
    for (const auto& mem : members) max_weight = std::max(max_weight, mem.weight);
    for (std::size_t i = 0; i < n; ++i) {
      offset[i] = hash64(members[i].key + "#offset") % m;
      skip[i] = hash64(members[i].key + "#skip") % (m - 1) + 1;
    }
    // Weighted population (Maglev paper, section 3.4 variant): a member takes a turn only when
    // its accumulated weight reaches the maximum.
    std::vector<std::uint64_t> credit(n, 0);
    std::uint32_t filled = 0;
    while (filled < m) {
      for (std::size_t i = 0; i < n && filled < m; ++i) {
        credit[i] += std::max<std::uint32_t>(1, members[i].weight);
        if (credit[i] < max_weight) continue;
        credit[i] -= max_weight;
        std::uint64_t c = (offset[i] + next[i] * skip[i]) % m;
        while (table_[c] >= 0) {
          ++next[i];
          c = (offset[i] + next[i] * skip[i]) % m;
        }
        table_[c] = static_cast<int>(i);
        ++next[i];
        ++filled;
      }
    }
  }

  int lookup(std::uint64_t hash, const Excluded& excluded) const override {
    if (table_.empty() || table_[0] < 0) return -1;
    std::uint64_t h = hash;
    for (int attempt = 0; attempt < 64; ++attempt) {
      int t = table_[h % table_.size()];
      if (!isExcluded(excluded, static_cast<std::size_t>(t))) return t;
      h = hash64(&h, sizeof h);  // rehash to find another member
    }
    for (std::size_t i = 0; i < table_.size(); ++i) {
      int t = table_[(hash + i) % table_.size()];
      if (!isExcluded(excluded, static_cast<std::size_t>(t))) return t;
    }
    return -1;
  }

 private:
  std::vector<int> table_;
};

}  // namespace

std::shared_ptr<const ConsistentHash> makeRing(const std::vector<ConsistentHash::Member>& members,
                                               std::uint32_t vnodes_per_weight) {
  return std::make_shared<Ring>(members, vnodes_per_weight);
}

std::shared_ptr<const ConsistentHash> makeMaglev(const std::vector<ConsistentHash::Member>& members,
                                                 std::uint32_t table_size) {
  return std::make_shared<Maglev>(members, table_size);
}

}  // namespace portico::upstream
