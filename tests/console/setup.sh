#!/usr/bin/env bash
# Installs the headless browser tests/console.rs drives: Debian's
# `chromium` package, through the Chrome DevTools Protocol over a pipe
# (--remote-debugging-pipe; no WebDriver, no browser download).
#
# Idempotent: does nothing when a chromium binary is already on PATH.
# Called by .ci/run before the tests; by hand: bash tests/console/setup.sh
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
echo "tests/console/setup.sh: installing chromium (Debian's package)"
sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# fonts-dejavu-core: text in the screenshots renders with a real font.
$sudo apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
