#!/usr/bin/env bash
# Runs the deterministic simulation (src/sim) over many seeds, in release.
#
#   sim/run.sh --seeds 100000 [--from S] [--jobs J] [--steps K]
#   sim/run.sh --seed S            replay one seed (prints its outcome)
#   sim/run.sh --planted           how soon the checks catch a planted bug
#
# A failing seed prints its number and the broken invariant; replay it with
# --seed. The same runner runs 300 seeds in the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo test --release --quiet --test simulation -- "$@"
