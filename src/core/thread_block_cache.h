#pragma once
// A per-thread cache of freed heap blocks by size class (64 B to 4 KiB, powers of two), for the
// allocators of the request path whose blocks come and go in bursts: coroutine frames
// (core/frame_pool.h) and nghttp2's (http2/session_memory.h). A block taken on one thread may
// be given back on another: every block is plain malloc memory of its class's size.
#include <cstddef>
#include <cstdint>

namespace portico::block_cache {

constexpr std::uint32_t kNoClass = ~0u;

// The smallest class holding `bytes`, or kNoClass above 4 KiB.
std::uint32_t classOf(std::size_t bytes);
std::size_t classSize(std::uint32_t size_class);

// A cached block of the class, else a new one from malloc (nullptr when that fails).
void* take(std::uint32_t size_class);
// Keeps the block for this thread's next take() of its class, or frees it when the thread
// keeps 2 MiB already or its cache is gone (a late free during thread exit).
void give(std::uint32_t size_class, void* block);

}  // namespace portico::block_cache
