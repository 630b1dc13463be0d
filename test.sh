#!/usr/bin/env bash
# Run the whole test suite on a fresh machine: installs uv and Chromium if
# missing, syncs the workspace, checks lint, runs pytest.
#   bash test.sh            lint, pyright, quick + browser + integration tests
#   bash test.sh --slow     also the long stress cases (marker "slow"), serially
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
uv run pyright

slow=""
if [ "${1:-}" = "--slow" ]; then
    slow=1
    shift
fi
# The quick tests run in parallel, one file per worker at a time (each worker
# has its own SeaweedFS, ports and tmp dirs). PYTEST_WORKERS=0 runs serially.
workers="${PYTEST_WORKERS:-auto}"
parallel=()
if [ "$workers" != "0" ]; then
    parallel=(-n "$workers" --dist loadfile)
fi
if [ -z "$slow" ]; then
    exec uv run pytest -m "not slow" -q -ra "${parallel[@]}" "$@"
fi
uv run pytest -m "not slow" -q -ra "${parallel[@]}" "$@"
# The stress cases measure timings under load: alone, one at a time.
exec uv run pytest -m slow -q -ra "$@"
