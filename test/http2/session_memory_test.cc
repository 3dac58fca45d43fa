#include "http2/session_memory.h"

#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <cstring>

#include "core/sanitizers.h"

namespace portico::http2::detail {
namespace {

#if !defined(PORTICO_ASAN)  // the cache hands out plain malloc blocks there

TEST(SessionMemory, FreedBlocksAreReusedOnTheThread) {
  nghttp2_mem* m = sessionMemory();
  ASSERT_NE(m, nullptr);
  void* a = m->malloc(100, m->mem_user_data);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a) % 16, 0u);  // aligned as malloc's
  std::memset(a, 0xab, 100);
  m->free(a, m->mem_user_data);
  void* b = m->malloc(90, m->mem_user_data);  // same size class: the block comes back
  EXPECT_EQ(a, b);
  m->free(b, m->mem_user_data);
  m->free(nullptr, m->mem_user_data);
}

TEST(SessionMemory, CallocZeroesAndReallocKeepsTheBytes) {
  nghttp2_mem* m = sessionMemory();
  auto* z = static_cast<unsigned char*>(m->calloc(10, 30, m->mem_user_data));
  ASSERT_NE(z, nullptr);
  for (int i = 0; i < 300; ++i) ASSERT_EQ(z[i], 0) << i;
  for (int i = 0; i < 300; ++i) z[i] = static_cast<unsigned char>(i);
  auto* same = static_cast<unsigned char*>(m->realloc(z, 400, m->mem_user_data));
  EXPECT_EQ(same, z);  // still fits its 512-byte block
  auto* grown = static_cast<unsigned char*>(m->realloc(same, 100000, m->mem_user_data));
  ASSERT_NE(grown, nullptr);
  for (int i = 0; i < 300; ++i) ASSERT_EQ(grown[i], static_cast<unsigned char>(i)) << i;
  std::memset(grown, 1, 100000);  // large blocks are the caller's whole
  m->free(grown, m->mem_user_data);
  void* fresh = m->realloc(nullptr, 64, m->mem_user_data);
  ASSERT_NE(fresh, nullptr);
  m->free(fresh, m->mem_user_data);
  EXPECT_EQ(m->calloc(SIZE_MAX / 2, 4, m->mem_user_data), nullptr);  // overflow refused
}

#endif

// A whole session on it: a request and its response through real nghttp2 sessions.
TEST(SessionMemory, SessionsRunOnIt) {
  nghttp2_session_callbacks* cbs = nullptr;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session* client = nullptr;
  nghttp2_session* server = nullptr;
  ASSERT_EQ(nghttp2_session_client_new3(&client, cbs, nullptr, nullptr, sessionMemory()), 0);
  ASSERT_EQ(nghttp2_session_server_new3(&server, cbs, nullptr, nullptr, sessionMemory()), 0);
  nghttp2_submit_settings(client, NGHTTP2_FLAG_NONE, nullptr, 0);
  const nghttp2_nv nva[] = {
      {(uint8_t*)":method", (uint8_t*)"GET", 7, 3, NGHTTP2_NV_FLAG_NONE},
      {(uint8_t*)":scheme", (uint8_t*)"http", 7, 4, NGHTTP2_NV_FLAG_NONE},
      {(uint8_t*)":authority", (uint8_t*)"t", 10, 1, NGHTTP2_NV_FLAG_NONE},
      {(uint8_t*)":path", (uint8_t*)"/", 5, 1, NGHTTP2_NV_FLAG_NONE},
  };
  for (int i = 0; i < 50; ++i)
    ASSERT_GT(nghttp2_submit_request(client, nullptr, nva, 4, nullptr, nullptr), 0);
  const uint8_t* data = nullptr;
  ssize_t n = nghttp2_session_mem_send(client, &data);
  ASSERT_GT(n, 0);
  EXPECT_EQ(nghttp2_session_mem_recv(server, data, static_cast<size_t>(n)), n);
  nghttp2_session_del(server);
  nghttp2_session_del(client);
  nghttp2_session_callbacks_del(cbs);
}

}  // namespace
}  // namespace portico::http2::detail
