#!/usr/bin/env bash
# Starts the demo services and Portico on examples/quickstart.yaml (gateway, Admin API and the
# developer portal), prints what to try, and serves in the foreground until Ctrl-C (which
# drains Portico and stops the demo services). Each run starts from a fresh database that the
# file's entities seed (the file's store setting), so the demo always starts the same.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/release/portico
CONFIG=examples/quickstart.yaml

for port in 8080 8088 9001 9002 9901; do
  if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then
    echo "port $port is already in use; stop whatever listens there first" >&2
    exit 1
  fi
done

rm -f build/quickstart.db build/quickstart.db-wal build/quickstart.db-shm
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

The developer portal: open http://127.0.0.1:8088/portal/ — sign up, create an application,
subscribe it to "users" under the free plan, create a key, then:

  curl -i -H 'apikey: <your key>' http://127.0.0.1:8080/api/users/7   # 200; without it 401
  curl -s -H 'Authorization: Bearer quickstart-demo-token' \
    http://127.0.0.1:9901/admin/v1/subscriptions                  # the operator's view
  curl -s -X PATCH -H 'Authorization: Bearer quickstart-demo-token' \
    -H 'Content-Type: application/merge-patch+json' -d '{"state": "active"}' \
    http://127.0.0.1:9901/admin/v1/subscriptions/<id>             # approve a partner subscription

Change routes, upstreams and plans through the Admin API (docs/admin-api.md) or edit
examples/quickstart.yaml and run `make run` again. Ctrl-C drains and stops.

MSG
"$BIN" run -c "$CONFIG"
