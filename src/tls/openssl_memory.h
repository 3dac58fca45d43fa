#pragma once
// OpenSSL's record buffers from the per-thread block cache (core/thread_block_cache.h). With
// SSL_MODE_RELEASE_BUFFERS (proxy/tls_stream.cc) a TLS connection frees its 16 KiB read and
// write buffers whenever they are empty and takes them again for the next record: two large
// mallocs and frees per HTTPS request, which glibc serves from its bins (~0.3 µs per request
// in `perf`, docs/performance.md session 25). The cache hands the same blocks back instead,
// and an idle connection still holds neither. Every other allocation of OpenSSL stays plain
// malloc (no header, no rounding up: its start-up allocations are most of idle RSS's heap).
#include <cstddef>

namespace portico::tls {

// Must run before OpenSSL allocates anything (first thing in main); false when it was too late
// (OpenSSL then keeps malloc, which is only slower).
bool useCachedMemory();

namespace detail {
// The hooks, exposed for their unit test.
void* allocate(std::size_t size);
void* reallocate(void* p, std::size_t size);
void release(void* p);
}  // namespace detail

}  // namespace portico::tls
