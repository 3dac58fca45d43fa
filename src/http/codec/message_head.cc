#include "http/codec/message_head.h"

namespace portico::http {

void RequestHead::clear() {
  method.clear();
  target.clear();
  path.clear();
  query.clear();
  host.clear();
  version_minor = 1;
  headers.clear();
  framing = BodyFraming::None;
  content_length = 0;
  keep_alive = true;
  expect_continue = false;
  upgrade.clear();
}

void ResponseHead::clear() {
  status = 0;
  reason.clear();
  version_minor = 1;
  headers.clear();
  framing = BodyFraming::None;
  content_length = 0;
  keep_alive = true;
}

}  // namespace portico::http
