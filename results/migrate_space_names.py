"""Rename the design spaces of committed results files to the paper's names (a one-off migration).

Until the spaces took the paper's names, the sweep wrote ``regnet`` for RegNetX and ``regnetx``
for RegNetX constrained without the parameter and activation limits. Now ``regnetx`` means
RegNetX, so a line's key alone cannot tell which space it holds. Lines written since carry
``"space_names": "paper"``; a line without that field is old, and this script renames its space
(``regnet -> regnetx``, ``regnetx -> regnetx_constrained_nolimits``) and adds the field. JSON
records beside the results (a sweep's ``.json``, the pilot's summary) are renamed the same way:
their ``models_per_space`` keys, ``retest_<space>`` and ``vs_longest_<space>`` columns,
``reference_space``, and the ``--spaces`` lists of their commands.

Nothing else in a line changes (its recorded ``model_seed`` and architecture stay, and the
renamed spaces keep their old random-stream names, so every line is still re-sampled and
re-trained as before). The script is idempotent: a migrated file is left as it is. Run it from
the repository root, after every process writing a file with the old code has finished (such a
process would not recognise the renamed lines as done)::

    python results/migrate_space_names.py                 # every .jsonl and .json under results/
    python results/migrate_space_names.py FILE [FILE...]  # only these
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from regnet_tutorial.sweep.spaces import OLD_NAMES, SPACE_NAMES
from regnet_tutorial.util.atomic import write_text_atomic

MARK = "space_names"
COLUMN_PREFIXES = ("retest_", "vs_longest_")
NOTE = ("spaces renamed to the paper's names by results/migrate_space_names.py: regnet -> regnetx, "
        "regnetx -> regnetx_constrained_nolimits; commands are shown with the new keys, which draw the "
        "same models and training seeds")


def migrate_line(record: dict[str, Any]) -> dict[str, Any] | None:
    """The renamed copy of one old results or sample line (``space_names`` after ``space``, the
    other keys in their order, sorted again if they were sorted), or ``None`` if it is new."""
    if record.get(MARK) is not None:
        return None
    out: dict[str, Any] = {}
    for key, value in record.items():
        out[key] = OLD_NAMES.get(value, value) if key == "space" else value
        if key == "space":
            out[MARK] = SPACE_NAMES
    out.setdefault(MARK, SPACE_NAMES)
    return dict(sorted(out.items())) if list(record) == sorted(record) else out


def _rename_key(key: str) -> str:
    if key in OLD_NAMES:
        return OLD_NAMES[key]
    for prefix in COLUMN_PREFIXES:
        if key.startswith(prefix) and key[len(prefix):] in OLD_NAMES:
            return prefix + OLD_NAMES[key[len(prefix):]]
    return key


def _rename_spaces_option(text: str) -> str:
    """``--spaces a,regnet`` -> ``--spaces a,regnetx`` (and ``--space``) inside a command string."""
    def one(match: re.Match[str]) -> str:
        names = ",".join(OLD_NAMES.get(n, n) for n in match.group(2).split(","))
        return match.group(1) + names

    return re.sub(r"(--spaces? +)([A-Za-z_,]+)", one, text)


def _rename(value: Any, key: str | None = None) -> Any:
    if isinstance(value, dict):
        return {_rename_key(k): _rename(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_rename(v, key) for v in value]
    if isinstance(value, str):
        if key in ("space", "reference_space"):
            return OLD_NAMES.get(value, value)
        return _rename_spaces_option(value)
    return value


def migrate_record(record: dict[str, Any]) -> dict[str, Any] | None:
    """The renamed copy of an old JSON record (a sweep's ``.json``, the pilot's summary), or
    ``None`` if it is new."""
    if record.get(MARK) is not None:
        return None
    return {**_rename(record), MARK: SPACE_NAMES, f"{MARK}_note": NOTE}


def migrate_jsonl(path: Path) -> tuple[int, int]:
    """Rename the old lines of a JSON-lines file in place; returns (renamed, lines)."""
    text = path.read_text(encoding="utf-8")
    lines, renamed = [], 0
    for line in text.splitlines():
        if not line.strip():
            continue
        new = migrate_line(json.loads(line))
        if new is not None:
            renamed += 1
            line = json.dumps(new, allow_nan=True)
        lines.append(line)
    if renamed:
        write_text_atomic(path, "".join(line + "\n" for line in lines))
    return renamed, len(lines)


def migrate_json(path: Path) -> bool:
    """Rename an old JSON record in place, written as it was (2-space indent; keys sorted and
    no final newline if so written); returns whether it was old."""
    text = path.read_text(encoding="utf-8")
    record = json.loads(text)
    new = migrate_record(record) if isinstance(record, dict) else None
    if new is not None:
        sort = text.rstrip("\n") == json.dumps(record, indent=2, sort_keys=True)
        write_text_atomic(path, json.dumps(new, indent=2, sort_keys=sort) + ("\n" if text.endswith("\n") else ""))
    return new is not None


def main(argv: list[str]) -> int:
    root = Path(__file__).resolve().parent
    paths = [Path(a) for a in argv] or sorted(p for p in root.rglob("*") if p.suffix in (".jsonl", ".json"))
    for path in paths:
        if path.suffix == ".jsonl":
            renamed, total = migrate_jsonl(path)
            print(f"{path}: renamed {renamed} of {total} lines" if renamed else f"{path}: already migrated")
        elif path.suffix == ".json":
            print(f"{path}: renamed" if migrate_json(path) else f"{path}: already migrated")
        else:
            print(f"error: {path} is neither .jsonl nor .json; give results files", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
