#include "http2/outbound.h"

#include <cstring>
#include <vector>

namespace portico::http2::detail {

nghttp2_nv makeNv(std::string_view name, std::string_view value) {
  nghttp2_nv nv;
  nv.name = reinterpret_cast<uint8_t*>(const_cast<char*>(name.data()));
  nv.namelen = name.size();
  nv.value = reinterpret_cast<uint8_t*>(const_cast<char*>(value.data()));
  nv.valuelen = value.size();
  nv.flags = NGHTTP2_NV_FLAG_NONE;
  return nv;
}

void Outbound::queue(nghttp2_session* session, std::int32_t stream, std::string_view data,
                     bool end) {
  if (pos_ == pending_.size()) {
    pending_.clear();
    pos_ = 0;
  }
  pending_.append(data);
  ended_ = ended_ || end;
  if (deferred_) {
    deferred_ = false;
    nghttp2_session_resume_data(session, stream);
  }
}

ssize_t Outbound::read(nghttp2_session* session, std::int32_t stream, std::uint8_t* buf,
                       std::size_t length, std::uint32_t* flags, Outbound& o) {
  const std::size_t n = std::min(length, o.pending_.size() - o.pos_);
  std::memcpy(buf, o.pending_.data() + o.pos_, n);
  o.pos_ += n;
  if (o.pos_ == o.pending_.size()) {
    o.pending_.clear();
    o.pos_ = 0;
    if (o.ended_) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      if (o.has_trailers_) {
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        std::vector<nghttp2_nv> nva;
        for (const auto& h : o.trailers_) nva.push_back(makeNv(h.name, h.value));
        nghttp2_submit_trailer(session, stream, nva.data(), nva.size());
      }
    } else if (n == 0) {
      o.deferred_ = true;
      return NGHTTP2_ERR_DEFERRED;
    }
  }
  return static_cast<ssize_t>(n);
}

std::string_view FrameOutput::fill(nghttp2_session* session) {
  if (pos_ == out_.size()) {
    out_.clear();
    pos_ = 0;
  }
  for (;;) {
    const uint8_t* data = nullptr;
    ssize_t n = nghttp2_session_mem_send(session, &data);
    if (n <= 0) break;
    out_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
  }
  return std::string_view(out_).substr(pos_);
}

}  // namespace portico::http2::detail
