#include "core/thread_block_cache.h"

#include <array>
#include <cstdlib>

namespace portico::block_cache {
namespace {

constexpr std::array<std::size_t, 7> kClassSizes = {64, 128, 256, 512, 1024, 2048, 4096};
// Freed blocks kept per class and thread: a worker with 64 connections in flight holds about
// 6 frames per request (docs/performance.md); at most 1 MiB per thread if every class is full.
constexpr std::size_t kKeepPerClass = 128;

struct ThreadCache {
  std::array<std::array<void*, kKeepPerClass>, kClassSizes.size()> blocks{};
  std::array<std::size_t, kClassSizes.size()> count{};
  bool alive = true;  // false once the thread's cache is destroyed (late frees go to free())
  ~ThreadCache() {
    alive = false;
    for (std::size_t c = 0; c < count.size(); ++c)
      for (std::size_t i = 0; i < count[c]; ++i) std::free(blocks[c][i]);
  }
};

thread_local ThreadCache t_cache;

}  // namespace

std::uint32_t classOf(std::size_t bytes) {
  for (std::uint32_t c = 0; c < kClassSizes.size(); ++c)
    if (bytes <= kClassSizes[c]) return c;
  return kNoClass;
}

std::size_t classSize(std::uint32_t size_class) {
  return kClassSizes[size_class];
}

void* take(std::uint32_t size_class) {
  if (t_cache.alive && t_cache.count[size_class] > 0)
    return t_cache.blocks[size_class][--t_cache.count[size_class]];
  return std::malloc(kClassSizes[size_class]);
}

void give(std::uint32_t size_class, void* block) {
  if (t_cache.alive && t_cache.count[size_class] < kKeepPerClass) {
    t_cache.blocks[size_class][t_cache.count[size_class]++] = block;
    return;
  }
  std::free(block);
}

}  // namespace portico::block_cache
