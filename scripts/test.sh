#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian/Ubuntu machine, then run it.
#   - Debian's chromium for the real-browser demo test (apt; needs root or sudo)
#   - a virtualenv .venv with the CPU build of torch 2.13.0 and glean-hub[dev] (editable)
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k hub -x`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
    SUDO=$([ "$(id -u)" -eq 0 ] && echo "" || echo "sudo")
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
# Pin the CPU wheel of torch: an unpinned torch would pull a multi-GB CUDA build.
.venv/bin/pip install -q "torch==2.13.0" -e ".[dev]"
exec .venv/bin/python -m pytest "$@"
