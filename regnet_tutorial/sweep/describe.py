"""What a results file holds and how it was made, computed from its lines: the record committed
beside a sweep as it grows (``python -m regnet_tutorial.sweep describe RESULTS.jsonl --out
RESULTS.json``).

Counts per space and replicate, the one training setting every line shares, the commits,
hardware, versions, process and thread counts the lines record, and the total CPU time (each
run's wall time times its torch threads). Keys it does not compute (a hand-written ``what`` or
``command``) are kept when it rewrites an existing record.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .plan import SweepError
from .results_file import ResultsFile
from .spaces import SPACE_NAMES, SPACES, check_space_names

COMPUTED = ("lines", "runs_per_space", "models_per_space", "second_seeds_per_space", "settings", "git_commit",
            "hardware", "versions", "num_processes", "torch_threads", "diverged", "cpu_time_s", "space_names")
"""The keys :func:`describe` computes; a committed record must agree with its file on each."""


def describe(records: Sequence[dict[str, Any]], name: str = "results") -> dict[str, Any]:
    """The computed part of a results file's record (:data:`COMPUTED`), from its lines."""
    if not records:
        raise SweepError(f"{name} holds no results; run `sweep run` first")
    for number, record in enumerate(records, start=1):
        check_space_names(record, f"{name} line {number}")
    settings = {json.dumps(r["settings"], sort_keys=True) for r in records}
    if len(settings) != 1:
        raise SweepError(f"{name} mixes {len(settings)} training settings; one file holds one sweep")
    runs = Counter((r["space"], r.get("replicate", 0)) for r in records)
    spaces = [s for s in SPACES if any(space == s for space, _ in runs)]
    return {
        "lines": len(records),
        "runs_per_space": {s: {f"replicate {k}": runs[s, k] for k in sorted({k for _, k in runs})} for s in spaces},
        "models_per_space": {s: runs[s, 0] for s in spaces},
        "second_seeds_per_space": {s: runs[s, 1] for s in spaces},
        "settings": json.loads(settings.pop()),
        "git_commit": sorted({r.get("git_commit", "unknown") for r in records}),
        "hardware": sorted({r.get("device", "unknown") for r in records}),
        "versions": [json.loads(v) for v in sorted({json.dumps(r.get("versions"), sort_keys=True) for r in records})],
        "num_processes": sorted({r.get("num_processes", 1) for r in records}),
        "torch_threads": sorted({r.get("torch_threads", 1) for r in records}),
        "diverged": sum(bool(r.get("diverged")) for r in records),
        "cpu_time_s": round(sum(r["wall_time_s"] * r.get("torch_threads", 1) for r in records), 1),
        "space_names": SPACE_NAMES,
    }


def describe_file(path: str | os.PathLike, out: str | os.PathLike | None = None) -> dict[str, Any]:
    """:func:`describe` of the file at ``path``; with ``out``, merged into the record there (its
    other keys kept) and written back atomically."""
    from ..util.atomic import write_json_atomic

    record = describe(ResultsFile(path).load(), str(path))
    if out is None:
        return record
    try:
        kept = json.loads(Path(out).read_text(encoding="utf-8")) if os.path.exists(out) else {}
    except (OSError, json.JSONDecodeError) as e:
        raise SweepError(f"cannot read {out} to update it ({e}); move it away or fix it") from None
    merged = {**kept, **record}
    write_json_atomic(out, merged)
    return merged
