#include "convert/form_json.h"

#include "core/utf8.h"
#include "http/url.h"

namespace portico::convert {

Result<nlohmann::ordered_json> formToJson(std::string_view form) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  std::size_t field = 0;
  while (!form.empty()) {
    const auto amp = form.find('&');
    const std::string_view pair = form.substr(0, amp);
    if (!pair.empty()) {
      ++field;
      const auto eq = pair.find('=');
      const std::string key = http::decodeQueryComponent(pair.substr(0, eq));
      std::string value =
          eq == std::string_view::npos ? "" : http::decodeQueryComponent(pair.substr(eq + 1));
      if (!isValidUtf8(key) || !isValidUtf8(value))
        return makeError("form field " + std::to_string(field) +
                         " is not UTF-8 once percent-decoded");
      auto it = out.find(key);
      if (it == out.end()) {
        out[key] = std::move(value);
      } else {
        if (!it->is_array()) *it = nlohmann::ordered_json::array({std::move(*it)});
        it->push_back(std::move(value));
      }
    }
    if (amp == std::string_view::npos) break;
    form.remove_prefix(amp + 1);
  }
  return out;
}

Result<std::string> jsonToForm(const nlohmann::ordered_json& value) {
  if (!value.is_object()) return makeError("only a JSON object can be a form");
  std::string out;
  auto add = [&](const std::string& key, const nlohmann::ordered_json& v) {
    if (!out.empty()) out += '&';
    out += http::encodeQueryComponent(key) + "=" +
           http::encodeQueryComponent(v.is_string() ? v.get<std::string>()
                                      : v.is_null() ? ""
                                                    : v.dump());
  };
  for (auto it = value.begin(); it != value.end(); ++it) {
    if (it->is_array()) {
      for (const auto& item : *it) add(it.key(), item);
    } else {
      add(it.key(), *it);
    }
  }
  return out;
}

}  // namespace portico::convert
