#!/usr/bin/env bash
# Writes cmake/startup-order.txt: the functions `portico` runs from exec until it is
# idle and serving, which the link places side by side (CMakeLists.txt, lld's
# --symbol-ordering-file). Why: the kernel maps 64 KiB of text around each page fault, and
# start-up code spread over the whole binary left two thirds of it resident in an idle process
# (docs/performance.md, "idle RSS"). A function missing from the list (new code since the last
# run) only lands elsewhere in the binary; rerun this after changing what start-up runs.
# Profile the release build, which is profile-guided (ADR 0021): PGO clones and splits
# functions under names (`.part`, `.cold`, `.isra`) that a plain build's list lacks.
#
# usage: scripts/startup-order.sh [path/to/portico]   (default build/release/portico)
# Runs the binary under valgrind's callgrind on three configs: the bench's plain pass-through,
# the same behind TLS, and the quick start (admin API, portal, SQLite store, filters), each
# until it is idle.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-build/release/portico}")
OUT=cmake/startup-order.txt
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

cat > "$WORK/plain.yaml" <<'EOF'
version: 1
server: { workers: 1, admin: { listen: "" }, watch_config: false }
listeners: [ { name: bench, listen: "127.0.0.1:18480" } ]
upstreams: [ { name: origin, targets: [ "127.0.0.1:18481" ] } ]
routes: [ { name: all, match: { path_prefix: / }, upstream: origin } ]
EOF
# The same behind TLS (the bench's HTTPS and h2 rows): OpenSSL is linked statically (ADR 0020),
# so its start-up (library init, the context, the certificate and key) is placed here too.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/key.pem" \
  -out "$WORK/cert.pem" -days 2 -subj /CN=startup.test 2> /dev/null
sed -e 's|listen: "127.0.0.1:18480" }|listen: "127.0.0.1:18482", tls: { certificates: [ { cert: "'"$WORK"'/cert.pem", key: "'"$WORK"'/key.pem" } ], min_version: "1.3" } }|' \
  "$WORK/plain.yaml" > "$WORK/tls.yaml"
grep -q cert.pem "$WORK/tls.yaml" || { echo "the TLS config was not made" >&2; exit 1; }
# The quick start with its store in the scratch directory and its ports moved off the demo's.
sed -e "s|build/quickstart.db|$WORK/quickstart.db|" \
    -e 's|127.0.0.1:8080|127.0.0.1:18490|g; s|127.0.0.1:8088|127.0.0.1:18491|g' \
    -e 's|127.0.0.1:9901|127.0.0.1:18492|g' examples/quickstart.yaml > "$WORK/quickstart.yaml"

profile() {  # $1: config; callgrind's output in $WORK/$2; $3: the port a readiness check opens
  # 20 s covers start-up under callgrind's slowdown on this project's 2-core machines.
  timeout -s INT 20 valgrind --tool=callgrind --demangle=no --callgrind-out-file="$WORK/$2" \
    "$BIN" run -c "$1" > "$WORK/$2.log" 2>&1 &
  local pid=$!
  # A readiness check, as a load balancer's TCP check or the bench makes: connect and close.
  # The accept path it runs (over TLS: the context's first SSL object and handshake read) is
  # part of an idle process too.
  for _ in $(seq 1 190); do
    if (exec 3<> "/dev/tcp/127.0.0.1/$3") 2> /dev/null; then break; fi
    sleep 0.1
  done
  wait "$pid" || true
  test -s "$WORK/$2" || { echo "callgrind wrote nothing; see $WORK/$2.log" >&2; exit 1; }
}
profile "$WORK/plain.yaml" plain.out 18480
profile "$WORK/tls.yaml" tls.out 18482
profile "$WORK/quickstart.yaml" quickstart.out 18490

# Every function callgrind saw run in the portico object (names are compressed: "(id) name"
# the first time, "(id)" after; "'N" marks a recursion level, not another symbol). The plain
# config's functions first, then what only TLS ran, then what only the quick start ran: a
# config that uses less then touches fewer 64 KiB blocks.
/usr/bin/python3 - "$WORK/plain.out" "$WORK/tls.out" "$WORK/quickstart.out" > "$WORK/order.txt" <<'EOF'
import re, sys
seen = set()
for path in sys.argv[1:]:
    objects, functions, current, names = {}, {}, "", set()
    for line in open(path, errors="replace"):
        m = re.match(r"^(c?ob|c?fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if not m:
            continue
        kind, ident, name = m.groups()
        table = objects if kind.endswith("ob") else functions
        if name:
            table[ident] = name
        if kind == "ob":
            current = objects[ident]
        elif kind == "fn" and current.endswith("/portico"):
            names.add(re.sub(r"'\d+$", "", functions[ident]))
    for name in sorted(names - seen):
        if name.startswith("_Z") or re.match(r"^[A-Za-z_][\w.]*$", name):
            print(name)
    seen |= names
EOF
mv "$WORK/order.txt" "$OUT"
echo "$OUT: $(wc -l < "$OUT") functions"
