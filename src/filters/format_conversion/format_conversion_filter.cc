#include "filters/format_conversion/format_conversion_filter.h"

#include "api/worker_services.h"
#include "config/reader.h"
#include "convert/form_json.h"
#include "convert/xml_json.h"
#include "filters/config_factory.h"
#include "http/header_list.h"

namespace portico::filters {
namespace {

using convert::ordered_json;

enum class Format { Json, Xml, Form };

std::optional<Format> parseFormat(std::string_view s) {
  if (s == "json") return Format::Json;
  if (s == "xml") return Format::Xml;
  if (s == "form") return Format::Form;
  return std::nullopt;
}

struct Direction {
  bool enabled = false;
  Format from = Format::Json, to = Format::Json;
  std::string root = "root";  // the document element when writing XML
  convert::XmlToJsonOptions xml;
};

struct Soap {
  convert::SoapVersion version = convert::SoapVersion::None;
  std::string action;
};

struct ConversionConfig {
  Direction request, response;
  Soap soap;
  std::uint64_t max_buffer = api::BufferedBodyTransform::kDefaultMaxBuffer;
};

// Whether a message of Content-Type `headers` is in `format`.
bool isFormat(const http::HeaderList& headers, Format format) {
  if (format == Format::Json) return http::hasJsonContentType(headers);
  const std::string* type = headers.find("content-type");
  if (!type) return false;
  std::string lower = type->substr(0, type->find(';'));
  http::toLower(lower);
  if (format == Format::Form) return lower == "application/x-www-form-urlencoded";
  return lower == "application/xml" || lower == "text/xml" || lower.ends_with("+xml");
}

std::string contentType(Format f, const Soap& soap, bool request) {
  switch (f) {
    case Format::Json:
      return "application/json";
    case Format::Form:
      return "application/x-www-form-urlencoded";
    case Format::Xml:
      if (request && soap.version == convert::SoapVersion::V11) return "text/xml; charset=utf-8";
      if (request && soap.version == convert::SoapVersion::V12)
        return "application/soap+xml; charset=utf-8" +
               (soap.action.empty() ? std::string() : "; action=\"" + soap.action + "\"");
      return "application/xml; charset=utf-8";
  }
  return {};
}

// The member of `object` whose local name (after any "prefix:") is `local`.
const ordered_json* localMember(const ordered_json& object, std::string_view local) {
  if (!object.is_object()) return nullptr;
  for (auto it = object.begin(); it != object.end(); ++it) {
    std::string_view key = it.key();
    if (const auto colon = key.find(':'); colon != std::string_view::npos)
      key.remove_prefix(colon + 1);
    if (key == local) return &*it;
  }
  return nullptr;
}

// A SOAP answer's Body content; a Fault is an error with its reason.
Result<ordered_json> unwrapSoap(const ordered_json& doc) {
  const ordered_json* envelope = localMember(doc, "Envelope");
  const ordered_json* body = envelope ? localMember(*envelope, "Body") : nullptr;
  if (!body) return makeError("the answer is not a SOAP envelope with a Body");
  if (const ordered_json* fault = localMember(*body, "Fault")) {
    const ordered_json* reason = localMember(*fault, "faultstring");  // 1.1
    if (!reason)
      if (const ordered_json* r = localMember(*fault, "Reason")) reason = localMember(*r, "Text");
    std::string text = "SOAP Fault";
    if (reason) {
      const ordered_json* t = reason->is_object() ? localMember(*reason, "#text") : reason;
      if (t && t->is_string()) text += ": " + t->get<std::string>();
    }
    return makeError(text);
  }
  return body->is_null() ? ordered_json::object() : *body;
}

class ConvertBody final : public api::BufferedBodyTransform {
 public:
  ConvertBody(const ConversionConfig& c, const Direction& d, bool request)
      : BufferedBodyTransform(c.max_buffer), c_(c), d_(d), request_(request) {}
  std::string_view name() const override { return "format-conversion"; }

 protected:
  bool transformWhole(std::string& body, std::string& error) override {
    ordered_json value;
    switch (d_.from) {
      case Format::Json:
        value = ordered_json::parse(body, nullptr, false);
        if (value.is_discarded()) return fail(error, "the body is not JSON");
        break;
      case Format::Form: {
        auto parsed = convert::formToJson(body);
        if (!parsed) return fail(error, parsed.error().message);
        value = std::move(*parsed);
        break;
      }
      case Format::Xml: {
        auto parsed = convert::xmlToJson(body, d_.xml);
        if (!parsed) return fail(error, parsed.error().message);
        value = std::move(*parsed);
        break;
      }
    }
    if (!request_ && c_.soap.version != convert::SoapVersion::None && d_.from == Format::Xml) {
      auto inner = unwrapSoap(value);
      if (!inner) return fail(error, inner.error().message);
      value = std::move(*inner);
    }
    switch (d_.to) {
      case Format::Json:
        body = value.dump();
        return true;
      case Format::Form: {
        auto form = convert::jsonToForm(value);
        if (!form) return fail(error, form.error().message);
        body = std::move(*form);
        return true;
      }
      case Format::Xml: {
        auto xml = convert::jsonToXml(value, d_.root,
                                      request_ ? c_.soap.version : convert::SoapVersion::None);
        if (!xml) return fail(error, xml.error().message);
        body = std::move(*xml);
        return true;
      }
    }
    return true;
  }

 private:
  static bool fail(std::string& error, std::string why) {
    error = std::move(why);
    return false;
  }

  const ConversionConfig& c_;
  const Direction& d_;
  bool request_;
};

class FormatConversionFilter final : public api::Filter {
 public:
  static constexpr bool kStateless = true;
  explicit FormatConversionFilter(const ConversionConfig& c) : c_(c) {}

  api::FilterStatus onRequestHeaders(api::RequestContext& ctx) override {
    http::RequestHead& req = *ctx.request;
    if (!c_.request.enabled || req.framing == http::BodyFraming::None ||
        !isFormat(req.headers, c_.request.from))
      return api::FilterStatus::Continue;
    req.headers.set("Content-Type", contentType(c_.request.to, c_.soap, true));
    if (c_.soap.version == convert::SoapVersion::V11 && c_.request.to == Format::Xml)
      req.headers.set("SOAPAction", "\"" + c_.soap.action + "\"");
    ctx.transformRequestBody(std::make_unique<ConvertBody>(c_, c_.request, true));
    if (ctx.worker) ctx.worker->countFilterEvent("format-conversion", "request");
    return api::FilterStatus::Continue;
  }

  api::FilterStatus onResponseHeaders(api::RequestContext& ctx) override {
    http::ResponseHead* resp = ctx.response;
    if (!c_.response.enabled || !resp || resp->framing == http::BodyFraming::None ||
        resp->status == 204 || resp->status == 304 || ctx.request->method == "HEAD" ||
        !isFormat(resp->headers, c_.response.from))
      return api::FilterStatus::Continue;
    resp->headers.set("Content-Type", contentType(c_.response.to, c_.soap, false));
    ctx.transformResponseBody(std::make_unique<ConvertBody>(c_, c_.response, false));
    if (ctx.worker) ctx.worker->countFilterEvent("format-conversion", "response");
    return api::FilterStatus::Continue;
  }

 private:
  const ConversionConfig& c_;
};

void readDirection(config::ObjectReader& parent, std::string_view key, config::Diagnostics& diag,
                   Direction& d) {
  const nlohmann::json* node = parent.get(key);
  if (!node) return;
  d.enabled = true;
  config::ObjectReader r(*node, parent.childPath(key), diag);
  std::string from, to;
  r.string("from", from, true);
  r.string("to", to, true);
  const auto f = parseFormat(from), t = parseFormat(to);
  if (!from.empty() && !f) diag.add(r.childPath("from"), "expected json, xml or form");
  if (!to.empty() && !t) diag.add(r.childPath("to"), "expected json, xml or form");
  if (f && t && (*f == *t || (*f != Format::Json && *t != Format::Json)))
    diag.add(r.path(), "converts between json and xml or form (" + from + " -> " + to + ")");
  if (f) d.from = *f;
  if (t) d.to = *t;
  r.string("root", d.root);
  std::vector<std::string> arrays;
  r.stringList("arrays", arrays);
  d.xml.arrays.insert(arrays.begin(), arrays.end());
  if (const nlohmann::json* types = r.get("types")) {
    if (!types->is_object()) diag.add(r.childPath("types"), "must be a map of path: type");
    for (auto it = types->begin(); types->is_object() && it != types->end(); ++it) {
      const std::string v = it->is_string() ? it->get<std::string>() : "";
      const auto type = v == "number"    ? std::optional(convert::LeafType::Number)
                        : v == "integer" ? std::optional(convert::LeafType::Integer)
                        : v == "boolean" ? std::optional(convert::LeafType::Boolean)
                        : v == "string"  ? std::optional(convert::LeafType::String)
                                         : std::nullopt;
      if (!type)
        diag.add(config::joinPath(r.childPath("types"), it.key()),
                 "expected number, integer, boolean or string");
      else
        d.xml.types[it.key()] = *type;
    }
  }
  std::string ns = "strip";
  r.string("namespaces", ns);
  if (ns == "strip")
    d.xml.namespaces = convert::Namespaces::Strip;
  else if (ns == "prefix")
    d.xml.namespaces = convert::Namespaces::Prefix;
  else if (ns == "keep")
    d.xml.namespaces = convert::Namespaces::Keep;
  else
    diag.add(r.childPath("namespaces"), "expected strip, prefix or keep");
  r.finish();
}

}  // namespace

api::FilterType formatConversionFilterType() {
  return {"format-conversion",
          [](api::FilterBuildContext& b) -> std::shared_ptr<const api::FilterFactory> {
            ConversionConfig c;
            config::ObjectReader r(b.config, b.path, b.diag);
            readDirection(r, "request", b.diag, c.request);
            readDirection(r, "response", b.diag, c.response);
            if (const nlohmann::json* soap = r.get("soap")) {
              config::ObjectReader sr(*soap, r.childPath("soap"), b.diag);
              std::string version = "1.1";
              sr.string("version", version);
              sr.string("action", c.soap.action);
              sr.finish();
              if (version == "1.1")
                c.soap.version = convert::SoapVersion::V11;
              else if (version == "1.2")
                c.soap.version = convert::SoapVersion::V12;
              else
                b.diag.add(sr.childPath("version"), "expected \"1.1\" or \"1.2\"");
            }
            r.size("max_buffer", c.max_buffer);
            r.finish();
            if (!c.request.enabled && !c.response.enabled)
              b.diag.add(b.path, "needs request or response (or both)");
            return std::make_shared<ConfigFactory<FormatConversionFilter, ConversionConfig>>(
                std::move(c));
          }};
}

}  // namespace portico::filters
