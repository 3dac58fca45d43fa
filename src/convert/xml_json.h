#pragma once
// XML <-> JSON, with libxml2 (its streaming reader one way, its text writer the other).
//
// XML -> JSON: an element is a key; its attributes are "@name"; the text of an element that
// also has attributes or children is "#text"; an element with only text is that text (a
// string, or the type `types` gives its path); an empty element is null; repeated siblings
// become an array, and the paths in `arrays` are arrays even with one element. Paths are the
// JSON keys from the document element down: "/Envelope/Body/Quote/Line". Namespaces: `Strip`
// keeps local names and drops xmlns attributes, `Prefix` keeps names as written ("soap:Body"),
// `Keep` also keeps the xmlns attributes ("@xmlns:soap"). No DTD (refused), no entity, no
// network; depth bounded.
//
// JSON -> XML is the inverse: `root` names the document element, arrays repeat their element,
// "@x" keys are attributes, "#text" the text, null an empty element.
#include <map>
#include <set>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace portico::convert {

using ordered_json = nlohmann::ordered_json;

enum class Namespaces { Strip, Prefix, Keep };
enum class LeafType { String, Number, Integer, Boolean };

struct XmlToJsonOptions {
  std::set<std::string> arrays;
  std::map<std::string, LeafType> types;
  Namespaces namespaces = Namespaces::Strip;
  int max_depth = 64;
};

// The document as JSON: {"<document element>": ...}. The error says what is wrong and where.
Result<ordered_json> xmlToJson(std::string_view xml, const XmlToJsonOptions& options);

// SOAP's envelope around the request: none, 1.1 or 1.2.
enum class SoapVersion { None, V11, V12 };

// `value` as an XML document whose element is `root` (inside a SOAP envelope's Body when
// `soap` says so).
Result<std::string> jsonToXml(const ordered_json& value, std::string_view root,
                              SoapVersion soap = SoapVersion::None);

}  // namespace portico::convert
