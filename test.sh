#!/usr/bin/env bash
# Run the whole test suite on a fresh machine: installs uv, Chromium, npm and
# Biome if missing, syncs the workspace, checks lint (Python and JavaScript)
# and types, runs pytest.
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

# Bytecode compiled once, at install: where PYTHONDONTWRITEBYTECODE is set
# (our CI machines set it), every Python process the tests start (servers,
# `datasette files sync` runs, pytest workers) would otherwise compile
# Datasette, botocore and the rest from source again, about 2 s of CPU each.
export UV_COMPILE_BYTECODE=1
uv sync --all-packages --quiet
uv run python -m compileall -q -j 0 packages testing tests-integration
uv run ruff check .
uv run ruff format --check .
"$biome" lint --error-on-warnings
uv run pyright

slow=""
if [ "${1:-}" = "--slow" ]; then
    slow=1
    shift
fi
# The quick tests run in parallel, one file per worker at a time (each worker
# has its own SeaweedFS, ports and tmp dirs). One worker more than there are
# CPUs: much of a test's time is spent waiting for a server or a browser
# (on 2 cores: 2:40 with 3 workers, 3:05 with 2). PYTEST_WORKERS=0 runs
# serially.
workers="${PYTEST_WORKERS:-$(($(nproc) + 1))}"
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
