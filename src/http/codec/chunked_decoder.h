#pragma once
// Incremental, validating decoder for the chunked transfer coding (RFC 9112 7.1). It finds
// where a chunked body ends and checks every byte of its framing; the proxy forwards the raw
// bytes it accepted, so the next hop sees exactly the framing that was validated here.
#include <cstdint>
#include <string>
#include <string_view>

#include "http/header_list.h"
#include "http/token.h"

namespace portico::http {

class ChunkedDecoder {
 public:
  enum class Status { NeedMore, Done, Error };

  struct Step {
    Status status = Status::NeedMore;
    std::size_t consumed = 0;  // bytes of input that belong to the body (up to Done)
  };

  // Limits on the framing around the data, so hostile chunk extensions or trailers stay bounded.
  explicit ChunkedDecoder(std::size_t max_line_bytes = 4096, std::size_t max_trailer_bytes = 16384)
      : max_line_(max_line_bytes), max_trailer_(max_trailer_bytes) {}

  // Consumes framing and data from `in`. `on_data(std::string_view)` is called for each span of
  // payload data. Stops at the end of the body (Done) and never consumes past it.
  template <class OnData>
  Step feed(std::string_view in, OnData&& on_data);

  // Total payload bytes decoded so far.
  std::uint64_t payloadBytes() const { return payload_; }
  // Keep the trailer fields (for protocols that carry them on, like gRPC over HTTP/2);
  // otherwise they are only validated.
  void keepTrailers(bool keep) { keep_trailers_ = keep; }
  const HeaderList& trailers() const { return trailers_; }
  bool done() const { return state_ == State::Done; }
  const char* error() const { return error_; }
  void reset() {
    const bool keep = keep_trailers_;
    *this = ChunkedDecoder(max_line_, max_trailer_);
    keep_trailers_ = keep;
  }

 private:
  enum class State {
    Size,
    Ext,
    SizeLF,
    Data,
    DataCR,
    DataLF,
    TrailerStart,
    Trailer,
    TrailerLF,
    FinalLF,
    Done,
    Error
  };

  void keepTrailerLine() {
    std::string_view line = trailer_line_;
    auto colon = line.find(':');
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    const std::string_view name = line.substr(0, colon);
    const HeaderId id = classifyHeader(name);
    if (!allowedInTrailers(id)) return;
    trailers_.add(name, value, id);
  }

  Step fail(const char* why, std::size_t consumed) {
    state_ = State::Error;
    error_ = why;
    return Step{Status::Error, consumed};
  }

  std::size_t max_line_;
  std::size_t max_trailer_;
  State state_ = State::Size;
  std::uint64_t remaining_ = 0;
  std::uint64_t payload_ = 0;
  std::size_t line_bytes_ = 0;
  std::size_t trailer_bytes_ = 0;
  int size_digits_ = 0;
  bool trailer_line_has_colon_ = false;
  bool trailer_line_empty_ = true;
  bool keep_trailers_ = false;
  std::string trailer_line_;
  HeaderList trailers_;
  const char* error_ = "";
};

template <class OnData>
ChunkedDecoder::Step ChunkedDecoder::feed(std::string_view in, OnData&& on_data) {
  std::size_t i = 0;
  const std::size_t n = in.size();
  while (i < n) {
    const char c = in[i];
    switch (state_) {
      case State::Size: {
        int v = (c >= '0' && c <= '9')   ? c - '0'
                : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                         : -1;
        if (v >= 0) {
          if (++size_digits_ > 15) return fail("chunk size too large", i);
          remaining_ = remaining_ * 16 + static_cast<std::uint64_t>(v);
          ++i;
          break;
        }
        if (size_digits_ == 0) return fail("invalid chunk size", i);
        if (c == '\r') {
          state_ = State::SizeLF;
        } else if (c == ';' || c == ' ' || c == '\t') {
          state_ = State::Ext;
          line_bytes_ = 0;
        } else {
          return fail("invalid chunk size", i);
        }
        ++i;
        break;
      }
      case State::Ext: {
        if (c == '\r') {
          state_ = State::SizeLF;
        } else if (c == '\n' || (static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) {
          return fail("invalid chunk extension", i);
        } else if (++line_bytes_ > max_line_) {
          return fail("chunk extension too long", i);
        }
        ++i;
        break;
      }
      case State::SizeLF: {
        if (c != '\n') return fail("expected LF after chunk size", i);
        ++i;
        size_digits_ = 0;
        state_ = remaining_ == 0 ? State::TrailerStart : State::Data;
        break;
      }
      case State::Data: {
        std::size_t take = static_cast<std::size_t>(
            std::min<std::uint64_t>(remaining_, static_cast<std::uint64_t>(n - i)));
        on_data(in.substr(i, take));
        i += take;
        remaining_ -= take;
        payload_ += take;
        if (remaining_ == 0) state_ = State::DataCR;
        break;
      }
      case State::DataCR:
        if (c != '\r') return fail("expected CRLF after chunk data", i);
        ++i;
        state_ = State::DataLF;
        break;
      case State::DataLF:
        if (c != '\n') return fail("expected CRLF after chunk data", i);
        ++i;
        state_ = State::Size;
        break;
      case State::TrailerStart:
        // Either the final CRLF, or a trailer field line.
        if (c == '\r') {
          state_ = State::FinalLF;
          ++i;
          break;
        }
        trailer_line_has_colon_ = false;
        trailer_line_empty_ = true;
        trailer_line_.clear();
        state_ = State::Trailer;
        [[fallthrough]];
      case State::Trailer: {
        if (c == '\r') {
          if (!trailer_line_has_colon_) return fail("invalid trailer field", i);
          state_ = State::TrailerLF;
        } else if (trailer_line_empty_ && (c == ' ' || c == '\t')) {
          return fail("obsolete line folding in trailer", i);
        } else if (c == '\n' || (static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) {
          return fail("invalid character in trailer", i);
        } else if (!trailer_line_has_colon_ && c != ':' && !isTokenChar(c)) {
          return fail("invalid trailer field name", i);
        } else {
          if (c == ':') {
            if (trailer_line_empty_) return fail("invalid trailer field name", i);
            trailer_line_has_colon_ = true;
          }
          trailer_line_empty_ = false;
        }
        if (++trailer_bytes_ > max_trailer_) return fail("trailers too large", i);
        if (keep_trailers_ && c != '\r') trailer_line_ += c;
        ++i;
        break;
      }
      case State::TrailerLF:
        if (c != '\n') return fail("expected LF in trailer", i);
        ++i;
        if (keep_trailers_) keepTrailerLine();
        state_ = State::TrailerStart;
        break;
      case State::FinalLF:
        if (c != '\n') return fail("expected LF at end of chunked body", i);
        ++i;
        state_ = State::Done;
        return Step{Status::Done, i};
      case State::Done:
        return Step{Status::Done, i};
      case State::Error:
        return Step{Status::Error, i};
    }
  }
  if (state_ == State::Done) return Step{Status::Done, i};
  return Step{Status::NeedMore, i};
}

}  // namespace portico::http
