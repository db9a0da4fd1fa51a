#!/usr/bin/env bash
# Runs every check and test of kgate, installing what the tests need first.
#
# Needs: the Rust toolchain, a C compiler, perl and make (for the vendored OpenSSL), Python 3.
# Installs: kafka-python into ./.venv (for the kafka-python end-to-end test).
set -euo pipefail
cd "$(dirname "$0")"

KAFKA_PYTHON_VERSION=3.0.12
if ! .venv/bin/python -c "import kafka, sys; sys.exit(kafka.__version__ != '$KAFKA_PYTHON_VERSION')" 2>/dev/null; then
  echo "==> creating .venv with kafka-python $KAFKA_PYTHON_VERSION"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "kafka-python==$KAFKA_PYTHON_VERSION"
fi
export KGATE_PYTHON="$PWD/.venv/bin/python"

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> cargo test"
cargo test --workspace --locked
echo "==> all tests passed"
