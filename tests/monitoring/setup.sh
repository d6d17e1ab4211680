#!/usr/bin/env bash
# Installs promtool, which tests/monitoring.rs checks docs/monitoring/ with
# (`promtool check config`, `check rules`, `test rules`): Debian's
# prometheus package provides it. Idempotent: does nothing when promtool is
# on the PATH. Run by .ci/run; by hand: bash tests/monitoring/setup.sh
#
# Only the package's files are wanted: on a machine with systemd the
# package would also start a Prometheus server, so policy-rc.d refuses
# service starts for the length of the install.
set -euo pipefail

if command -v promtool >/dev/null 2>&1; then
    echo "tests/monitoring/setup.sh: $(promtool --version 2>&1 | head -1)"
    exit 0
fi

echo "tests/monitoring/setup.sh: installing Debian's prometheus package (promtool)"
sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
policy=/usr/sbin/policy-rc.d
added_policy=""
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 755 "$policy"
    added_policy=yes
fi
trap 'if [[ -n $added_policy ]]; then $sudo rm -f "$policy"; fi' EXIT
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
promtool --version 2>&1 | head -1
