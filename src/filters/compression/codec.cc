#include "filters/compression/codec.h"

#include <brotli/decode.h>
#include <brotli/encode.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <vector>

#include "http/header_list.h"

namespace portico::filters::compression {
namespace {

constexpr std::size_t kChunk = 16 * 1024;

// Appends up to kChunk bytes of room to `out`; returns where they start.
char* grow(std::string& out, std::size_t& room_start) {
  room_start = out.size();
  out.resize(room_start + kChunk);
  return out.data() + room_start;
}

// Library contexts a worker thread keeps for its next bodies: making one costs more than
// compressing a small body (zstd's tables, zlib's window, fresh pages for both), so they are
// reset and reused. A worker serving many connections at once has as many in use; those given
// back are kept up to kKeptBytes (by the library's own size), the rest freed.
template <class T, void (*Free)(T*), std::size_t (*SizeOf)(const T*)>
class ContextPool {
 public:
  static constexpr std::size_t kKeptBytes = 16 * 1024 * 1024;
  ContextPool() = default;
  ContextPool(const ContextPool&) = delete;
  ContextPool& operator=(const ContextPool&) = delete;
  ~ContextPool() {
    for (T* t : free_) Free(t);
  }
  T* take() {
    if (free_.empty()) return nullptr;
    T* t = free_.back();
    free_.pop_back();
    bytes_ -= SizeOf(t);
    return t;
  }
  void give(T* t) {
    const std::size_t size = SizeOf(t);
    if (bytes_ + size <= kKeptBytes) {
      free_.push_back(t);
      bytes_ += size;
    } else {
      Free(t);
    }
  }

 private:
  std::vector<T*> free_;
  std::size_t bytes_ = 0;
};

void freeDeflate(z_stream* z) {
  deflateEnd(z);
  delete z;
}
// zlib has no size query: its state for windowBits 15, memLevel 8 is about 256 KiB of window
// and hash plus 64 KiB of pending buffer.
std::size_t sizeOfDeflate(const z_stream*) {
  return 320 * 1024;
}
void freeZstd(ZSTD_CCtx* c) {
  ZSTD_freeCCtx(c);
}
std::size_t sizeOfZstd(const ZSTD_CCtx* c) {
  return ZSTD_sizeof_CCtx(c);
}

ContextPool<z_stream, freeDeflate, sizeOfDeflate>& deflatePool() {
  thread_local ContextPool<z_stream, freeDeflate, sizeOfDeflate> pool;
  return pool;
}
ContextPool<ZSTD_CCtx, freeZstd, sizeOfZstd>& zstdPool() {
  thread_local ContextPool<ZSTD_CCtx, freeZstd, sizeOfZstd> pool;
  return pool;
}

class GzipEncoder final : public Encoder {
 public:
  explicit GzipEncoder(int level) {
    if (z_stream* z = deflatePool().take()) {
      ok_ = deflateReset(z) == Z_OK && deflateParams(z, level, Z_DEFAULT_STRATEGY) == Z_OK;
      z_ = z;
    } else {
      z_ = new z_stream{};
      ok_ = deflateInit2(z_, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK;
    }
  }
  ~GzipEncoder() override {
    if (!z_) return;
    if (ok_)
      deflatePool().give(z_);
    else
      delete z_;  // deflateInit2 failed: nothing to end (or reset failed: dropped)
  }
  bool encode(std::string_view in, bool end, std::string& out, bool flush_piece) override {
    if (!ok_ || finished_) return ok_;
    if (in.empty() && !end) return true;  // nothing new: no empty flush block
    z_->next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z_->avail_in = static_cast<uInt>(in.size());
    const int flush = end ? Z_FINISH : flush_piece ? Z_SYNC_FLUSH : Z_NO_FLUSH;
    for (;;) {
      std::size_t start = 0;
      z_->next_out = reinterpret_cast<Bytef*>(grow(out, start));
      z_->avail_out = kChunk;
      const int rc = deflate(z_, flush);
      out.resize(start + kChunk - z_->avail_out);
      if (rc == Z_STREAM_END) {
        // Back to the pool as soon as the stream ends, not when the request is done with: a
        // worker with many connections would otherwise hold a context per connection.
        deflatePool().give(z_);
        z_ = nullptr;
        finished_ = true;
        return true;
      }
      if (rc != Z_OK && rc != Z_BUF_ERROR) return fail();
      if (z_->avail_out != 0 && z_->avail_in == 0 && (!end || rc == Z_BUF_ERROR))
        return !end;  // all taken (flushed if asked); at the end, only Z_STREAM_END is success
    }
  }

 private:
  bool fail() {
    deflateEnd(z_);  // not given back: its state is unknown
    ok_ = false;
    return false;
  }

  z_stream* z_ = nullptr;
  bool ok_ = false;
  bool finished_ = false;
};

class BrotliEncoder final : public Encoder {
 public:
  explicit BrotliEncoder(int level) : s_(BrotliEncoderCreateInstance(nullptr, nullptr, nullptr)) {
    if (s_) BrotliEncoderSetParameter(s_, BROTLI_PARAM_QUALITY, static_cast<std::uint32_t>(level));
  }
  ~BrotliEncoder() override {
    if (s_) BrotliEncoderDestroyInstance(s_);
  }
  void expectLength(std::uint64_t length) override {
    if (s_ && length > 0)
      BrotliEncoderSetParameter(
          s_, BROTLI_PARAM_SIZE_HINT,
          static_cast<std::uint32_t>(std::min<std::uint64_t>(length, 1u << 30)));
  }
  bool encode(std::string_view in, bool end, std::string& out, bool flush_piece) override {
    if (!s_) return false;
    if (in.empty() && !end) return true;
    std::size_t avail_in = in.size();
    const auto* next_in = reinterpret_cast<const std::uint8_t*>(in.data());
    const auto op = end           ? BROTLI_OPERATION_FINISH
                    : flush_piece ? BROTLI_OPERATION_FLUSH
                                  : BROTLI_OPERATION_PROCESS;
    for (;;) {
      std::size_t start = 0;
      auto* next_out = reinterpret_cast<std::uint8_t*>(grow(out, start));
      std::size_t avail_out = kChunk;
      if (!BrotliEncoderCompressStream(s_, op, &avail_in, &next_in, &avail_out, &next_out, nullptr))
        return false;
      out.resize(start + kChunk - avail_out);
      if (avail_in == 0 && !BrotliEncoderHasMoreOutput(s_) && (!end || BrotliEncoderIsFinished(s_)))
        return true;
    }
  }

 private:
  BrotliEncoderState* s_;
};

class ZstdEncoder final : public Encoder {
 public:
  explicit ZstdEncoder(int level) : c_(zstdPool().take()) {
    if (!c_) c_ = ZSTD_createCCtx();
    if (c_) ZSTD_CCtx_setParameter(c_, ZSTD_c_compressionLevel, level);
  }
  ~ZstdEncoder() override { release(); }
  // The exact length: zstd then sizes its window and tables to the body (and checks it).
  void expectLength(std::uint64_t length) override {
    if (c_) ZSTD_CCtx_setPledgedSrcSize(c_, length);
  }
  bool encode(std::string_view in, bool end, std::string& out, bool flush_piece) override {
    if (!c_) return finished_;
    if (in.empty() && !end) return true;
    ZSTD_inBuffer input{in.data(), in.size(), 0};
    const auto mode = end ? ZSTD_e_end : flush_piece ? ZSTD_e_flush : ZSTD_e_continue;
    for (;;) {
      std::size_t start = 0;
      ZSTD_outBuffer output{grow(out, start), kChunk, 0};
      const std::size_t left = ZSTD_compressStream2(c_, &output, &input, mode);
      out.resize(start + output.pos);
      if (ZSTD_isError(left)) return false;
      // Done when all input is taken and, when flushing or ending, nothing is left inside;
      // without a flush, when the output was not full (the rest waits in zstd's block).
      if (input.pos == input.size &&
          (mode == ZSTD_e_continue ? output.pos < output.size : left == 0)) {
        if (end) {
          release();  // as gzip: the context is free for the next body at once
          finished_ = true;
        }
        return true;
      }
    }
  }

 private:
  void release() {
    if (!c_) return;
    ZSTD_CCtx_reset(c_, ZSTD_reset_session_and_parameters);
    zstdPool().give(c_);
    c_ = nullptr;
  }

  ZSTD_CCtx* c_;
  bool finished_ = false;
};

// What every decoder shares: the output limit.
class LimitedDecoder : public Decoder {
 protected:
  explicit LimitedDecoder(std::uint64_t max_output) : max_output_(max_output) {}
  // Accounts `n` more bytes of output; false once past the limit.
  bool produced(std::size_t n) {
    total_ += n;
    return total_ <= max_output_;
  }

 private:
  std::uint64_t max_output_;
  std::uint64_t total_ = 0;
};

class GzipDecoder final : public LimitedDecoder {
 public:
  explicit GzipDecoder(std::uint64_t max_output) : LimitedDecoder(max_output) {
    ok_ = inflateInit2(&z_, 15 + 32) == Z_OK;  // gzip or zlib header, detected
  }
  ~GzipDecoder() override {
    if (ok_) inflateEnd(&z_);
  }
  Status decode(std::string_view in, bool end, std::string& out) override {
    if (!ok_) return Status::Corrupt;
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z_.avail_in = static_cast<uInt>(in.size());
    while (!finished_ && (z_.avail_in > 0 || end)) {
      std::size_t start = 0;
      z_.next_out = reinterpret_cast<Bytef*>(grow(out, start));
      z_.avail_out = kChunk;
      const int rc = inflate(&z_, Z_NO_FLUSH);
      const std::size_t n = kChunk - z_.avail_out;
      out.resize(start + n);
      if (!produced(n)) return Status::TooLarge;
      if (rc == Z_STREAM_END) {
        finished_ = true;
      } else if (rc == Z_BUF_ERROR && n == 0) {
        break;  // needs more input
      } else if (rc != Z_OK) {
        return Status::Corrupt;
      }
    }
    if (finished_ && z_.avail_in > 0) return Status::Corrupt;  // bytes after the stream
    return end && !finished_ ? Status::Corrupt : Status::Ok;
  }

 private:
  z_stream z_{};
  bool ok_ = false;
  bool finished_ = false;
};

class BrotliDecoder final : public LimitedDecoder {
 public:
  explicit BrotliDecoder(std::uint64_t max_output)
      : LimitedDecoder(max_output), s_(BrotliDecoderCreateInstance(nullptr, nullptr, nullptr)) {}
  ~BrotliDecoder() override {
    if (s_) BrotliDecoderDestroyInstance(s_);
  }
  Status decode(std::string_view in, bool end, std::string& out) override {
    if (!s_) return Status::Corrupt;
    if (finished_) return in.empty() ? Status::Ok : Status::Corrupt;  // bytes after the stream
    std::size_t avail_in = in.size();
    const auto* next_in = reinterpret_cast<const std::uint8_t*>(in.data());
    for (;;) {
      std::size_t start = 0;
      auto* next_out = reinterpret_cast<std::uint8_t*>(grow(out, start));
      std::size_t avail_out = kChunk;
      const auto rc =
          BrotliDecoderDecompressStream(s_, &avail_in, &next_in, &avail_out, &next_out, nullptr);
      const std::size_t n = kChunk - avail_out;
      out.resize(start + n);
      if (!produced(n)) return Status::TooLarge;
      if (rc == BROTLI_DECODER_RESULT_ERROR) return Status::Corrupt;
      if (rc == BROTLI_DECODER_RESULT_SUCCESS) {
        finished_ = true;
        return avail_in > 0 ? Status::Corrupt : Status::Ok;
      }
      if (rc == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT) return end ? Status::Corrupt : Status::Ok;
      // NEEDS_MORE_OUTPUT: go round again
    }
  }

 private:
  BrotliDecoderState* s_;
  bool finished_ = false;
};

class ZstdDecoder final : public LimitedDecoder {
 public:
  explicit ZstdDecoder(std::uint64_t max_output)
      : LimitedDecoder(max_output), d_(ZSTD_createDCtx()) {}
  ~ZstdDecoder() override { ZSTD_freeDCtx(d_); }
  Status decode(std::string_view in, bool end, std::string& out) override {
    if (!d_) return Status::Corrupt;
    ZSTD_inBuffer input{in.data(), in.size(), 0};
    // Until all input is taken and the last output did not fill its buffer (else the library
    // may hold more).
    while (input.pos < input.size || output_full_) {
      std::size_t start = 0;
      ZSTD_outBuffer output{grow(out, start), kChunk, 0};
      const std::size_t rc = ZSTD_decompressStream(d_, &output, &input);
      out.resize(start + output.pos);
      if (!produced(output.pos)) return Status::TooLarge;
      if (ZSTD_isError(rc)) return Status::Corrupt;
      last_ = rc;
      output_full_ = output.pos == output.size;
    }
    return end && last_ != 0 ? Status::Corrupt : Status::Ok;  // 0: a frame ended
  }

 private:
  ZSTD_DCtx* d_;
  std::size_t last_ = 1;
  bool output_full_ = false;
};

}  // namespace

std::optional<Coding> parseCoding(std::string_view token) {
  if (http::equalsIgnoreCase(token, "gzip") || http::equalsIgnoreCase(token, "x-gzip"))
    return Coding::Gzip;
  if (http::equalsIgnoreCase(token, "br")) return Coding::Brotli;
  if (http::equalsIgnoreCase(token, "zstd")) return Coding::Zstd;
  return std::nullopt;
}

std::string_view codingName(Coding c) {
  switch (c) {
    case Coding::Gzip:
      return "gzip";
    case Coding::Brotli:
      return "br";
    case Coding::Zstd:
      return "zstd";
  }
  return "";
}

int minLevel(Coding c) {
  return c == Coding::Brotli ? 0 : 1;
}
int maxLevel(Coding c) {
  switch (c) {
    case Coding::Gzip:
      return 9;
    case Coding::Brotli:
      return 11;
    case Coding::Zstd:
      return 19;
  }
  return 0;
}

std::unique_ptr<Encoder> makeEncoder(Coding c, int level) {
  switch (c) {
    case Coding::Gzip:
      return std::make_unique<GzipEncoder>(level);
    case Coding::Brotli:
      return std::make_unique<BrotliEncoder>(level);
    case Coding::Zstd:
      return std::make_unique<ZstdEncoder>(level);
  }
  return nullptr;
}

std::unique_ptr<Decoder> makeDecoder(Coding c, std::uint64_t max_output) {
  switch (c) {
    case Coding::Gzip:
      return std::make_unique<GzipDecoder>(max_output);
    case Coding::Brotli:
      return std::make_unique<BrotliDecoder>(max_output);
    case Coding::Zstd:
      return std::make_unique<ZstdDecoder>(max_output);
  }
  return nullptr;
}

}  // namespace portico::filters::compression
