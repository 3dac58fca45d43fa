#pragma once
// One client connection over HTTP/1.1: reads requests in order (pipelining included), runs the
// route's filters, proxies to the upstream with retries and timeouts, streams bodies both ways
// with bounded buffers, and answers every error itself as JSON with the request id.
#include <memory>

#include "proxy/worker_context.h"
#include "tls/server_context.h"

namespace portico::proxy {

// Spawns the session coroutine on the worker's loop; it owns the socket until it closes.
// On a TLS listener the session first completes a TLS handshake (within header_timeout), and
// turns into HTTP/2 when ALPN chose h2; on a plain one, the HTTP/2 preface as the first bytes
// (h2c with prior knowledge) does the same. `listener` may be null (removed by a reload).
// `peer` is the client's address as accept() returned it; the socket comes from a listener
// opened by server::openListener (its options, TCP_NODELAY among them, are inherited).
void startHttpSession(WorkerContext& worker, Socket socket, const tcp::endpoint& peer,
                      const snapshot::Listener* listener);

}  // namespace portico::proxy
