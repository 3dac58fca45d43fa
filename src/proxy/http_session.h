#pragma once
// One client connection over HTTP/1.1: reads requests in order (pipelining included), runs the
// route's filters, proxies to the upstream with retries and timeouts, streams bodies both ways
// with bounded buffers, and answers every error itself as JSON with the request id.
#include <memory>

#include "proxy/worker_context.h"
#include "tls/server_context.h"

namespace portico::proxy {

// Spawns the session coroutine on the worker's loop; it owns the socket until it closes.
// With `tls`, the session first completes a TLS handshake (within header_timeout).
void startHttpSession(WorkerContext& worker, Socket socket,
                      std::shared_ptr<const tls::ServerContext> tls = nullptr);

}  // namespace portico::proxy
