#!/usr/bin/env bash
# Builds corelog as it was at COMMIT (an earlier release, which
# tests/upgrade.rs upgrades a running cluster from) and prints the path of
# its binary. Cached under target/upgrade-from/COMMIT: the first run costs
# one debug build of that commit (about two minutes here), later runs
# nothing.
#
# The sources come from this clone's history (git archive), so a shallow
# clone cannot build it: the script says so and fails.
set -euo pipefail

commit=${1:?usage: old-binary.sh COMMIT}
root=$(cd "$(dirname "$0")/../.." && pwd)
out="$root/target/upgrade-from/$commit"
bin="$out/target/debug/corelog"

if [[ -x $bin ]]; then
    echo "$bin"
    exit 0
fi
if ! git -C "$root" cat-file -e "$commit^{commit}" 2>/dev/null; then
    echo "old-binary.sh: commit $commit is not in this clone's history" \
        "(a shallow clone? run: git fetch --unshallow)" >&2
    exit 1
fi
rm -rf "$out/src"
mkdir -p "$out/src"
git -C "$root" archive "$commit" | tar -x -C "$out/src"
# A debug build without debug info: the old binary only has to run, and
# this is several times faster to build than the release profile.
"${CARGO:-cargo}" build --locked --quiet --bin corelog \
    --manifest-path "$out/src/Cargo.toml" \
    --target-dir "$out/target" \
    --config 'profile.dev.debug=0' >&2
echo "$bin"
