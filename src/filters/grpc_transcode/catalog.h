#pragma once
// What grpc-transcode knows of the services it publishes: their descriptors (a FileDescriptorSet
// from `protoc --include_imports --descriptor_set_out`), each method's HTTP bindings (its
// google.api.http annotation with additional_bindings, else POST /pkg.Service/Method with the
// whole body), and the JSON <-> protobuf conversions (the proto3 JSON mapping of libprotobuf's
// util/json_util: int64 as strings, Timestamp, Duration, Struct, wrappers, enums by name).
// Immutable once loaded; shared by every worker.
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"
#include "filters/grpc_transcode/path_template.h"

namespace google::protobuf {
class DescriptorPool;
class Descriptor;
namespace util {
class TypeResolver;
}
}  // namespace google::protobuf

namespace portico::filters::grpc_transcode {

using Bindings = std::vector<std::pair<std::string, std::string>>;

struct PrintOptions {
  bool always_print_primitive_fields = false;
  bool preserve_proto_field_names = false;
};

struct Method {
  std::string grpc_path;  // "/pkg.Service/Method"
  std::string input_type_url, output_type_url;
  const google::protobuf::Descriptor* input = nullptr;  // owned by the catalog's pool
  bool server_streaming = false;
};

struct Binding {
  std::string http_method;
  PathTemplate path;
  std::string body;           // "" (none), "*" (the whole message) or a field path
  std::string response_body;  // "" (the whole message) or a field of it
  const Method* method = nullptr;
};

class Catalog {
 public:
  // Reads `file` and keeps every unary and server-streaming method of `services` (client- and
  // bidirectional-streaming ones are skipped: listed in skipped()). Errors name what is wrong.
  static Result<std::shared_ptr<const Catalog>> load(const std::string& file,
                                                     const std::vector<std::string>& services,
                                                     const PrintOptions& print);
  ~Catalog();

  // The binding an HTTP request selects (first declared wins), with the path's variables.
  const Binding* match(std::string_view method, std::string_view path, Bindings& vars) const;
  // The request message, protobuf-encoded: the JSON body (per the binding's `body`), then the
  // path variables and the query parameters set on the fields they name.
  Result<std::string> requestMessage(const Binding& b, std::string_view body, const Bindings& vars,
                                     std::string_view query) const;
  // One response message as JSON (its `response_body` field when the binding names one).
  Result<std::string> responseJson(const Binding& b, const std::string& message) const;

  const std::vector<std::string>& skipped() const { return skipped_; }
  const std::vector<Binding>& bindings() const { return bindings_; }

 private:
  Catalog();
  std::unique_ptr<google::protobuf::DescriptorPool> pool_;
  std::unique_ptr<google::protobuf::util::TypeResolver> resolver_;
  std::deque<Method> methods_;
  std::vector<Binding> bindings_;
  std::vector<std::string> skipped_;
  PrintOptions print_;
};

}  // namespace portico::filters::grpc_transcode
