#!/usr/bin/env bash
# Installs everything Portico needs to build, test and benchmark on Debian 12.
# Idempotent: only missing packages are installed.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config lld clang-format clang libclang-rt-14-dev
  libboost1.81-dev libyaml-cpp-dev nlohmann-json3-dev libsimdjson-dev libre2-dev
  zlib1g-dev libbrotli-dev libzstd-dev brotli zstd libvalijson-dev libxml2-dev
  libprotobuf-dev protobuf-compiler python3-protobuf libsqlite3-dev sqlite3 etcd-server etcd-client
  libspdlog-dev libfmt-dev libcli11-dev libssl-dev libnghttp2-dev libgtest-dev libgmock-dev libbenchmark-dev
  curl wrk nginx-light haproxy python3 python3-pytest python3-pytest-timeout python3-websockets python3-yaml procps iproute2 openssl
  nghttp2-client nghttp2-server python3-h2 python3-grpcio whois libcrypt-dev nodejs liburing-dev
  redis-server redis-sentinel libhiredis-dev prometheus chromium
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# Keep package init scripts from starting nginx/haproxy daemons during installation.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod +x "$policy"
  created_policy=1
fi
cleanup() { if [ "$created_policy" = 1 ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT
$SUDO apt-get update -qq
$SUDO apt-get install -y --no-install-recommends "${missing[@]}"
