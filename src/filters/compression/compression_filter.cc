#include "filters/compression/compression_filter.h"

#include <algorithm>
#include <array>

#include "api/worker_services.h"
#include "config/reader.h"
#include "filters/compression/accept_encoding.h"
#include "filters/compression/codec.h"
#include "filters/config_factory.h"
#include "http/header_list.h"

namespace portico::filters {
namespace {

using compression::Coding;

struct CompressionConfig {
  std::vector<Coding> algorithms{Coding::Zstd, Coding::Brotli, Coding::Gzip};
  std::array<int, 3> level{5, 4, 3};  // by Coding: gzip, br, zstd
  std::uint64_t min_length = 1024;
  std::vector<std::string> types{"application/json", "text/*", "application/xml",
                                 "application/javascript", "image/svg+xml"};
  bool decompress_requests = false;
  std::uint64_t max_decompressed = 8 * 1024 * 1024;

  bool typeListed(const http::HeaderList& headers) const {
    const std::string* value = headers.find("content-type");
    if (!value) return false;
    std::string_view type = *value;
    type = type.substr(0, type.find(';'));
    while (!type.empty() && type.back() == ' ') type.remove_suffix(1);
    for (const auto& t : types) {
      if (t.size() >= 2 && t.ends_with("/*")) {
        const std::string_view prefix = std::string_view(t).substr(0, t.size() - 1);  // "text/"
        if (type.size() > prefix.size() &&
            http::equalsIgnoreCase(type.substr(0, prefix.size()), prefix))
          return true;
      } else if (http::equalsIgnoreCase(type, t)) {
        return true;
      }
    }
    return false;
  }
};

class EncodeBody final : public api::BodyTransform {
 public:
  EncodeBody(Coding c, int level) : encoder_(compression::makeEncoder(c, level)) {}
  std::string_view name() const override { return "compression"; }
  bool transform(std::string_view in, bool end, std::string& out, std::string& error) override {
    // A body of known length is not a stream to show as it comes: no flush per piece.
    if (encoder_->encode(in, end, out, !length_known_)) return true;
    error = "the encoder failed";
    return false;
  }
  void expectLength(std::uint64_t length) override {
    length_known_ = true;
    encoder_->expectLength(length);
  }

 private:
  std::unique_ptr<compression::Encoder> encoder_;
  bool length_known_ = false;
};

class DecodeBody final : public api::BodyTransform {
 public:
  DecodeBody(Coding c, std::uint64_t max)
      : coding_(c), decoder_(compression::makeDecoder(c, max)) {}
  std::string_view name() const override { return "compression"; }
  bool transform(std::string_view in, bool end, std::string& out, std::string& error) override {
    switch (decoder_->decode(in, end, out)) {
      case compression::Decoder::Status::Ok:
        return true;
      case compression::Decoder::Status::TooLarge:
        error = api::BufferedBodyTransform::kBodyTooLarge;  // answered 413
        return false;
      case compression::Decoder::Status::Corrupt:
        error = "not valid " + std::string(compression::codingName(coding_));
        return false;
    }
    return false;
  }

 private:
  Coding coding_;
  std::unique_ptr<compression::Decoder> decoder_;
};

bool hasToken(const http::HeaderList& headers, std::string_view name, std::string_view token) {
  bool found = false;
  for (const auto& h : headers)
    if (http::equalsIgnoreCase(h.name, name))
      http::forEachToken(h.value,
                         [&](std::string_view t) { found |= http::equalsIgnoreCase(t, token); });
  return found;
}

class CompressionFilter final : public api::Filter {
 public:
  static constexpr bool kStateless = true;
  explicit CompressionFilter(const CompressionConfig& c) : c_(c) {}

  api::FilterStatus onRequestHeaders(api::RequestContext& ctx) override {
    if (!c_.decompress_requests) return api::FilterStatus::Continue;
    http::HeaderList& headers = ctx.request->headers;
    const std::string* encoding = headers.find("content-encoding");
    if (!encoding || ctx.request->framing == http::BodyFraming::None)
      return api::FilterStatus::Continue;
    const auto coding = compression::parseCoding(*encoding);
    if (!coding) return api::FilterStatus::Continue;  // not one we decode: forwarded as sent
    headers.remove("content-encoding");
    ctx.transformRequestBody(std::make_unique<DecodeBody>(*coding, c_.max_decompressed));
    if (ctx.worker) ctx.worker->countFilterEvent("compression", "request_decoded");
    return api::FilterStatus::Continue;
  }

  api::FilterStatus onResponseHeaders(api::RequestContext& ctx) override {
    http::ResponseHead* resp = ctx.response;
    if (!resp || !compressible(ctx, *resp)) return api::FilterStatus::Continue;
    // Caches must key on Accept-Encoding whether or not this client gets an encoded body.
    if (!hasToken(resp->headers, "vary", "accept-encoding") &&
        !hasToken(resp->headers, "vary", "*"))
      resp->headers.add("Vary", "Accept-Encoding");
    const std::string* accept = ctx.request->headers.find("accept-encoding");
    const auto coding = accept ? compression::chooseCoding(*accept, c_.algorithms) : std::nullopt;
    if (!coding) return api::FilterStatus::Continue;
    resp->headers.set("Content-Encoding", std::string(compression::codingName(*coding)));
    ctx.transformResponseBody(
        std::make_unique<EncodeBody>(*coding, c_.level[static_cast<int>(*coding)]));
    if (ctx.worker) ctx.worker->countFilterEvent("compression", compression::codingName(*coding));
    return api::FilterStatus::Continue;
  }

 private:
  bool compressible(const api::RequestContext& ctx, const http::ResponseHead& resp) const {
    if (ctx.request->method == "HEAD" || resp.status < 200 || resp.status == 204 ||
        resp.status == 206 || resp.status == 304)
      return false;
    if (resp.framing == http::BodyFraming::None) return false;
    if (resp.framing == http::BodyFraming::ContentLength && resp.content_length < c_.min_length)
      return false;
    if (const std::string* ce = resp.headers.find("content-encoding");
        ce && !http::equalsIgnoreCase(*ce, "identity"))
      return false;  // already encoded
    if (resp.headers.find("content-range")) return false;
    if (hasToken(resp.headers, "cache-control", "no-transform")) return false;
    return c_.typeListed(resp.headers);
  }

  const CompressionConfig& c_;
};

}  // namespace

api::FilterType compressionFilterType() {
  return {
      "compression", [](api::FilterBuildContext& b) -> std::shared_ptr<const api::FilterFactory> {
        CompressionConfig c;
        config::ObjectReader r(b.config, b.path, b.diag);
        std::vector<std::string> names;
        if (r.has("algorithms") && r.stringList("algorithms", names)) {
          c.algorithms.clear();
          for (const auto& n : names) {
            const auto coding = compression::parseCoding(n);
            if (!coding || n == "x-gzip")
              b.diag.add(r.childPath("algorithms"),
                         "unknown algorithm \"" + n + "\" (zstd, br, gzip)");
            else if (std::find(c.algorithms.begin(), c.algorithms.end(), *coding) ==
                     c.algorithms.end())
              c.algorithms.push_back(*coding);
          }
          if (names.empty()) b.diag.add(r.childPath("algorithms"), "must name at least one");
        }
        if (const nlohmann::json* levels = r.get("level")) {
          config::ObjectReader lr(*levels, r.childPath("level"), b.diag);
          for (const Coding coding : {Coding::Gzip, Coding::Brotli, Coding::Zstd})
            lr.number(compression::codingName(coding), compression::minLevel(coding),
                      compression::maxLevel(coding), c.level[static_cast<int>(coding)]);
          lr.finish();
        }
        r.size("min_length", c.min_length);
        r.stringList("types", c.types);
        r.boolean("decompress_requests", c.decompress_requests);
        r.size("max_decompressed", c.max_decompressed);
        r.finish();
        return std::make_shared<ConfigFactory<CompressionFilter, CompressionConfig>>(std::move(c));
      }};
}

}  // namespace portico::filters
