// libFuzzer target: format-conversion's XML -> JSON reader and form parser must never crash,
// and what they accept must convert back (JSON -> XML / form) without failing on valid names.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "convert/form_json.h"
#include "convert/xml_json.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace portico::convert;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  XmlToJsonOptions options;
  options.arrays = {"/a/b"};
  options.types = {{"/a/n", LeafType::Number}};
  for (const auto ns : {Namespaces::Strip, Namespaces::Keep}) {
    options.namespaces = ns;
    if (auto doc = xmlToJson(input, options)) (void)jsonToXml(*doc, "root");
  }
  if (const auto form = formToJson(input)) {
    (void)form->dump();                             // UTF-8 only: dump() would throw otherwise
    if (!jsonToForm(*form).ok()) __builtin_trap();  // an object of strings is always a form
  }
  return 0;
}
