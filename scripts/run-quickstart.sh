#!/usr/bin/env bash
# Starts the demo services and Portico on examples/quickstart.yaml, prints what to try, and
# serves in the foreground until Ctrl-C (which drains Portico and stops the demo services).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/release/portico
CONFIG=examples/quickstart.yaml

for port in 8080 9001 9002 9901; do
  if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then
    echo "port $port is already in use; stop whatever listens there first" >&2
    exit 1
  fi
done

/usr/bin/python3 examples/demo_services.py users:9001 orders:9002 &
DEMO_PID=$!
# Also on SIGTERM or SIGINT (an untrapped signal would skip the EXIT trap).
trap 'kill $DEMO_PID 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM

cat <<'MSG'

Portico is starting on http://127.0.0.1:8080 (admin on http://127.0.0.1:9901). Try:

  curl -i http://127.0.0.1:8080/users/7              # proxied to the users service
  curl -s http://127.0.0.1:8080/orders/42            # {id} rewritten to /v1/orders/42
  curl -s http://127.0.0.1:8080/profile/7            # composed: users and orders at once
  curl -s http://127.0.0.1:8080/card/7               # reshaped by response-transformer
  curl -si http://127.0.0.1:8080/card/7 | grep -i -e ^cache-status -e ^age   # again: a cache hit
  curl -s -X POST http://127.0.0.1:9901/cache/purge -d '{"prefix": "/card/"}'   # purged
  curl -i http://127.0.0.1:8080/status               # answered by Portico itself
  curl -i -X DELETE http://127.0.0.1:8080/users/7    # 405 with Allow, as JSON
  curl -i --http2-prior-knowledge http://127.0.0.1:8080/users/7   # the same over HTTP/2 (h2c)
  for i in 1 2 3 4 5 6; do curl -s -o /dev/null -w '%{http_code} ' \
    http://127.0.0.1:8080/api/orders; done; echo     # rate-limited: 5 per 10 s, then 429
  curl -s http://127.0.0.1:9901/upstreams            # target health, circuit breakers
  curl -s http://127.0.0.1:9901/metrics | head -20   # Prometheus metrics
  open http://127.0.0.1:9901/dashboard/ in a browser  # live dashboard

Edit examples/quickstart.yaml and save: Portico reloads it. Ctrl-C drains and stops.

MSG
"$BIN" run -c "$CONFIG"
