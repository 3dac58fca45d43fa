#include "filters/auth_reply.h"

#include "core/error_body.h"

namespace portico::filters {

api::FilterStatus refuse(api::RequestContext& ctx, api::AuthFailure why,
                         std::string_view www_authenticate) {
  const bool unauthenticated =
      why == api::AuthFailure::MissingCredentials || why == api::AuthFailure::InvalidCredentials;
  const int status = unauthenticated ? 401 : 403;
  std::string_view message;
  switch (why) {
    case api::AuthFailure::MissingCredentials:
      message = "no credentials found in the request";
      break;
    case api::AuthFailure::InvalidCredentials:
      message = "invalid credentials";
      break;
    case api::AuthFailure::AddressDenied:
      message = "your address is not allowed";
      break;
    default:
      message = "you cannot consume this service";
  }
  ctx.auth_failure = why;
  replyError(ctx, status, message);
  if (unauthenticated && !www_authenticate.empty())
    ctx.local_reply.headers.add("WWW-Authenticate", www_authenticate);
  return unauthenticated ? api::FilterStatus::AuthFailed : api::FilterStatus::Reply;
}

api::FilterStatus replyError(api::RequestContext& ctx, int status, std::string_view message) {
  ctx.error = std::string(message);
  auto& reply = ctx.local_reply;
  reply = api::LocalReply{};
  reply.status = status;
  reply.headers.add("Content-Type", "application/json");
  reply.body = errorBody(status, message, ctx.request_id);
  return api::FilterStatus::Reply;
}

api::FilterStatus unavailable(api::RequestContext& ctx, std::string_view message) {
  return replyError(ctx, 503, message);
}

void eraseQueryParam(std::string& query, const QueryParam& p) {
  if (!p.found) return;
  std::size_t begin = p.begin, end = p.end;
  if (end < query.size()) {
    ++end;  // the '&' after it
  } else if (begin > 0) {
    --begin;  // the '&' before it
  }
  query.erase(begin, end - begin);
}

void maskQueryParam(std::string& target, std::string_view name) {
  const auto q = target.find('?');
  if (q == std::string::npos) return;
  std::size_t pos = q + 1;
  while (pos <= target.size()) {
    std::size_t amp = target.find('&', pos);
    if (amp == std::string::npos) amp = target.size();
    const std::string_view pair = std::string_view(target).substr(pos, amp - pos);
    const auto eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) {
      target.replace(pos + eq + 1, pair.size() - eq - 1, "***");
      amp = target.find('&', pos);
      if (amp == std::string::npos) amp = target.size();
    }
    pos = amp + 1;
  }
}

}  // namespace portico::filters
