#include "convert/xml_json.h"

#include <libxml/xmlreader.h>
#include <libxml/xmlwriter.h>

#include <memory>
#include <vector>

namespace portico::convert {
namespace {

// libxml2's global set-up, once, before any thread uses it (a function-local static is
// initialised once even when workers get here together).
void initLibxml() {
  static const bool done = (xmlInitParser(), true);
  (void)done;
}

std::string_view view(const xmlChar* s) {
  return s ? std::string_view(reinterpret_cast<const char*>(s)) : std::string_view();
}

bool blank(std::string_view s) {
  return s.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

ordered_json typed(const std::string& text, const XmlToJsonOptions& o, const std::string& path) {
  const auto it = o.types.find(path);
  if (it == o.types.end() || it->second == LeafType::String) return text;
  std::string_view t = text;
  while (!t.empty() && (t.front() == ' ' || t.front() == '\n' || t.front() == '\t'))
    t.remove_prefix(1);
  while (!t.empty() && (t.back() == ' ' || t.back() == '\n' || t.back() == '\t'))
    t.remove_suffix(1);
  if (it->second == LeafType::Boolean) {
    if (t == "true" || t == "1") return true;
    if (t == "false" || t == "0") return false;
    return text;
  }
  const ordered_json n = ordered_json::parse(t, nullptr, false);
  if (n.is_discarded() || !n.is_number()) return text;  // not a number: left as text
  if (it->second == LeafType::Integer && !n.is_number_integer()) return text;
  return n;
}

struct Frame {
  std::string key;
  std::string path;
  ordered_json object = ordered_json::object();
  std::string text;
  bool structured = false;         // has attributes or child elements
  std::set<std::string> repeated;  // children whose array comes from repeated elements
};

class Reader {
 public:
  Reader(std::string_view xml, const XmlToJsonOptions& o) : o_(o) {
    r_ = xmlReaderForMemory(
        xml.data(), static_cast<int>(xml.size()), nullptr, nullptr,
        XML_PARSE_NONET | XML_PARSE_NOCDATA | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
  }
  ~Reader() {
    if (r_) xmlFreeTextReader(r_);
  }
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  Result<ordered_json> run() {
    if (!r_) return makeError("cannot read XML");
    int rc;
    while ((rc = xmlTextReaderRead(r_)) == 1) {
      if (auto e = step(); !e.empty()) return makeError(e);
    }
    if (rc < 0 || !done_) return makeError(where("not well-formed XML"));
    return std::move(result_);
  }

 private:
  std::string where(std::string what) const {
    return what + " (line " + std::to_string(xmlTextReaderGetParserLineNumber(r_)) + ")";
  }

  std::string name() const {
    switch (o_.namespaces) {
      case Namespaces::Strip:
        return std::string(view(xmlTextReaderConstLocalName(r_)));
      case Namespaces::Prefix:
      case Namespaces::Keep:
        return std::string(view(xmlTextReaderConstName(r_)));
    }
    return {};
  }

  // Returns an error message, or "" to go on.
  std::string step() {
    switch (xmlTextReaderNodeType(r_)) {
      case XML_READER_TYPE_DOCUMENT_TYPE:
        return where("a DTD is not accepted");
      case XML_READER_TYPE_ENTITY_REFERENCE:
      case XML_READER_TYPE_ENTITY:
        return where("entities are not accepted");
      case XML_READER_TYPE_ELEMENT:
        return open();
      case XML_READER_TYPE_END_ELEMENT:
        close();
        return {};
      case XML_READER_TYPE_TEXT:
      case XML_READER_TYPE_CDATA:
      case XML_READER_TYPE_WHITESPACE:
      case XML_READER_TYPE_SIGNIFICANT_WHITESPACE:
        if (!stack_.empty()) stack_.back().text += view(xmlTextReaderConstValue(r_));
        return {};
      default:
        return {};  // comments, processing instructions, the XML declaration
    }
  }

  std::string open() {
    if (static_cast<int>(stack_.size()) >= o_.max_depth)
      return where("elements nested deeper than " + std::to_string(o_.max_depth));
    if (done_) return where("a second document element");
    Frame f;
    f.key = name();
    f.path = (stack_.empty() ? "" : stack_.back().path) + "/" + f.key;
    if (!stack_.empty()) stack_.back().structured = true;
    const bool empty = xmlTextReaderIsEmptyElement(r_) == 1;
    while (xmlTextReaderMoveToNextAttribute(r_) == 1) {
      const bool xmlns = xmlTextReaderIsNamespaceDecl(r_) == 1;
      if (xmlns && o_.namespaces != Namespaces::Keep) continue;
      const std::string attr = o_.namespaces == Namespaces::Strip
                                   ? std::string(view(xmlTextReaderConstLocalName(r_)))
                                   : std::string(view(xmlTextReaderConstName(r_)));
      f.object["@" + attr] = std::string(view(xmlTextReaderConstValue(r_)));
      f.structured = true;
    }
    xmlTextReaderMoveToElement(r_);
    stack_.push_back(std::move(f));
    if (empty) close();
    return {};
  }

  void close() {
    Frame f = std::move(stack_.back());
    stack_.pop_back();
    ordered_json value;
    if (!f.structured) {
      value = f.text.empty() ? ordered_json(nullptr) : typed(f.text, o_, f.path);
    } else {
      if (!blank(f.text)) f.object["#text"] = typed(f.text, o_, f.path);
      value = std::move(f.object);
    }
    if (stack_.empty()) {
      result_ = ordered_json::object();
      result_[f.key] =
          o_.arrays.count(f.path) ? ordered_json::array({std::move(value)}) : std::move(value);
      done_ = true;
      return;
    }
    Frame& parent = stack_.back();
    auto it = parent.object.find(f.key);
    if (it == parent.object.end()) {
      parent.object[f.key] =
          o_.arrays.count(f.path) ? ordered_json::array({std::move(value)}) : std::move(value);
    } else if (it->is_array() && (o_.arrays.count(f.path) || parent.repeated.count(f.key))) {
      it->push_back(std::move(value));
    } else {
      ordered_json first = std::move(*it);
      *it = ordered_json::array({std::move(first), std::move(value)});
      parent.repeated.insert(f.key);
    }
  }

  const XmlToJsonOptions& o_;
  xmlTextReaderPtr r_ = nullptr;
  std::vector<Frame> stack_;
  ordered_json result_;
  bool done_ = false;
};

// ---- JSON -> XML ----

class Writer {
 public:
  Writer() : buf_(xmlBufferCreate()), w_(buf_ ? xmlNewTextWriterMemory(buf_, 0) : nullptr) {}
  ~Writer() {
    if (w_) xmlFreeTextWriter(w_);
    if (buf_) xmlBufferFree(buf_);
  }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  Result<std::string> document(const ordered_json& value, std::string_view root, SoapVersion soap) {
    if (!w_) return makeError("cannot write XML");
    xmlTextWriterStartDocument(w_, "1.0", "UTF-8", nullptr);
    if (soap != SoapVersion::None) {
      const char* ns = soap == SoapVersion::V11 ? "http://schemas.xmlsoap.org/soap/envelope/"
                                                : "http://www.w3.org/2003/05/soap-envelope";
      xmlTextWriterStartElementNS(w_, x("soap"), x("Envelope"), x(ns));
      xmlTextWriterStartElementNS(w_, x("soap"), x("Body"), nullptr);
    }
    if (!element(std::string(root), value)) return makeError(error_);
    if (soap != SoapVersion::None) {
      xmlTextWriterEndElement(w_);
      xmlTextWriterEndElement(w_);
    }
    if (xmlTextWriterEndDocument(w_) < 0) return makeError("cannot write XML");
    xmlTextWriterFlush(w_);
    return std::string(reinterpret_cast<const char*>(xmlBufferContent(buf_)),
                       static_cast<std::size_t>(xmlBufferLength(buf_)));
  }

 private:
  static const xmlChar* x(const char* s) { return reinterpret_cast<const xmlChar*>(s); }
  static const xmlChar* x(const std::string& s) { return x(s.c_str()); }

  static std::string text(const ordered_json& v) {
    return v.is_string() ? v.get<std::string>() : v.is_null() ? std::string() : v.dump();
  }

  bool validName(const std::string& name) {
    if (xmlValidateName(x(name), 0) == 0) return true;
    error_ = "\"" + name + "\" cannot be an XML element or attribute name";
    return false;
  }

  bool element(const std::string& name, const ordered_json& v) {
    if (v.is_array()) {
      for (const auto& item : v)
        if (!element(name, item)) return false;
      return true;
    }
    if (!validName(name)) return false;
    if (++depth_ > 64) {
      error_ = "JSON nested deeper than 64";
      return false;
    }
    xmlTextWriterStartElement(w_, x(name));
    if (v.is_object()) {
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (it.key().size() > 1 && it.key()[0] == '@') {
          const std::string attr = it.key().substr(1);
          if (!validName(attr)) return false;
          xmlTextWriterWriteAttribute(w_, x(attr), x(text(*it)));
        }
      }
      if (auto t = v.find("#text"); t != v.end()) xmlTextWriterWriteString(w_, x(text(*t)));
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (it.key() == "#text" || (it.key().size() > 1 && it.key()[0] == '@')) continue;
        if (!element(it.key(), *it)) return false;
      }
    } else if (!v.is_null()) {
      xmlTextWriterWriteString(w_, x(text(v)));
    }
    xmlTextWriterEndElement(w_);
    --depth_;
    return true;
  }

  xmlBufferPtr buf_;
  xmlTextWriterPtr w_;
  std::string error_;
  int depth_ = 0;
};

}  // namespace

Result<ordered_json> xmlToJson(std::string_view xml, const XmlToJsonOptions& options) {
  initLibxml();
  return Reader(xml, options).run();
}

Result<std::string> jsonToXml(const ordered_json& value, std::string_view root, SoapVersion soap) {
  initLibxml();
  return Writer().document(value, root, soap);
}

}  // namespace portico::convert
