"""Process-level behaviour: lazy imports and a clean interpreter exit."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path


def _run_script(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(source))
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )


def test_import_loads_no_optional_libraries(tmp_path: Path) -> None:
    """Importing incgraph.parallel imports neither numba nor numpy nor joblib."""
    done = _run_script(
        tmp_path,
        """
        import sys
        import incgraph.parallel
        print(sorted(m for m in ("numba", "numpy", "joblib") if m in sys.modules))
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_interpreter_exits_after_using_every_target(tmp_path: Path) -> None:
    """A script that used pooled threads, async and processes exits normally, no hang."""
    done = _run_script(
        tmp_path,
        """
        import asyncio
        import threading
        from incgraph.parallel import Batch, inbatch_parallel

        def double(x):
            return 2 * x

        class Work(Batch):
            def _init(self, *args, **kwargs):
                return self.data

            @inbatch_parallel(init="_init", n_workers=4)
            def threads(self, x):
                return x

            @inbatch_parallel(init="_init", target="async")
            async def coroutines(self, x):
                await asyncio.sleep(0)
                return x

            @inbatch_parallel(init="_init", target="nogil", n_workers=3)
            def nogil(self):
                return double

            @inbatch_parallel(init="_init", target="mpc", n_workers=2)
            def mpc(self):
                return double

        work = Work(list(range(100)))
        assert work.threads() == list(range(100))
        assert work.coroutines() == list(range(100))
        assert work.nogil() == work.mpc() == [2 * x for x in range(100)]
        assert threading.active_count() > 1  # pool threads are alive at exit
        print("done")
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "done"
