#!/usr/bin/env bash
# Trains the profile that the release build is optimised with (ADR 0021): builds `portico`
# instrumented (build/pgo-gen, PORTICO_PGO=generate), runs it under the bench's own load for
# a few seconds per protocol (HTTP/1.1 with 100-byte and 16 KiB answers, HTTPS, h2c, h2 and
# the key-auth + rate-limit + access-log stack) and leaves the counts in build/pgo/profile.
# `make build` runs this once per build tree (build/pgo/trained); `make pgo` runs it again.
#
# A failed training is not a failed build: the release build then compiles without a profile
# (as fast as before PGO) and this says so loudly.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
GEN=build/pgo-gen
PROFILE=$ROOT/build/pgo/profile
STAMP=build/pgo/trained
LOG=build/pgo/train.log
JOBS=${JOBS:-$(nproc)}
mkdir -p build/pgo
: > "$LOG"

fail() {
  echo "pgo-train: $1 (see $LOG); the release build goes on without a profile" >&2
  echo "failed: $1" > "$STAMP"
  exit 0
}

echo "pgo-train: building the instrumented portico in $GEN"
if [ ! -f "$GEN/build.ninja" ]; then
  cmake -S . -B "$GEN" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPORTICO_BUILD_TESTS=OFF \
    -DPORTICO_BUILD_BENCH=OFF -DPORTICO_PGO=generate -DPORTICO_PGO_DIR="$PROFILE" >> "$LOG" 2>&1 ||
    fail "configuring $GEN failed"
fi
cmake --build "$GEN" -j"$JOBS" --target portico >> "$LOG" 2>&1 || fail "building $GEN failed"

# Counts from an earlier training would add up with this one's.
rm -rf "$PROFILE"
mkdir -p "$PROFILE"
echo "pgo-train: running it under load (about a minute)"
# Bounded, as every step of the build: a stuck load ends the training, not the build.
BENCH=(timeout -k 10 300 /usr/bin/python3 bench/run.py --portico "$GEN/portico" --peers ""
  --rounds 1 --warmup 1 --duration 3 --base-port 18780)
# A load that stops early leaves the counts of what ran, which is still a profile: warn and go
# on. (With no peers the bench runs Portico alone, without its byte relays.)
for rows in "--protocols http,https,h2c,h2,stack" "--protocols http --body 16k"; do
  # shellcheck disable=SC2086
  "${BENCH[@]}" $rows >> "$LOG" 2>&1 ||
    echo "pgo-train: the training load ($rows) stopped early (see $LOG); using what it ran" >&2
done

# Each process writes its counts when it exits normally (the bench stops Portico with SIGTERM).
count=$(find "$PROFILE" -name '*.gcda' | wc -l)
[ "$count" -gt 0 ] || fail "the instrumented portico wrote no profile"
echo "trained $(date -u +%FT%TZ) at $(git rev-parse --short HEAD 2> /dev/null || echo '?'): $count files" \
  > "$STAMP"
echo "pgo-train: $count profile files in $PROFILE"
