#pragma once
// One client connection over HTTP/1.1: reads requests in order (pipelining included), runs the
// route's filters, proxies to the upstream with retries and timeouts, streams bodies both ways
// with bounded buffers, and answers every error itself as JSON with the request id.
#include "proxy/worker_context.h"

namespace portico::proxy {

// Spawns the session coroutine on the worker's loop; it owns the socket until it closes.
void startHttpSession(WorkerContext& worker, Socket socket);

}  // namespace portico::proxy
