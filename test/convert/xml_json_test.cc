#include "convert/xml_json.h"

#include <gtest/gtest.h>

#include "convert/form_json.h"

namespace portico::convert {
namespace {

const char* kQuote = R"(<?xml version="1.0"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:q="urn:quotes">
  <soap:Body>
    <q:Quote id="42" currency="EUR">
      <q:Line sku="a1"><q:Qty>2</q:Qty></q:Line>
      <q:Total>19.90</q:Total>
      <q:Paid>true</q:Paid>
      <q:Note/>
      <q:Comment lang="en">rush <![CDATA[<please>]]></q:Comment>
    </q:Quote>
  </soap:Body>
</soap:Envelope>)";

TEST(XmlToJson, StableTypesNamespacesAttributesEmptyAndOneElementArrays) {
  XmlToJsonOptions o;
  o.arrays = {"/Envelope/Body/Quote/Line"};
  o.types = {{"/Envelope/Body/Quote/Total", LeafType::Number},
             {"/Envelope/Body/Quote/Paid", LeafType::Boolean},
             {"/Envelope/Body/Quote/Line/Qty", LeafType::Integer}};
  auto doc = xmlToJson(kQuote, o);
  ASSERT_TRUE(doc.ok()) << doc.error().message;
  const ordered_json expected = ordered_json::parse(R"({"Envelope": {"Body": {"Quote": {
      "@id": "42", "@currency": "EUR",
      "Line": [{"@sku": "a1", "Qty": 2}],
      "Total": 19.9, "Paid": true, "Note": null,
      "Comment": {"@lang": "en", "#text": "rush <please>"}}}}})");
  EXPECT_EQ(*doc, expected) << doc->dump(1);
}

TEST(XmlToJson, RepeatedSiblingsAndNamespaceModes) {
  const char* xml =
      R"(<a:r xmlns:a="urn:a"><a:i>1</a:i><a:i>2</a:i><a:i>3</a:i><a:j>x</a:j></a:r>)";
  XmlToJsonOptions o;
  EXPECT_EQ(*xmlToJson(xml, o), ordered_json::parse(R"({"r": {"i": ["1", "2", "3"], "j": "x"}})"));
  o.namespaces = Namespaces::Prefix;
  EXPECT_EQ(*xmlToJson(xml, o),
            ordered_json::parse(R"({"a:r": {"a:i": ["1", "2", "3"], "a:j": "x"}})"));
  o.namespaces = Namespaces::Keep;
  EXPECT_EQ((*xmlToJson(xml, o))["a:r"]["@xmlns:a"], "urn:a");
}

TEST(XmlToJson, HostileDocumentsAreRefused) {
  const char* laughs = R"(<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<lolz>&lol2;</lolz>)";
  XmlToJsonOptions o;
  auto r = xmlToJson(laughs, o);
  ASSERT_FALSE(r.ok());
  const char* xxe =
      R"(<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>)";
  EXPECT_FALSE(xmlToJson(xxe, o).ok());
  std::string deep;
  for (int i = 0; i < 100; ++i) deep += "<a>";
  for (int i = 0; i < 100; ++i) deep += "</a>";
  auto d = xmlToJson(deep, o);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.error().message.find("deeper"), std::string::npos);
  EXPECT_FALSE(xmlToJson("<a><b></a>", o).ok());
  EXPECT_FALSE(xmlToJson("not xml", o).ok());
  EXPECT_FALSE(xmlToJson("", o).ok());
}

TEST(JsonToXml, InverseAndRoundTrip) {
  const ordered_json order =
      ordered_json::parse(R"({"@id": "7", "Line": [{"Sku": "a"}, {"Sku": "b"}],
      "Note": null, "Total": 12.5, "Text": {"@lang": "en", "#text": "a < b & c"}})");
  auto xml = jsonToXml(order, "Order");
  ASSERT_TRUE(xml.ok()) << xml.error().message;
  EXPECT_NE(xml->find("<Order id=\"7\"><Line><Sku>a</Sku></Line><Line><Sku>b</Sku></Line><Note/>"),
            std::string::npos)
      << *xml;
  EXPECT_NE(xml->find("a &lt; b &amp; c"), std::string::npos);
  XmlToJsonOptions o;
  o.types = {{"/Order/Total", LeafType::Number}};
  auto back = xmlToJson(*xml, o);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ((*back)["Order"], order);
  EXPECT_FALSE(jsonToXml(ordered_json::parse(R"({"bad name": 1})"), "r").ok());
}

TEST(JsonToXml, SoapEnvelope) {
  auto xml = jsonToXml(ordered_json::parse(R"({"Symbol": "ACME"})"), "GetQuote", SoapVersion::V11);
  ASSERT_TRUE(xml.ok());
  EXPECT_NE(xml->find("<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\">"
                      "<soap:Body><GetQuote><Symbol>ACME</Symbol></GetQuote></soap:Body>"),
            std::string::npos)
      << *xml;
}

TEST(FormJson, BothWays) {
  EXPECT_EQ(*formToJson("a=1&b=x+y&a=2&c=%26&d"),
            ordered_json::parse(R"({"a": ["1", "2"], "b": "x y", "c": "&", "d": ""})"));
  EXPECT_EQ(*formToJson("name=caf%C3%A9"), ordered_json::parse(R"({"name": "café"})"));
  // JSON holds UTF-8 only: a percent-escape that decodes to other bytes is refused, naming
  // the field.
  EXPECT_EQ(formToJson("a=1&name=caf%E9").error().message,
            "form field 2 is not UTF-8 once percent-decoded");
  EXPECT_FALSE(formToJson("%FF=1").ok());
  EXPECT_FALSE(formToJson("a=%C3%28").ok());
  EXPECT_EQ(*jsonToForm(ordered_json::parse(R"({"a": ["1", 2], "b": "x y", "n": null})")),
            "a=1&a=2&b=x%20y&n=");
  EXPECT_FALSE(jsonToForm(ordered_json::parse("[1]")).ok());
}

}  // namespace
}  // namespace portico::convert
