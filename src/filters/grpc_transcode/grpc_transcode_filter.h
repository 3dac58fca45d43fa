#pragma once
// Filter `grpc-transcode`: JSON/HTTP clients calling gRPC services (see
// docs/filters/grpc-transcode.md).
#include "api/filter.h"

namespace portico::filters {

api::FilterType grpcTranscodeFilterType();

}  // namespace portico::filters
