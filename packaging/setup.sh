#!/usr/bin/env bash
# Installs the tools that build and check corelog's Debian package:
# cargo-deb, pinned so every machine builds the same package layout.
# dpkg-deb comes with dpkg (every Debian system has it); systemd-analyze
# (the systemd package) is optional: tests/packaging.rs verifies the unit
# with it when present.
#
# Idempotent: does nothing when the pinned cargo-deb is already installed.
# Called by .ci/run before the tests.
set -euo pipefail

CARGO_DEB_VERSION=3.8.0

installed=$(cargo deb --version 2>/dev/null || true)
if [[ "$installed" == *"$CARGO_DEB_VERSION"* ]]; then
    echo "cargo-deb $CARGO_DEB_VERSION is installed"
    exit 0
fi
echo "installing cargo-deb $CARGO_DEB_VERSION (was: ${installed:-none})"
cargo install --locked cargo-deb --version "$CARGO_DEB_VERSION"
