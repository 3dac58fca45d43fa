#pragma once
// HTTP dates (RFC 9110 §5.6.7): IMF-fixdate is written; IMF-fixdate, the obsolete RFC 850 form
// and asctime's are read, as recipients must.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace portico::http {

using SystemTime = std::chrono::system_clock::time_point;

std::optional<SystemTime> parseHttpDate(std::string_view text);
std::string formatHttpDate(SystemTime t);  // "Sun, 06 Nov 1994 08:49:37 GMT"

}  // namespace portico::http
