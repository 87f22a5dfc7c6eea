"""What the benchmarks share: `launcher run --yes` of the demo bed's example stage, in this
process (interpreter start-up not counted), with the bed's environment only."""

from __future__ import annotations

import contextlib
import io
import os

from launcher.cli import main as launcher_main
from launcher.demo.bed import STAGE, DemoBed


def launch_example(bed: DemoBed, run_id: str) -> None:
    """Launch the example stage as run ``run_id``; SystemExit with the output's tail when
    the command fails. The caller's environment is restored afterwards."""
    argv = ["run", "--stage", STAGE, "--yes", "--run-id", run_id, "--code-dir",
            str(bed.code_dir)]
    saved, sink = dict(os.environ), io.StringIO()
    os.environ.clear()
    os.environ.update(bed.env())
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            code = launcher_main(argv)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    if code != 0:
        raise SystemExit(f"launcher run failed ({code}):\n{sink.getvalue()[-2000:]}")
