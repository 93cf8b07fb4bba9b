"""Author-year labels for the bibliography, matching the in-text citations.

``bibtex_reference_style: author_year`` makes ``{cite:p}`` read "[Goyal et al., 2017]", but the
bibliography's own labels come from the formatting style, whose default ("alpha") gives labels
such as "[GDollarG+17]". This registers a pybtex style ``regnet_authoryear`` whose labels are
"Goyal et al., 2017", "He and Sun, 2016" or "Hu, 2018" (with a, b, ... for equal labels), sorted
by author and year.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator

from pybtex.plugin import register_plugin
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle


def _last_names(entry) -> list[str]:
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    names = []
    for person in people:
        last = " ".join(person.prelast_names + person.last_names)
        names.append(last.replace("{", "").replace("}", "") or str(person))
    return names


def author_year_label(entry) -> str:
    """``"Goyal et al., 2017"`` for the entry's authors and year."""
    names = _last_names(entry)
    if not names:
        who = entry.fields.get("title", entry.key)[:20]
    elif len(names) == 1:
        who = names[0]
    elif len(names) == 2:
        who = f"{names[0]} and {names[1]}"
    else:
        who = f"{names[0]} et al."
    return f"{who}, {entry.fields.get('year', 'n.d.')}"


class AuthorYearLabelStyle(BaseLabelStyle):
    def format_labels(self, sorted_entries: Iterable) -> Iterator[str]:
        entries = list(sorted_entries)
        labels = [author_year_label(e) for e in entries]
        counts, seen = Counter(labels), Counter()
        for label in labels:
            if counts[label] > 1:
                seen[label] += 1
                yield label + "abcdefghijklmnopqrstuvwxyz"[seen[label] - 1]
            else:
                yield label


class AuthorYearStyle(UnsrtStyle):
    default_label_style = "regnet_authoryear"
    default_sorting_style = "author_year_title"


def setup(app):
    register_plugin("pybtex.style.labels", "regnet_authoryear", AuthorYearLabelStyle)
    register_plugin("pybtex.style.formatting", "regnet_authoryear", AuthorYearStyle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
