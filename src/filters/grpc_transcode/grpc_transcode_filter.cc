#include "filters/grpc_transcode/grpc_transcode_filter.h"

#include <charconv>

#include "api/worker_services.h"
#include "config/reader.h"
#include "core/error_body.h"
#include "filters/auth_reply.h"
#include "filters/grpc_transcode/catalog.h"
#include "grpc/grpc_status.h"
#include "http/header_list.h"

namespace portico::filters {
namespace {

using grpc_transcode::Binding;
using grpc_transcode::Bindings;
using grpc_transcode::Catalog;

struct TranscodeConfig {
  std::string descriptor_set;
  std::vector<std::string> services;
  grpc_transcode::PrintOptions print;
  std::uint64_t max_message_size = 4 * 1024 * 1024;
  std::shared_ptr<const Catalog> catalog;
};

// The JSON request body (gathered whole) into one length-prefixed gRPC message.
class JsonToGrpc final : public api::BufferedBodyTransform {
 public:
  JsonToGrpc(const TranscodeConfig& c, const Binding& b, Bindings vars, std::string query)
      : BufferedBodyTransform(c.max_message_size),
        c_(c),
        b_(b),
        vars_(std::move(vars)),
        query_(std::move(query)) {}
  std::string_view name() const override { return "grpc-transcode"; }

 protected:
  bool transformWhole(std::string& body, std::string& error) override {
    auto message = c_.catalog->requestMessage(b_, body, vars_, query_);
    if (!message) {
      error = message.error().message;
      return false;
    }
    if (message->size() > c_.max_message_size) {
      error = kBodyTooLarge;  // answered 413
      return false;
    }
    const auto n = static_cast<std::uint32_t>(message->size());
    body.assign({'\0', static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                 static_cast<char>(n >> 8), static_cast<char>(n)});
    body.append(*message);
    return true;
  }

 private:
  const TranscodeConfig& c_;
  const Binding& b_;
  Bindings vars_;
  std::string query_;
};

// The gRPC answer into JSON: a unary method's one message as a JSON document once the status
// (trailers) says OK; a server-streaming method's messages as NDJSON lines, each as it comes.
// A non-OK status before anything was sent becomes the HTTP status and a JSON error; after
// (a stream under way), a last line {"error": ...}. Never a 200 for a failed call.
class GrpcToJson final : public api::BodyTransform {
 public:
  GrpcToJson(const TranscodeConfig& c, const Binding& b, std::string request_id)
      : c_(c), b_(b), request_id_(std::move(request_id)) {}
  std::string_view name() const override { return "grpc-transcode"; }
  bool makesBodyOfNothing() const override { return true; }

  bool trailers(const http::HeaderList& trailers, http::ResponseHead* head) override {
    const std::string* status = trailers.find("grpc-status");
    if (!status) return true;
    int code = 2;
    auto [p, ec] = std::from_chars(status->data(), status->data() + status->size(), code);
    if (ec != std::errc() || p != status->data() + status->size()) code = 2;  // UNKNOWN
    status_ = code;
    if (const std::string* m = trailers.find("grpc-message")) message_ = grpc::decodeMessage(*m);
    if (code != 0 && head && !emitted_) {
      head->status = grpc::httpForStatus(code);
      head->reason.clear();
      head->headers.set("Content-Type", "application/json");
    }
    return true;  // the client gets JSON, not gRPC trailers
  }

  bool transform(std::string_view in, bool end, std::string& out, std::string& error) override {
    buffer_.append(in);
    std::size_t at = 0;
    while (buffer_.size() - at >= 5) {
      const auto* h = reinterpret_cast<const unsigned char*>(buffer_.data() + at);
      const std::uint64_t length = (std::uint64_t{h[1]} << 24) | (std::uint64_t{h[2]} << 16) |
                                   (std::uint64_t{h[3]} << 8) | h[4];
      if (length > c_.max_message_size) {
        error = "a response message is over max_message_size";
        return false;
      }
      if (h[0] != 0) {
        error = "a compressed response message (none was accepted)";
        return false;
      }
      if (buffer_.size() - at - 5 < length) break;
      std::string message = buffer_.substr(at + 5, length);
      at += 5 + length;
      if (b_.method->server_streaming) {
        auto line = c_.catalog->responseJson(b_, message);
        if (!line) {
          error = line.error().message;
          return false;
        }
        out.append(*line).push_back('\n');
        emitted_ = true;
      } else if (unary_) {
        error = "more than one message for a unary method";
        return false;
      } else {
        unary_ = std::move(message);
      }
    }
    buffer_.erase(0, at);
    if (!end) return true;
    if (!buffer_.empty()) {
      error = "the answer ended inside a message";
      return false;
    }
    if (!status_) {
      error = "the upstream gave no grpc-status";
      return false;
    }
    if (*status_ != 0) {
      const std::string e =
          errorBody(grpc::httpForStatus(*status_),
                    message_.empty() ? "gRPC status " + std::to_string(*status_) : message_,
                    request_id_, "\"grpc_status\":" + std::to_string(*status_));
      if (emitted_)
        out.append("{\"error\":").append(e).append("}\n");
      else
        out.append(e);
      return true;
    }
    if (b_.method->server_streaming) return true;
    if (!unary_) {
      error = "the upstream answered OK without a message";
      return false;
    }
    auto doc = c_.catalog->responseJson(b_, *unary_);
    if (!doc) {
      error = doc.error().message;
      return false;
    }
    out.append(*doc);
    return true;
  }

 private:
  const TranscodeConfig& c_;
  const Binding& b_;
  std::string request_id_;
  std::string buffer_;
  std::optional<std::string> unary_;
  std::optional<int> status_;
  std::string message_;
  bool emitted_ = false;
};

class GrpcTranscodeFilter final : public api::Filter {
 public:
  explicit GrpcTranscodeFilter(const TranscodeConfig& c) : c_(c) {}

  api::FilterStatus onRequestHeaders(api::RequestContext& ctx) override {
    http::RequestHead& req = *ctx.request;
    if (grpc::isGrpcRequest(req.headers)) return api::FilterStatus::Continue;  // gRPC already
    Bindings vars;
    binding_ = c_.catalog->match(req.method, req.path, vars);
    if (!binding_) return replyError(ctx, 404, "no gRPC method for " + req.method + " " + req.path);
    ctx.transformRequestBody(
        std::make_unique<JsonToGrpc>(c_, *binding_, std::move(vars), std::move(req.query)));
    req.method = "POST";
    req.path = binding_->method->grpc_path;
    req.query.clear();
    req.target = req.path;
    if (req.framing == http::BodyFraming::None) {  // the message is made even from no body
      req.framing = http::BodyFraming::ContentLength;
      req.content_length = 0;
    }
    req.headers.remove("content-length");
    req.headers.remove("transfer-encoding");
    req.headers.remove("expect");
    req.headers.set("Content-Type", "application/grpc");
    req.headers.set("TE", "trailers");
    if (ctx.worker) ctx.worker->countFilterEvent("grpc-transcode", "transcoded");
    return api::FilterStatus::Continue;
  }

  api::FilterStatus onResponseHeaders(api::RequestContext& ctx) override {
    http::ResponseHead* resp = ctx.response;
    if (!binding_ || !resp || !grpc::isGrpcRequest(resp->headers))
      return api::FilterStatus::Continue;  // not a gRPC answer (Portico's own error...)
    auto t = std::make_unique<GrpcToJson>(c_, *binding_, ctx.request_id);
    resp->headers.set("Content-Type", binding_->method->server_streaming ? "application/x-ndjson"
                                                                         : "application/json");
    t->trailers(resp->headers, resp);  // trailers-only: the status is in the head
    for (const char* name : {"grpc-status", "grpc-message", "grpc-encoding", "grpc-accept-encoding",
                             "grpc-status-details-bin"})
      resp->headers.remove(name);
    ctx.transformResponseBody(std::move(t));
    return api::FilterStatus::Continue;
  }

 private:
  const TranscodeConfig& c_;
  const Binding* binding_ = nullptr;
};

class TranscodeFactory final : public api::FilterFactory {
 public:
  explicit TranscodeFactory(TranscodeConfig c) : c_(std::move(c)) {}
  api::FilterPtr create() const override { return std::make_unique<GrpcTranscodeFilter>(c_); }
  std::vector<std::string> watchedFiles() const override { return {c_.descriptor_set}; }

 private:
  TranscodeConfig c_;
};

}  // namespace

api::FilterType grpcTranscodeFilterType() {
  return {"grpc-transcode",
          [](api::FilterBuildContext& b) -> std::shared_ptr<const api::FilterFactory> {
            TranscodeConfig c;
            config::ObjectReader r(b.config, b.path, b.diag);
            r.string("descriptor_set", c.descriptor_set, true);
            r.stringList("services", c.services);
            if (c.services.empty()) b.diag.add(r.childPath("services"), "must name a service");
            if (const nlohmann::json* print = r.get("print")) {
              config::ObjectReader pr(*print, r.childPath("print"), b.diag);
              pr.boolean("always_print_primitive_fields", c.print.always_print_primitive_fields);
              pr.boolean("preserve_proto_field_names", c.print.preserve_proto_field_names);
              pr.finish();
            }
            r.size("max_message_size", c.max_message_size);
            r.finish();
            if (!r.valid() || c.descriptor_set.empty() || c.services.empty()) return nullptr;
            auto catalog = Catalog::load(c.descriptor_set, c.services, c.print);
            if (!catalog) {
              b.diag.add(r.childPath("descriptor_set"), catalog.error().message);
              return nullptr;
            }
            c.catalog = std::move(*catalog);
            return std::make_shared<TranscodeFactory>(std::move(c));
          }};
}

}  // namespace portico::filters
