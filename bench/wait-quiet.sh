#!/usr/bin/env bash
# Waits until no rustc of another directory runs (the build machines are
# shared), polling every 15 s for at most 10 minutes, then prints `uptime`.
# Usage: bench/wait-quiet.sh [own-target-dir]   (rustc writing there is ours)
own=${1:-$(cd "$(dirname "$0")/.." && pwd)/target}
others() {
  for p in $(pgrep -x rustc); do
    out=$(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null | grep -o -- '--out-dir [^ ]*' | cut -d' ' -f2)
    case "$out" in "$own"/*) ;; *) echo "$p $out" ;; esac
  done
}
for _ in $(seq 1 40); do
  busy=$(others)
  [ -z "$busy" ] && break
  sleep 15
done
if [ -n "$(others)" ]; then echo "still busy after 10 min: $(others | wc -l) foreign rustc"; fi
echo "uptime: $(uptime)"
