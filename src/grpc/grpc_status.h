#pragma once
// What a gateway needs to know of gRPC: whether a request is one, its deadline (grpc-timeout),
// and how a gateway-side HTTP error reads as a gRPC status.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "http/header_list.h"

namespace portico::grpc {

// Content-Type application/grpc (or +proto, +json, ...).
bool isGrpcRequest(const http::HeaderList& headers);

// "grpc-timeout: 1500m" (at most 8 digits, then H M S m u n); nullopt when absent or invalid.
std::optional<std::chrono::nanoseconds> parseTimeout(std::string_view value);

// The status a gRPC client should see for a gateway error answered with HTTP `status`
// (after gRPC's own HTTP-to-gRPC mapping; timeouts are DEADLINE_EXCEEDED).
int statusForHttp(int status);

// The HTTP status a JSON client should see for gRPC status `code` (the mapping of
// google.rpc.Code that grpc-gateway and Envoy's transcoder use): NOT_FOUND 404, ...
int httpForStatus(int code);

// grpc-message is percent-encoded (gRPC over HTTP/2 spec).
std::string encodeMessage(std::string_view message);
std::string decodeMessage(std::string_view message);

}  // namespace portico::grpc
