#include "core/error_body.h"

#include "core/json_escape.h"

namespace portico {

std::string errorBody(int status, std::string_view reason, std::string_view request_id,
                      std::string_view extra_fields) {
  std::string out = "{\"error\":";
  appendJsonString(out, reason);
  out += ",\"status\":";
  out += std::to_string(status);
  if (!extra_fields.empty()) out.append(",").append(extra_fields);
  out += ",\"request_id\":";
  appendJsonString(out, request_id);
  out += "}";
  return out;
}

}  // namespace portico
