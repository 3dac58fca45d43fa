#pragma once
// Request ids: 32 lower-case hex characters from a per-thread random generator.
#include <string>
#include <string_view>

namespace portico {

std::string generateRequestId();
// Writes a fresh id into `out`, reusing its capacity.
void generateRequestId(std::string& out);
// An id from a client is kept only if it is short and made of safe characters.
bool isAcceptableRequestId(std::string_view id);

}  // namespace portico
