#include "filters/grpc_transcode/catalog.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/unknown_field_set.h>

namespace portico::filters::grpc_transcode {
namespace {

namespace pb = google::protobuf;

std::string lengthDelimited(int field, const std::string& value) {
  std::string out;
  auto varint = [&](std::uint64_t v) {
    while (v >= 0x80) {
      out += static_cast<char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    out += static_cast<char>(v);
  };
  varint(static_cast<std::uint64_t>(field) << 3 | 2);
  varint(value.size());
  return out + value;
}

// package t; Req {int64 id; bool flag; repeated string tags; Inner inner}; Inner {string name};
// Resp {string out; int64 n}; service S { Get: GET /v1/items/{id} (+ /v1/other/{inner.name},
// response_body out); Post: no annotation; Stream: server streaming; Up: client streaming }.
pb::FileDescriptorSet testSet() {
  pb::FileDescriptorSet set;
  pb::FileDescriptorProto* f = set.add_file();
  pb::TextFormat::ParseFromString(
      R"pb(
        name: "t.proto"
        package: "t"
        syntax: "proto3"
        message_type {
          name: "Req"
          field { name: "id" number: 1 type: TYPE_INT64 label: LABEL_OPTIONAL json_name: "id" }
          field { name: "flag" number: 2 type: TYPE_BOOL label: LABEL_OPTIONAL json_name: "flag" }
          field { name: "tags" number: 3 type: TYPE_STRING label: LABEL_REPEATED json_name: "tags" }
          field {
            name: "inner_msg"
            number: 4
            type: TYPE_MESSAGE
            type_name: ".t.Inner"
            label: LABEL_OPTIONAL
            json_name: "innerMsg"
          }
        }
        message_type {
          name: "Inner"
          field { name: "name" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL json_name: "name" }
        }
        message_type {
          name: "Resp"
          field { name: "out" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL json_name: "out" }
          field { name: "n" number: 2 type: TYPE_INT64 label: LABEL_OPTIONAL json_name: "n" }
        }
        service {
          name: "S"
          method { name: "Get" input_type: ".t.Req" output_type: ".t.Resp" }
          method { name: "Post" input_type: ".t.Req" output_type: ".t.Resp" }
          method {
            name: "Stream"
            input_type: ".t.Req"
            output_type: ".t.Resp"
            server_streaming: true
          }
          method { name: "Up" input_type: ".t.Req" output_type: ".t.Resp" client_streaming: true }
        }
      )pb",
      f);
  const std::string extra =
      lengthDelimited(2, "/v1/other/{inner_msg.name}") + lengthDelimited(12, "out");
  const std::string rule = lengthDelimited(2, "/v1/items/{id}") + lengthDelimited(11, extra);
  f->mutable_service(0)
      ->mutable_method(0)
      ->mutable_options()
      ->mutable_unknown_fields()
      ->AddLengthDelimited(72295728, rule);
  return set;
}

struct GrpcCatalog : ::testing::Test {
  void SetUp() override {
    // one file per test: ctest runs them in parallel processes
    path = ::testing::TempDir() + "/catalog_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".pb";
    std::ofstream(path, std::ios::binary) << testSet().SerializeAsString();
    const auto set = testSet();
    for (const auto& f : set.file()) pool.BuildFile(f);
  }
  void TearDown() override { std::remove(path.c_str()); }
  std::string decodeReq(const std::string& binary) {
    pb::DynamicMessageFactory factory(&pool);
    std::unique_ptr<pb::Message> m(
        factory.GetPrototype(pool.FindMessageTypeByName("t.Req"))->New());
    EXPECT_TRUE(m->ParseFromString(binary));
    std::string text;
    pb::TextFormat::Printer printer;
    printer.SetSingleLineMode(true);
    printer.PrintToString(*m, &text);
    return text;
  }
  std::string path;
  pb::DescriptorPool pool;
};

TEST_F(GrpcCatalog, BindingsFromAnnotationsOrTheGrpcPath) {
  auto c = Catalog::load(path, {"t.S"}, {});
  ASSERT_TRUE(c) << c.error().message;
  const Catalog& catalog = **c;
  Bindings vars;
  const Binding* b = catalog.match("GET", "/v1/items/42", vars);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->method->grpc_path, "/t.S/Get");
  EXPECT_EQ(vars, (Bindings{{"id", "42"}}));
  b = catalog.match("GET", "/v1/other/x", vars);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->response_body, "out");
  b = catalog.match("POST", "/t.S/Post", vars);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->body, "*");
  EXPECT_TRUE(catalog.match("POST", "/t.S/Stream", vars)->method->server_streaming);
  EXPECT_FALSE(catalog.match("POST", "/t.S/Up", vars));
  EXPECT_EQ(catalog.skipped(), std::vector<std::string>{"t.S.Up (client streaming)"});
  EXPECT_FALSE(catalog.match("DELETE", "/v1/items/42", vars));
}

TEST_F(GrpcCatalog, RequestFromBodyPathAndQueryTypedByTheMessage) {
  auto c = Catalog::load(path, {"t.S"}, {});
  ASSERT_TRUE(c);
  Bindings vars;
  const Binding* get = (*c)->match("GET", "/v1/items/42", vars);
  auto m = (*c)->requestMessage(*get, "", vars, "flag=true&tags=a&tags=b%20c&inner_msg.name=x");
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(decodeReq(*m),
            "id: 42 flag: true tags: \"a\" tags: \"b c\" inner_msg { name: \"x\" } ");
  EXPECT_FALSE((*c)->requestMessage(*get, "", vars, "flag=yes"));
  EXPECT_FALSE((*c)->requestMessage(*get, "", vars, "nope=1"));
  EXPECT_FALSE((*c)->requestMessage(*get, "", {{"id", "x"}}, ""));

  const Binding* post = (*c)->match("POST", "/t.S/Post", vars);
  m = (*c)->requestMessage(*post, R"({"id":"7","innerMsg":{"name":"n"}})", vars, "");
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(decodeReq(*m), "id: 7 inner_msg { name: \"n\" } ");
  EXPECT_FALSE((*c)->requestMessage(*post, "{bad", vars, ""));
  EXPECT_FALSE((*c)->requestMessage(*post, "[1]", vars, ""));
  EXPECT_FALSE((*c)->requestMessage(*post, R"({"unknown":1})", vars, ""));
}

TEST_F(GrpcCatalog, ResponsesInTheProto3JsonMapping) {
  PrintOptions print;
  auto c = Catalog::load(path, {"t.S"}, print);
  ASSERT_TRUE(c);
  Bindings vars;
  const Binding* get = (*c)->match("GET", "/v1/items/1", vars);
  const std::string resp = lengthDelimited(1, "hi") + std::string("\x10\x05", 2);  // out, n = 5
  EXPECT_EQ(*(*c)->responseJson(*get, resp), R"({"out":"hi","n":"5"})");
  EXPECT_EQ(*(*c)->responseJson(*(*c)->match("GET", "/v1/other/x", vars), resp), R"("hi")");
  print.always_print_primitive_fields = true;
  auto all = Catalog::load(path, {"t.S"}, print);
  EXPECT_EQ(*(*all)->responseJson(*get, ""), R"({"out":"","n":"0"})");
}

TEST_F(GrpcCatalog, LoadErrors) {
  EXPECT_FALSE(Catalog::load(path, {"t.Nope"}, {}));
  EXPECT_FALSE(Catalog::load(path + ".missing", {"t.S"}, {}));
  auto set = testSet();
  set.mutable_file(0)
      ->mutable_service(0)
      ->mutable_method(0)
      ->mutable_options()
      ->mutable_unknown_fields()
      ->AddLengthDelimited(72295728, lengthDelimited(2, "/v1/{nope}"));
  std::ofstream(path, std::ios::binary) << set.SerializeAsString();
  auto bad = Catalog::load(path, {"t.S"}, {});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("unknown field \"nope\""), std::string::npos)
      << bad.error().message;
}

}  // namespace
}  // namespace portico::filters::grpc_transcode
