#!/usr/bin/env bash
# Run the whole test suite on a fresh machine: installs uv and Chromium if
# missing, syncs the workspace, checks lint, runs pytest.
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

uv sync --all-packages --quiet
uv run ruff check .
uv run ruff format --check .

marker="not slow"
if [ "${1:-}" = "--slow" ]; then
    marker=""
    shift
fi
exec uv run pytest -m "$marker" -q -ra "$@"
