#pragma once
// Admin API answers: JSON bodies, and errors as {"error": ..., "status": ...}.
#include <string>

#include <nlohmann/json.hpp>

#include "admin/admin_server.h"

namespace portico::admin {

inline AdminResponse answer(int status, const nlohmann::json& body) {
  return {status,
          "application/json",
          body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
          {}};
}

inline AdminResponse failure(int status, const std::string& message) {
  return answer(status, nlohmann::json{{"error", message}, {"status", status}});
}

inline AdminResponse notAllowed(const char* allow) {
  auto r = failure(405, "method not allowed");
  r.headers.emplace_back("Allow", allow);
  return r;
}

}  // namespace portico::admin
