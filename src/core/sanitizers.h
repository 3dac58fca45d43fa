#pragma once
// PORTICO_ASAN is defined when AddressSanitizer instruments this build (GCC and Clang spell it
// differently): code that reads past an object's end on purpose, or caches freed memory, turns
// that off so the sanitizer sees every access.
#if defined(__SANITIZE_ADDRESS__)
#define PORTICO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PORTICO_ASAN 1
#endif
#endif
