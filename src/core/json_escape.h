#pragma once
// Appends a JSON string literal (with quotes) for `s`. Invalid UTF-8 bytes are escaped as \u00XX
// so a log line is always valid JSON whatever the client sent.
#include <string>
#include <string_view>

namespace portico {

void appendJsonString(std::string& out, std::string_view s);

}  // namespace portico
