#pragma once
// Streaming encoders and decoders of the content codings Portico speaks: gzip (zlib), br
// (brotli) and zstd. Each works piece by piece with bounded memory: an encoder can flush what
// it has at the end of every piece it is given (so a streamed answer is never held back), a
// decoder refuses to produce more than its limit (a decompression bomb stops there).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace portico::filters::compression {

enum class Coding { Gzip, Brotli, Zstd };

// "gzip", "br", "zstd" (case-insensitive; "x-gzip" is gzip); nullopt for anything else.
std::optional<Coding> parseCoding(std::string_view token);
std::string_view codingName(Coding c);

class Encoder {
 public:
  virtual ~Encoder() = default;
  // Compresses `in`, appends what is ready to `out`: with `flush_piece`, everything given so
  // far (a streamed answer is never held back); without, what the coding has completed (fewer,
  // larger blocks: for bodies whose whole length is known). The stream's end when `end`. False
  // on a library error.
  virtual bool encode(std::string_view in, bool end, std::string& out, bool flush_piece = true) = 0;
  // The exact length of what will be given, when known before the first encode(): the coding
  // may size its state to it (zstd, br).
  virtual void expectLength(std::uint64_t) {}
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  enum class Status { Ok, Corrupt, TooLarge };
  // Decompresses `in` and appends to `out`; TooLarge once the output would pass the limit,
  // Corrupt on bad data or on a stream that is cut short at `end`.
  virtual Status decode(std::string_view in, bool end, std::string& out) = 0;
};

// `level`: the coding's own scale (gzip 1–9, br 0–11, zstd 1–19).
std::unique_ptr<Encoder> makeEncoder(Coding c, int level);
std::unique_ptr<Decoder> makeDecoder(Coding c, std::uint64_t max_output);

// The levels each coding accepts, for config checks.
int minLevel(Coding c);
int maxLevel(Coding c);

}  // namespace portico::filters::compression
