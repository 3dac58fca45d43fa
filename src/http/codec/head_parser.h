#pragma once
// Strict HTTP/1.1 head parsing (RFC 9112), with no I/O: give it the bytes received so far.
// It either finds a complete head, asks for more, or names the status to answer with.
// Whatever it accepts can be forwarded as exactly one well-formed message: obs-fold, bare LF,
// whitespace before a colon, conflicting framing and unknown codings are all refused.
#include <cstdint>
#include <string_view>

#include "http/codec/message_head.h"

namespace portico::http {

struct HeadLimits {
  std::uint64_t max_header_bytes = 64 * 1024;  // the whole head, request line included
  std::uint32_t max_headers = 100;
  std::uint64_t max_uri_bytes = 8 * 1024;
};

enum class ParseStatus { Complete, Incomplete, Error };

struct ParseResult {
  ParseStatus status = ParseStatus::Incomplete;
  std::size_t consumed = 0;  // bytes of the head, when Complete
  int error_status = 0;      // 400, 414, 431, 501, 505 ... when Error
  const char* error = "";    // short reason, when Error
};

ParseResult parseRequestHead(std::string_view data, const HeadLimits& limits, RequestHead& out);

// `request_method_head`: the response to a HEAD request has no body whatever it announces.
ParseResult parseResponseHead(std::string_view data, const HeadLimits& limits,
                              bool request_method_head, ResponseHead& out);

}  // namespace portico::http
