#pragma once
// simdjson's DOM parser as filters use it on bodies (ADR 0008): one per worker thread, its
// buffers reused from body to body; a body larger than kKeptParserCapacity gets a parser of its
// own, freed with it, so one huge body does not pin that much memory per worker for good.
// Include from .cc files only: simdjson.h is 1.2 MB.
#include <cstddef>
#include <optional>

#include <simdjson.h>

namespace portico::filters {

inline constexpr std::size_t kKeptParserCapacity = 4 * 1024 * 1024;

// The parser for a body of `size` bytes: the worker's, or `own` (made here) for a larger one.
// What it parses lives until it parses again: never held from one body to the next.
inline simdjson::dom::parser& bodyParser(std::size_t size,
                                         std::optional<simdjson::dom::parser>& own) {
  thread_local simdjson::dom::parser worker;
  return size <= kKeptParserCapacity ? worker : own.emplace();
}

}  // namespace portico::filters
