#pragma once
// Consistent hashing over weighted targets: a ring of virtual nodes (ketama-style) or a Maglev
// lookup table. Adding or removing one of N targets moves about 1/N of the keys.
#include <cstdint>
#include <string>
#include <vector>

#include "upstream/lb/load_balancer.h"

namespace portico::upstream {

class ConsistentHash {
 public:
  struct Member {
    std::string key;  // stable identity, e.g. the configured address
    std::uint32_t weight = 1;
  };
  virtual ~ConsistentHash() = default;
  // Target index for `hash`, skipping excluded ones; -1 when all are excluded.
  virtual int lookup(std::uint64_t hash, const Excluded& excluded) const = 0;
};

std::shared_ptr<const ConsistentHash> makeRing(const std::vector<ConsistentHash::Member>& members,
                                               std::uint32_t vnodes_per_weight = 160);
std::shared_ptr<const ConsistentHash> makeMaglev(const std::vector<ConsistentHash::Member>& members,
                                                 std::uint32_t table_size = 65537);

}  // namespace portico::upstream
