#!/usr/bin/env bash
# Runs every check and test of kgate, installing what the tests need first.
#
# Needs: the Rust toolchain, a C compiler, perl and make (for the vendored OpenSSL), Python 3,
# Node.js with npm; as root (or with kcat already installed) for Debian's kcat.
# Installs, each only when missing, outside the repository (or in ./.venv):
#   - kafka-python and aiokafka into ./.venv (the Python clients of the end-to-end tests),
#   - kafkajs into ${XDG_CACHE_HOME:-$HOME/.cache}/kgate/node (the Node client),
#   - kcat, Debian's package (librdkafka 2.0, an old client),
#   - tansu, a Kafka-compatible broker, with `cargo install` (15-30 minutes once on 2 cores),
#   - chromium (Debian's) and playwright-core into ${XDG_CACHE_HOME:-$HOME/.cache}/kgate/browser
#     (the lab views' browser test).
# `./test.sh --deps-only` installs and stops there.
set -euo pipefail
cd "$(dirname "$0")"

KAFKA_PYTHON_VERSION=3.0.12
AIOKAFKA_VERSION=0.14.0
KAFKAJS_VERSION=2.2.4
TANSU_VERSION=0.6.0

if ! .venv/bin/python -c "import kafka, sys; sys.exit(kafka.__version__ != '$KAFKA_PYTHON_VERSION')" 2>/dev/null; then
  echo "==> creating .venv with kafka-python $KAFKA_PYTHON_VERSION"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "kafka-python==$KAFKA_PYTHON_VERSION"
fi
if ! .venv/bin/python -c "import aiokafka, sys; sys.exit(aiokafka.__version__ != '$AIOKAFKA_VERSION')" 2>/dev/null; then
  echo "==> installing aiokafka $AIOKAFKA_VERSION into .venv"
  .venv/bin/pip install --quiet --disable-pip-version-check "aiokafka==$AIOKAFKA_VERSION"
fi
export KGATE_PYTHON="$PWD/.venv/bin/python"

node_dir="${XDG_CACHE_HOME:-$HOME/.cache}/kgate/node"
if ! node -e "process.exit(require('$node_dir/node_modules/kafkajs/package.json').version === '$KAFKAJS_VERSION' ? 0 : 1)" 2>/dev/null; then
  echo "==> installing kafkajs $KAFKAJS_VERSION into $node_dir"
  mkdir -p "$node_dir"
  npm install --prefix "$node_dir" --no-save --no-audit --no-fund --loglevel=error "kafkajs@$KAFKAJS_VERSION"
fi
export KGATE_NODE_MODULES="$node_dir/node_modules"

if ! command -v kcat >/dev/null; then
  echo "==> apt-get install kcat"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat
fi

export PATH="$PATH:${CARGO_HOME:-$HOME/.cargo}/bin"
if ! tansu --version 2>/dev/null | grep -qF "$TANSU_VERSION"; then
  echo "==> cargo install tansu $TANSU_VERSION (15-30 minutes once)"
  cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore --quiet
fi
export KGATE_TANSU="$(command -v tansu)"

# The lab views' browser test: Debian's chromium and playwright-core.
if [ ! -x /usr/bin/chromium ]; then
  echo "==> apt-get install chromium"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium
fi
# A prefix of its own, so that npm never prunes kafkajs (or this) as extraneous.
browser_dir="${XDG_CACHE_HOME:-$HOME/.cache}/kgate/browser"
if [ ! -f "$browser_dir/node_modules/playwright-core/package.json" ]; then
  echo "==> installing playwright-core into $browser_dir"
  mkdir -p "$browser_dir"
  npm install --prefix "$browser_dir" --no-audit --no-fund --loglevel=error "playwright-core@1"
fi
export KGATE_PLAYWRIGHT_CORE="$browser_dir/node_modules/playwright-core"
export KGATE_BROWSER_TESTS=1

if [ "${1:-}" = "--deps-only" ]; then
  echo "==> dependencies installed"
  exit 0
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> cargo test"
cargo test --workspace --locked
echo "==> all tests passed"
