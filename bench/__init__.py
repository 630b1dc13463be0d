"""The benchmark harness (``uv run python -m bench.run``; docs/benchmarks.md).

Some sections start SeaweedFS with the test suite's own launcher (the root
``conftest.py``), which imports the shared test helpers in ``testing/``.
"""

import sys
from pathlib import Path

_TESTING = str(Path(__file__).resolve().parent.parent / "testing")
if _TESTING not in sys.path:
    sys.path.append(_TESTING)
