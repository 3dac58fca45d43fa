#include "filters/grpc_transcode/catalog.h"

#include <fstream>
#include <optional>
#include <sstream>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/unknown_field_set.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/type_resolver.h>
#include <google/protobuf/util/type_resolver_util.h>
#include <nlohmann/json.hpp>

#include "core/utf8.h"
#include "http/url.h"

namespace portico::filters::grpc_transcode {
namespace {

namespace pb = google::protobuf;
using json = nlohmann::json;

constexpr int kHttpRuleExtension = 72295728;  // google.api.http on MethodOptions
constexpr std::string_view kTypeUrlPrefix = "type.googleapis.com";

// A google.api.HttpRule read from its wire form (the annotation is an extension the generated
// descriptor classes do not know, so it arrives as an unknown field).
struct HttpRule {
  std::string method, path, body, response_body;
  std::vector<HttpRule> additional;
};

std::optional<HttpRule> parseHttpRule(const std::string& bytes, int depth = 0) {
  pb::UnknownFieldSet fields;
  if (depth > 1 || !fields.ParseFromString(bytes)) return std::nullopt;
  HttpRule rule;
  for (int i = 0; i < fields.field_count(); ++i) {
    const pb::UnknownField& f = fields.field(i);
    if (f.type() != pb::UnknownField::TYPE_LENGTH_DELIMITED) continue;
    const std::string& v = f.length_delimited();
    switch (f.number()) {
      case 2:
        rule.method = "GET", rule.path = v;
        break;
      case 3:
        rule.method = "PUT", rule.path = v;
        break;
      case 4:
        rule.method = "POST", rule.path = v;
        break;
      case 5:
        rule.method = "DELETE", rule.path = v;
        break;
      case 6:
        rule.method = "PATCH", rule.path = v;
        break;
      case 7:
        rule.body = v;
        break;
      case 12:
        rule.response_body = v;
        break;
      case 8: {  // custom: { kind = 1, path = 2 }
        pb::UnknownFieldSet custom;
        if (!custom.ParseFromString(v)) return std::nullopt;
        for (int j = 0; j < custom.field_count(); ++j) {
          const auto& cf = custom.field(j);
          if (cf.type() != pb::UnknownField::TYPE_LENGTH_DELIMITED) continue;
          if (cf.number() == 1) rule.method = cf.length_delimited();
          if (cf.number() == 2) rule.path = cf.length_delimited();
        }
        break;
      }
      case 11: {
        auto more = parseHttpRule(v, depth + 1);
        if (!more) return std::nullopt;
        rule.additional.push_back(std::move(*more));
        break;
      }
      default:
        break;
    }
  }
  return rule;
}

// The field `name` of `d`: by its proto name or its JSON name.
const pb::FieldDescriptor* findField(const pb::Descriptor* d, std::string_view name) {
  const std::string n(name);
  if (const auto* f = d->FindFieldByName(n)) return f;
  for (int i = 0; i < d->field_count(); ++i)
    if (d->field(i)->json_name() == n) return d->field(i);
  return nullptr;
}

// The fields `field_path` ("book.id") walks through from message `d`, the last one named.
Result<std::vector<const pb::FieldDescriptor*>> fieldChain(const pb::Descriptor* d,
                                                           std::string_view field_path) {
  std::vector<const pb::FieldDescriptor*> chain;
  std::size_t from = 0;
  for (;;) {
    const std::size_t dot = field_path.find('.', from);
    if (!d) return makeError("\"" + std::string(field_path) + "\" is not a field of the request");
    const pb::FieldDescriptor* field = findField(d, field_path.substr(from, dot - from));
    if (!field) return makeError("unknown field \"" + std::string(field_path) + "\"");
    chain.push_back(field);
    if (dot == std::string_view::npos) return chain;
    // only a singular message field leads further
    d = !field->is_repeated() && field->type() == pb::FieldDescriptor::TYPE_MESSAGE
            ? field->message_type()
            : nullptr;
    from = dot + 1;
  }
}

// Sets `value` (text from a path or query) at `field_path` of the request's JSON, typed by the
// field it names; a repeated field collects every value.
Result<bool> setField(json& root, const pb::Descriptor* d, std::string_view field_path,
                      const std::string& value) {
  auto chain = fieldChain(d, field_path);
  if (!chain) return chain.error();
  // JSON (and protobuf's strings) hold UTF-8 only; a percent-escape may decode to anything.
  if (!isValidUtf8(value))
    return makeError("\"" + std::string(field_path) + "\" is not UTF-8 once percent-decoded");
  json* node = &root;
  for (const pb::FieldDescriptor* f : *chain) {
    if (!node->is_object()) *node = json::object();
    node = &(*node)[f->name()];
  }
  const pb::FieldDescriptor* field = chain->back();
  json typed = value;
  if (field->type() == pb::FieldDescriptor::TYPE_BOOL) {
    if (value != "true" && value != "false")
      return makeError("\"" + std::string(field_path) + "\" must be true or false");
    typed = value == "true";
  } else if (field->type() == pb::FieldDescriptor::TYPE_MESSAGE &&
             field->message_type()->well_known_type() == pb::Descriptor::WELLKNOWNTYPE_BOOLVALUE) {
    typed = value == "true";
  }
  if (field->is_repeated()) {
    if (!node->is_array()) *node = json::array();
    node->push_back(std::move(typed));
  } else {
    *node = std::move(typed);
  }
  return true;
}

}  // namespace

Catalog::Catalog() = default;
Catalog::~Catalog() = default;

Result<std::shared_ptr<const Catalog>> Catalog::load(const std::string& file,
                                                     const std::vector<std::string>& services,
                                                     const PrintOptions& print) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return makeError("cannot read descriptor set \"" + file + "\"");
  std::stringstream bytes;
  bytes << in.rdbuf();
  pb::FileDescriptorSet set;
  if (!set.ParseFromString(bytes.str()))
    return makeError("\"" + file + "\" is not a FileDescriptorSet (protoc --descriptor_set_out)");

  std::shared_ptr<Catalog> c(new Catalog());
  c->print_ = print;
  c->pool_ = std::make_unique<pb::DescriptorPool>();
  for (const auto& f : set.file()) {
    if (!c->pool_->BuildFile(f))
      return makeError("\"" + file + "\": cannot build " + f.name() +
                       " (was it made with --include_imports?)");
  }
  c->resolver_.reset(
      pb::util::NewTypeResolverForDescriptorPool(std::string(kTypeUrlPrefix), c->pool_.get()));
  auto typeUrl = [](const pb::Descriptor* d) {
    return std::string(kTypeUrlPrefix) + "/" + d->full_name();
  };

  for (const std::string& name : services) {
    const pb::ServiceDescriptor* service = c->pool_->FindServiceByName(name);
    if (!service) return makeError("\"" + file + "\" has no service \"" + name + "\"");
    // The annotations, read from the file's own descriptor proto (unknown fields kept).
    const pb::FileDescriptorProto* proto = nullptr;
    for (const auto& f : set.file())
      if (f.name() == service->file()->name()) proto = &f;
    const pb::ServiceDescriptorProto* service_proto = nullptr;
    for (const auto& s : proto->service())
      if (s.name() == service->name()) service_proto = &s;
    for (int i = 0; i < service->method_count(); ++i) {
      const pb::MethodDescriptor* m = service->method(i);
      if (m->client_streaming()) {
        c->skipped_.push_back(m->full_name() + " (client streaming)");
        continue;
      }
      Method& method = c->methods_.emplace_back();
      method.grpc_path = "/" + service->full_name() + "/" + m->name();
      method.input = m->input_type();
      method.input_type_url = typeUrl(m->input_type());
      method.output_type_url = typeUrl(m->output_type());
      method.server_streaming = m->server_streaming();

      std::optional<HttpRule> rule;
      for (const auto& mp : service_proto->method()) {
        if (mp.name() != m->name()) continue;
        const auto& unknown = mp.options().unknown_fields();
        for (int k = 0; k < unknown.field_count(); ++k) {
          const auto& f = unknown.field(k);
          if (f.number() != kHttpRuleExtension ||
              f.type() != pb::UnknownField::TYPE_LENGTH_DELIMITED)
            continue;
          rule = parseHttpRule(f.length_delimited());
          if (!rule) return makeError(m->full_name() + ": unreadable google.api.http annotation");
        }
      }
      std::vector<HttpRule> rules;
      if (!rule) {
        rules.push_back({"POST", method.grpc_path, "*", "", {}});
      } else {
        auto additional = std::move(rule->additional);
        rules.push_back(std::move(*rule));
        for (auto& a : additional) rules.push_back(std::move(a));
      }
      for (auto& r : rules) {
        if (r.method.empty() || r.path.empty())
          return makeError(m->full_name() + ": google.api.http without a method and path");
        auto tmpl = PathTemplate::parse(r.path);
        if (!tmpl) return makeError(m->full_name() + ": " + tmpl.error().message);
        // Every bound field must exist in the request message.
        for (const auto& fp : tmpl->fieldPaths()) {
          if (auto chain = fieldChain(m->input_type(), fp); !chain)
            return makeError(m->full_name() + ": path " + r.path + ": " + chain.error().message);
        }
        if (!r.body.empty() && r.body != "*" && !findField(m->input_type(), r.body))
          return makeError(m->full_name() + ": body \"" + r.body + "\" is not a field of " +
                           m->input_type()->full_name());
        if (!r.response_body.empty()) {
          const auto* field = m->output_type()->FindFieldByName(r.response_body);
          if (!field)
            return makeError(m->full_name() + ": response_body \"" + r.response_body +
                             "\" is not a field of " + m->output_type()->full_name());
          // as the JSON printer names it
          r.response_body = print.preserve_proto_field_names ? field->name() : field->json_name();
        }
        Binding b;
        b.http_method = r.method;
        b.path = std::move(*tmpl);
        b.body = r.body;
        b.response_body = r.response_body;
        b.method = &method;
        c->bindings_.push_back(std::move(b));
      }
    }
  }
  return std::shared_ptr<const Catalog>(std::move(c));
}

const Binding* Catalog::match(std::string_view method, std::string_view path,
                              Bindings& vars) const {
  for (const Binding& b : bindings_)
    if (b.http_method == method && b.path.match(path, vars)) return &b;
  return nullptr;
}

Result<std::string> Catalog::requestMessage(const Binding& b, std::string_view body,
                                            const Bindings& vars, std::string_view query) const {
  json message = json::object();
  if (!b.body.empty()) {
    json parsed = body.empty() ? json::object() : json::parse(body, nullptr, false);
    if (parsed.is_discarded()) return makeError("the request body is not JSON");
    if (b.body == "*") {
      if (!parsed.is_object()) return makeError("the request body must be a JSON object");
      message = std::move(parsed);
    } else {
      message[findField(b.method->input, b.body)->name()] = std::move(parsed);
    }
  }
  for (const auto& [field_path, value] : vars) {
    auto ok = setField(message, b.method->input, field_path, value);
    if (!ok) return ok.error();
  }
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (pair.empty()) continue;
    const std::size_t eq = pair.find('=');
    const std::string name = http::decodeQueryComponent(pair.substr(0, eq));
    auto ok = setField(
        message, b.method->input, name,
        eq == std::string_view::npos ? "" : http::decodeQueryComponent(pair.substr(eq + 1)));
    if (!ok) return makeError("query parameter " + ok.error().message);
  }
  std::string binary;
  pb::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto status = pb::util::JsonToBinaryString(resolver_.get(), b.method->input_type_url,
                                             message.dump(), &binary, options);
  if (!status.ok()) return makeError(std::string(status.message()));
  return binary;
}

Result<std::string> Catalog::responseJson(const Binding& b, const std::string& message) const {
  pb::util::JsonPrintOptions options;
  options.always_print_primitive_fields = print_.always_print_primitive_fields;
  options.preserve_proto_field_names = print_.preserve_proto_field_names;
  std::string out;
  auto status = pb::util::BinaryToJsonString(resolver_.get(), b.method->output_type_url, message,
                                             &out, options);
  if (!status.ok()) return makeError(std::string(status.message()));
  if (b.response_body.empty()) return out;
  json whole = json::parse(out, nullptr, false);
  if (!whole.is_object()) return out;
  for (const auto& [key, value] : whole.items()) {
    if (key == b.response_body) return value.dump();
  }
  return std::string("null");
}

}  // namespace portico::filters::grpc_transcode
