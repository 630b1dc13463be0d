#!/usr/bin/env bash
# Run the whole test suite on a fresh machine: installs uv, Chromium, npm and
# Biome if missing, syncs the workspace, checks lint (Python and JavaScript),
# runs pytest.
#   bash test.sh            quick + browser + integration tests
#   bash test.sh --slow     also the long stress cases (marker "slow")
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v uv >/dev/null 2>&1; then
    python3 -m pip install --quiet uv
fi
if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = "0" ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "warning: /usr/bin/chromium missing and not root; browser tests will fail" >&2
    fi
fi

if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
    else
        echo "error: npm is missing (it installs Biome, the JavaScript linter); install Node.js and npm" >&2
        exit 1
    fi
fi
# Biome lints the browser JavaScript (config: biome.json). Pinned; installed
# into .tools/ from the npm registry when missing or at another version.
BIOME_VERSION=2.6.8
biome=.tools/node_modules/.bin/biome
if [ "$("$biome" --version 2>/dev/null)" != "Version: $BIOME_VERSION" ]; then
    npm install --prefix .tools --no-save --no-audit --no-fund --silent \
        "@biomejs/biome@$BIOME_VERSION"
fi

uv sync --all-packages --quiet
uv run ruff check .
uv run ruff format --check .
"$biome" lint --error-on-warnings

marker="not slow"
if [ "${1:-}" = "--slow" ]; then
    marker=""
    shift
fi
exec uv run pytest -m "$marker" -q -ra "$@"
