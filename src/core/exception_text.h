#pragma once
// What a caught exception says, for the log line of a handler that failed (a bug).
#include <exception>
#include <string>

namespace portico {

inline std::string exceptionText(std::exception_ptr thrown) {
  try {
    std::rethrow_exception(std::move(thrown));
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "an exception that is not a std::exception";
  }
}

}  // namespace portico
