#pragma once
// nghttp2's memory, through a per-thread cache of freed blocks by size class: a session
// allocates its stream, each response's header copy and its outbound items per request, and
// frees them soon after; with many streams in flight those missed glibc's small per-size cache.
// Sessions live on one worker thread; a block freed on another thread simply joins that
// thread's cache (the blocks are malloc's). Under AddressSanitizer the cache hands out plain
// malloc blocks (core/thread_block_cache.h), so use-after-free inside a session stays visible.
#include <nghttp2/nghttp2.h>

namespace portico::http2::detail {

// For nghttp2_session_{client,server}_new3.
nghttp2_mem* sessionMemory();

}  // namespace portico::http2::detail
