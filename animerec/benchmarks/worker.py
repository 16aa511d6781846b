"""One measuring process: `python -m animerec.benchmarks.worker ROLE PLAN.json RESULT.json`.

The runner starts one process per role, one after another, so that no measurement competes with
another for the CPU and each process's memory is its own: the pipeline's peak RSS is never
inflated by TensorFlow, which only the `keras` role imports.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from animerec.benchmarks.machine import peak_rss_mb


def _role(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    # Imported on demand: the keras role must not pay for (or load) the pipeline, and vice versa.
    if name == "pipeline":
        from animerec.benchmarks import pipeline_runs

        return pipeline_runs.run
    if name == "limits":
        from animerec.benchmarks import limits

        return limits.run
    if name == "keras":
        from animerec.benchmarks import report_loop

        return report_loop.run
    raise SystemExit(f"unknown worker role {name!r} (pipeline, limits, keras)")


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    role, plan_path, result_path = argv
    logging.basicConfig(level=logging.WARNING, format=f"animerec bench {role}: %(message)s", stream=sys.stderr)
    plan = json.loads(Path(plan_path).read_text(encoding="utf-8"))
    result = _role(role)(plan)
    result["process_peak_rss_mb"] = peak_rss_mb()
    Path(result_path).write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
