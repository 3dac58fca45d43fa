#pragma once
// Parsed request and response heads. Sans-I/O: filled by head_parser from bytes.
#include <array>
#include <cstdint>
#include <string>

#include "http/header_list.h"

namespace portico::http {

// How the body of a message is delimited on the wire.
enum class BodyFraming { None, ContentLength, Chunked, UntilClose };

struct RequestHead {
  std::string method;
  std::string target;  // as sent (origin-form after normalising an absolute-form)
  std::string path;    // target up to '?'
  std::string query;   // after '?', without it
  std::string host;    // Host header, lower-cased, port kept
  int version_minor = 1;
  HeaderList headers;
  BodyFraming framing = BodyFraming::None;
  std::uint64_t content_length = 0;
  bool keep_alive = true;
  bool expect_continue = false;
  // "Connection: upgrade" with an Upgrade header (WebSocket): the value of Upgrade.
  std::string upgrade;

  void clear();
};

struct ResponseHead {
  int status = 0;
  std::string reason;
  int version_minor = 1;
  HeaderList headers;
  BodyFraming framing = BodyFraming::None;
  std::uint64_t content_length = 0;
  bool keep_alive = true;

  void clear();
};

// The three digits of a status code (100..999), as a status line and :status carry them.
inline std::array<char, 3> statusDigits(int status) {
  return {static_cast<char>('0' + status / 100 % 10), static_cast<char>('0' + status / 10 % 10),
          static_cast<char>('0' + status % 10)};
}

}  // namespace portico::http
