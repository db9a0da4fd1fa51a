#!/usr/bin/env bash
# Runs every check and test of kgate, installing what the tests need first.
#
# Needs: the Rust toolchain, a C compiler, perl and make (for the vendored OpenSSL), Python 3.
# Installs: kafka-python into ./.venv (for the kafka-python end-to-end test); chromium and
# playwright-core (for the lab views' browser test).
set -euo pipefail
cd "$(dirname "$0")"

KAFKA_PYTHON_VERSION=3.0.12
if ! .venv/bin/python -c "import kafka, sys; sys.exit(kafka.__version__ != '$KAFKA_PYTHON_VERSION')" 2>/dev/null; then
  echo "==> creating .venv with kafka-python $KAFKA_PYTHON_VERSION"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "kafka-python==$KAFKA_PYTHON_VERSION"
fi
export KGATE_PYTHON="$PWD/.venv/bin/python"

# The lab views' browser test: Debian's chromium and playwright-core, kept outside the repo.
KGATE_NODE="${XDG_CACHE_HOME:-$HOME/.cache}/kgate/node"
if [ ! -x /usr/bin/chromium ]; then
  echo "==> installing chromium"
  if [ "$(id -u)" -eq 0 ]; then apt-get install -y --no-install-recommends chromium
  else sudo apt-get install -y --no-install-recommends chromium; fi
fi
if [ ! -f "$KGATE_NODE/node_modules/playwright-core/package.json" ]; then
  echo "==> installing playwright-core into $KGATE_NODE"
  mkdir -p "$KGATE_NODE"
  npm install --prefix "$KGATE_NODE" --no-audit --no-fund --silent playwright-core@1
fi
export KGATE_BROWSER_TESTS=1

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> cargo test"
cargo test --workspace --locked
echo "==> all tests passed"
