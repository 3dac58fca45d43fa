#!/usr/bin/env bash
# make bench: Portico vs nginx vs HAProxy; see bench/README.md. Options go to run.py.
set -euo pipefail
cd "$(dirname "$0")/.."
exec /usr/bin/python3 bench/run.py "$@"
