#pragma once
// Portico's JSON error answer, the one shape every error response has:
// {"error": reason, "status": N[, extra fields], "request_id": id}.
#include <string>
#include <string_view>

namespace portico {

// `extra_fields`: more members, already JSON (`"grpc_status":5`), placed after "status".
std::string errorBody(int status, std::string_view reason, std::string_view request_id,
                      std::string_view extra_fields = {});

}  // namespace portico
