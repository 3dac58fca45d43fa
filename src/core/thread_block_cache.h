#pragma once
// A per-thread cache of freed heap blocks by size class (64 B to 4 KiB: powers of two and the
// sizes half-way between the larger ones; and 16–17 KiB, OpenSSL's record buffers), for the
// allocators of the request path whose blocks come and go in bursts: coroutine frames
// (core/frame_pool.h), nghttp2's (http2/session_memory.h), OpenSSL's record buffers
// (tls/openssl_memory.h) and the filters made per request (api/filter.h). A block taken on one
// thread may be given back on another: every block is plain malloc memory of its class's size.
#include <cstddef>
#include <cstdint>
#include <new>

namespace portico::block_cache {

constexpr std::uint32_t kNoClass = ~0u;
// The class for TLS record buffers holds blocks larger than kRecordFloor, up to kRecordBlock
// (nothing between 4 KiB and kRecordFloor has a class).
constexpr std::size_t kRecordFloor = 16 * 1024;
constexpr std::size_t kRecordBlock = 17 * 1024;

// The smallest class holding `bytes`, or kNoClass above 4 KiB (but for 16–17 KiB).
std::uint32_t classOf(std::size_t bytes);
std::size_t classSize(std::uint32_t size_class);

// A cached block of the class, else a new one from malloc (nullptr when that fails).
void* take(std::uint32_t size_class);
// Keeps the block for this thread's next take() of its class, or frees it when the thread
// keeps 2 MiB already or its cache is gone (a late free during thread exit).
void give(std::uint32_t size_class, void* block);

// What the allocators above use: sized blocks, from the cache where a class holds them and
// from malloc otherwise. Under AddressSanitizer every block comes from malloc and goes back at
// once, so that a use after free stays visible (take() and give() themselves still cache).
//
// The bytes a block for `bytes` really holds (its class's size when cached).
std::size_t blockSize(std::size_t bytes);
// nullptr when malloc fails.
void* allocate(std::size_t bytes);
// `bytes` as given to allocate() (or anything with the same blockSize()).
void deallocate(void* block, std::size_t bytes);

// A base for objects made per request and deleted through a base with a virtual destructor
// (filters, body transforms): `new` and `delete` go through allocate() and deallocate(); the
// deleting destructor passes the most derived type's size.
struct CacheAllocated {
  static void* operator new(std::size_t bytes) {
    void* p = allocate(bytes);
    if (!p) throw std::bad_alloc();
    return p;
  }
  static void operator delete(void* p, std::size_t bytes) noexcept { deallocate(p, bytes); }
};

}  // namespace portico::block_cache
