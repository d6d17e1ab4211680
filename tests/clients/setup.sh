#!/usr/bin/env bash
# Installs and builds the old Kafka client libraries that
# tests/old_client_libraries.rs drives, from the package registries:
#   - kafka-python 2.0.2 from PyPI, in a virtualenv at target/clients/py;
#   - Sarama 1.22.1 and segmentio kafka-go 0.2.1 from Debian's packages
#     (golang-github-shopify-sarama-dev, golang-github-segmentio-kafka-go-dev)
#     with Debian's Go toolchain, built offline in GOPATH mode into
#     target/clients/go_old.
# Each step is skipped when its result is already there. Run by .ci/run;
# by hand: bash tests/clients/setup.sh
set -euo pipefail

cd "$(dirname "$0")/../.."
out=target/clients
mkdir -p "$out"

KAFKA_PYTHON_VERSION=2.0.2
if ! "$out/py/bin/python" -c "import kafka, sys; sys.exit(kafka.__version__ != '$KAFKA_PYTHON_VERSION')" 2>/dev/null; then
    echo "tests/clients/setup.sh: installing kafka-python $KAFKA_PYTHON_VERSION into $out/py"
    python3 -m venv "$out/py"
    "$out/py/bin/pip" install --quiet --disable-pip-version-check "kafka-python==$KAFKA_PYTHON_VERSION"
fi

go_packages=(golang-go golang-github-shopify-sarama-dev golang-github-segmentio-kafka-go-dev)
missing=()
for package in "${go_packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if ((${#missing[@]})); then
    echo "tests/clients/setup.sh: installing ${missing[*]}"
    sudo=""
    if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

source=tests/clients/go_old/main.go
if [[ ! -x "$out/go_old" || "$source" -nt "$out/go_old" ]]; then
    echo "tests/clients/setup.sh: building $out/go_old (Sarama 1.22, kafka-go 0.2)"
    # GOPATH mode against Debian's /usr/share/gocode: no module download.
    (cd tests/clients/go_old &&
        GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$PWD/../../../$out/gocache" \
            go build -o "../../../$out/go_old" . 2>"../../../$out/go_old.build.log") || {
        cat "$out/go_old.build.log" >&2
        exit 1
    }
fi
