#include "filters/builtins.h"

#include "filters/access_log/access_log_filter.h"
#include "filters/acl/acl_filter.h"
#include "filters/basic_auth/basic_auth_filter.h"
#include "filters/body_rewrite/body_rewrite_filter.h"
#include "filters/cache/cache_filter.h"
#include "filters/compression/compression_filter.h"
#include "filters/concurrency_limit/concurrency_limit_filter.h"
#include "filters/cors/cors_filter.h"
#include "filters/ext_auth/ext_auth_filter.h"
#include "filters/format_conversion/format_conversion_filter.h"
#include "filters/grpc_transcode/grpc_transcode_filter.h"
#include "filters/headers/headers_filter.h"
#include "filters/ip_restriction/ip_restriction_filter.h"
#include "filters/jwt/jwt_filter.h"
#include "filters/key_auth/key_auth_filter.h"
#include "filters/load_shed/load_shed_filter.h"
#include "filters/oauth2_introspection/oauth2_introspection_filter.h"
#include "filters/quota/quota_filter.h"
#include "filters/rate_limit/rate_limit_filter.h"
#include "filters/request_id/request_id_filter.h"
#include "filters/request_size_limit/request_size_limit_filter.h"
#include "filters/request_validation/request_validation_filter.h"
#include "filters/static_response/static_response_filter.h"
#include "filters/traffic_mirror/traffic_mirror_filter.h"
#include "filters/transformer/transformer_filter.h"

namespace portico::filters {

void registerBuiltins(api::FilterRegistry& registry) {
  registry.add(accessLogFilterType());
  registry.add(aclFilterType());
  registry.add(basicAuthFilterType());
  registry.add(bodyRewriteFilterType());
  registry.add(cacheFilterType());
  registry.add(compressionFilterType());
  registry.add(concurrencyLimitFilterType());
  registry.add(corsFilterType());
  registry.add(extAuthFilterType());
  registry.add(formatConversionFilterType());
  registry.add(grpcTranscodeFilterType());
  registry.add(ipRestrictionFilterType());
  registry.add(jwtFilterType());
  registry.add(keyAuthFilterType());
  registry.add(loadShedFilterType());
  registry.add(oauth2IntrospectionFilterType());
  registry.add(quotaFilterType());
  registry.add(rateLimitFilterType());
  registry.add(headersFilterType());
  registry.add(requestIdFilterType());
  registry.add(requestValidationFilterType());
  registry.add(requestSizeLimitFilterType());
  registry.add(staticResponseFilterType());
  registry.add(trafficMirrorFilterType());
  registry.add(requestTransformerFilterType());
  registry.add(responseTransformerFilterType());
}

}  // namespace portico::filters
