"""Export the scripts users launch from the chapter notebooks that build them.

Code cells tagged ``export`` are concatenated, in notebook order, into a script; every
other cell (demos, plots) stays in the notebook. ``python -m regnet_tutorial.util.export``
(``make scripts``) rewrites ``scripts/``; ``--check`` writes nothing and exits with status 1
and a diff when a committed script differs from what its notebook exports.
"""

from __future__ import annotations

import difflib
import os
import sys
from pathlib import Path

import nbformat

from ..errors import RegNetTutorialError
from .atomic import write_text_atomic
from .cli import ArgumentParser, run_main

EXPORT_TAG = "export"
REPO_ROOT = Path(__file__).resolve().parents[2]
EXPORTS: dict[str, str] = {
    "scripts/train.py": "notebooks/05_training_with_accelerate.ipynb",
    "scripts/evaluate.py": "notebooks/06_evaluation.ipynb",
}
"""Script -> the notebook it is exported from (paths relative to the repository root)."""

_FOOTER = '\n\n\nif __name__ == "__main__":\n    main()\n'


class ExportError(RegNetTutorialError, ValueError):
    """A notebook cannot be exported (no tagged cells, notebook-only syntax in a tagged cell)."""


def exported_source(notebook: str | os.PathLike, display_name: str | None = None) -> str:
    """The script text exported from ``notebook``: a header, its ``export``-tagged code cells and
    a ``__main__`` guard calling ``main()`` (which an exported cell must define)."""
    notebook = Path(notebook)
    nb = nbformat.read(notebook, as_version=4)
    cells = [
        (i, cell.source.strip("\n")) for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and EXPORT_TAG in cell.get("metadata", {}).get("tags", [])
    ]
    if not cells:
        raise ExportError(f"{notebook} has no code cell tagged {EXPORT_TAG!r}; tag the cells that form the script.")
    for index, source in cells:
        for line in source.splitlines():
            if line.lstrip().startswith(("%", "!")):
                raise ExportError(
                    f"{notebook} cell {index} is tagged {EXPORT_TAG!r} but uses IPython syntax ({line.strip()!r}); "
                    "move that line into an untagged cell."
                )
    if not any(source.startswith("def main(") or "\ndef main(" in source for _, source in cells):
        raise ExportError(f"{notebook}: no exported cell defines main(); the script calls main().")
    name = display_name or notebook.name
    header = (
        f"# Generated from {name} by `make scripts`; do not edit.\n"
        "# Change the notebook's cells tagged 'export' instead, then run `make scripts`.\n"
    )
    return header + "\n\n\n".join(source for _, source in cells) + _FOOTER  # PEP 8: two blank lines


def export_all(root: str | os.PathLike = REPO_ROOT, check: bool = False) -> list[str]:
    """Regenerate every script of :data:`EXPORTS` under ``root``; with ``check``, write nothing and
    return unified diffs of the scripts that differ (an empty list when all are current)."""
    root = Path(root)
    missing = [notebook for notebook in EXPORTS.values() if not (root / notebook).is_file()]
    if missing:
        raise ExportError(f"{root} has no {missing[0]}: give --root the repository's root folder.")
    diffs = []
    for script, notebook in EXPORTS.items():
        expected = exported_source(root / notebook, display_name=notebook)
        target = root / script
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        if check:
            if current != expected:
                diffs.append("".join(difflib.unified_diff(
                    current.splitlines(keepends=True), expected.splitlines(keepends=True),
                    fromfile=f"{script} (committed)", tofile=f"{script} (exported from {notebook})",
                )) or f"{script} is missing\n")
            continue
        write_text_atomic(target, expected)
    return diffs


def main(argv: list[str] | None = None) -> int:
    """Command line: regenerate ``scripts/`` or, with ``--check``, report drift."""
    return run_main(_export, argv)


def _export(argv: list[str] | None) -> int:
    parser = ArgumentParser(prog="python -m regnet_tutorial.util.export",
                            description="Export scripts/ from the chapter notebooks.")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 with a diff if a script is stale")
    parser.add_argument("--root", default=str(REPO_ROOT), help="repository root (default: this checkout)")
    args = parser.parse_args(argv)
    diffs = export_all(args.root, check=args.check)
    if args.check:
        if diffs:
            sys.stdout.write("".join(diffs))
            print("Scripts differ from their notebooks: run `make scripts` and commit the result.", file=sys.stderr)
            return 1
        print(f"All {len(EXPORTS)} exported scripts are up to date.")
        return 0
    for script, notebook in EXPORTS.items():
        print(f"wrote {script} from {notebook}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
