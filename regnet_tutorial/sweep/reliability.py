"""How long is long enough? The reliability of a training proxy, measured (the pilot).

The paper ranks design spaces by the errors of models trained briefly (10 ImageNet epochs) and
checks that this proxy ranks models as full training does. A proxy is only useful if a single
run of one model says something about its architecture. Two numbers say whether it does:

* **test-retest reliability**: the Spearman correlation, across the models of one space, between
  the errors of two training runs that differ only in the training seed (replicates 0 and 1);
* **validity**: the Spearman correlation between a budget's errors and those of the longest
  budget, across the same models (each error the mean of its replicates).

Next to them: the seed SD of one model (the spread of one architecture's error over seeds), the
binomial SD of an error measured on ``n`` test images, ``sqrt(p (1 - p) / n)``, and the seconds
one model costs. The rule that picks the proxy: the cheapest budget whose test-retest Spearman
within the reference space and whose Spearman against the longest budget both reach a threshold.

The longest budget is itself measured with noise, so no budget can correlate with it better than
``sqrt(R_budget * R_longest)``, the reliabilities of the two (replicate-mean) errors: Spearman's
correction for attenuation. :func:`corrected_validity` divides the validity by that ceiling, and
the table carries it beside the raw value (an approximation for rank correlations, and as noisy
as the three correlations it combines).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..errors import RegNetTutorialError
from .spaces import SPACE_NAMES, SamplingError, check_space_names


class ReliabilityError(RegNetTutorialError, ValueError):
    """A pilot file that cannot be read or does not hold one budget with two replicates."""


def read_results(path: str | os.PathLike) -> pd.DataFrame:
    """One row per line of a sweep results file: space, index, replicate, error, seconds, budget."""
    rows = []
    try:
        with open(path, encoding="utf-8") as f:
            lines = [line for line in f if line.strip()]
    except OSError as e:
        raise ReliabilityError(f"cannot read {path}: {e.strerror}; give the pilot's results files") from None
    for number, line in enumerate(lines, start=1):
        try:
            r = json.loads(line)
            check_space_names(r, f"{path} line {number}")
            s = r["settings"]
            rows.append({
                "space": r["space"], "index": r["index"], "replicate": r.get("replicate", 0),
                "top1_error": r["top1_error"], "wall_time_s": r["wall_time_s"],
                "params": r["params"], "flops": r["flops"],
                "train_images": s["train_images"], "epochs": s["epochs"], "val_images": s["val_images"],
            })
        except SamplingError as e:
            raise ReliabilityError(str(e)) from None
        except (json.JSONDecodeError, KeyError, TypeError):
            raise ReliabilityError(f"{path} line {number} is not a sweep result line; give files written by "
                                   "`sweep run`") from None
    if not rows:
        raise ReliabilityError(f"{path} holds no results; run the pilot first")
    return pd.DataFrame(rows)


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation (average ranks for ties): Pearson's r of the ranks."""
    x = pd.Series(np.asarray(a, dtype=np.float64))
    y = pd.Series(np.asarray(b, dtype=np.float64))
    if len(x) != len(y) or len(x) < 3:
        raise ValueError(f"spearman needs two equal-length samples of at least 3 values, got {len(x)} and {len(y)}")
    return float(x.rank().corr(y.rank()))


def spearman_ci(
    a: Sequence[float], b: Sequence[float], confidence: float = 0.95, repeats: int = 2000, seed: int = 0,
) -> tuple[float, float]:
    """A percentile bootstrap interval of :func:`spearman`, resampling models (pairs) with replacement.

    With 10 models the interval is wide: a single pilot cannot pin a correlation down to +-0.1,
    and the chapter prints the interval beside the point estimate for that reason."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    i = np.random.default_rng(seed).integers(0, len(x), (repeats, len(x)))
    # Average ranks within each resample (pandas ranks every row at once), then Pearson per row.
    rx = pd.DataFrame(x[i]).rank(axis=1).to_numpy(copy=True)
    ry = pd.DataFrame(y[i]).rank(axis=1).to_numpy(copy=True)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    norm = np.sqrt((rx * rx).sum(axis=1) * (ry * ry).sum(axis=1))
    keep = norm > 0  # a resample of one repeated model has no ranking
    values = (rx * ry).sum(axis=1)[keep] / norm[keep]
    tail = (1 - confidence) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return float(low), float(high)


def seed_sd(first: Sequence[float], second: Sequence[float]) -> float:
    """The SD of one model's error over training seeds, pooled over models from two replicates:
    each pair's variance is ``(a - b)^2 / 2``, and the pooled SD is the root of their mean."""
    d = np.asarray(first, dtype=np.float64) - np.asarray(second, dtype=np.float64)
    return float(math.sqrt(np.mean(d * d) / 2))


def binomial_sd(error_percent: float, n: int) -> float:
    """The SD, in points, of an error rate ``p`` measured on ``n`` independent test images."""
    p = error_percent / 100
    return 100 * math.sqrt(p * (1 - p) / n)


def spearman_brown(r: float, k: int = 2) -> float:
    """The reliability of the mean of ``k`` runs whose single-run reliability is ``r``:
    ``k r / (1 + (k - 1) r)`` (the Spearman-Brown formula)."""
    return k * r / (1 + (k - 1) * r)


def corrected_validity(rho: float, retest_budget: float, retest_longest: float, k: int = 2) -> float:
    """The validity ``rho`` (Spearman between the ``k``-replicate mean errors of a budget and of
    the longest budget) divided by the ceiling the two reliabilities allow,
    ``sqrt(SB(R_budget) * SB(R_longest))`` with ``SB`` = :func:`spearman_brown`. NaN where either
    reliability is not positive: there is then no ceiling to divide by."""
    a, b = spearman_brown(retest_budget, k), spearman_brown(retest_longest, k)
    return rho / math.sqrt(a * b) if a > 0 and b > 0 else float("nan")


def paired(frame: pd.DataFrame, space: str) -> pd.DataFrame:
    """The models of ``space`` trained with both replicates: columns ``r0``, ``r1``, index = model index."""
    wide = frame[frame["space"] == space].pivot_table(index="index", columns="replicate", values="top1_error")
    wide = wide.rename(columns=lambda r: f"r{r}")
    return wide.dropna(subset=["r0", "r1"]) if {"r0", "r1"} <= set(wide.columns) else wide.iloc[0:0]


@dataclass(frozen=True)
class Budget:
    """One training budget of the pilot: ``train_images`` images for ``epochs`` epochs."""

    train_images: int
    epochs: int

    @property
    def images_seen(self) -> int:
        return self.train_images * self.epochs

    @property
    def label(self) -> str:
        return f"{self.train_images // 1000}k x {self.epochs}"


def budget_of(frame: pd.DataFrame) -> Budget:
    """The single budget of one pilot file (every line must share it)."""
    budgets = frame[["train_images", "epochs"]].drop_duplicates()
    if len(budgets) != 1:
        raise ReliabilityError(f"a pilot file holds one budget; this one holds {len(budgets)}: "
                               "give one results file per budget")
    row = budgets.iloc[0]
    return Budget(int(row["train_images"]), int(row["epochs"]))


def budget_table(frames: Iterable[pd.DataFrame], spaces: Sequence[str]) -> pd.DataFrame:
    """The pilot's table, one row per budget (cheapest first): images seen, median error, seed SD,
    binomial SD of the test set, test-retest Spearman per space, Spearman against the longest
    budget per space (mean of replicates), the same corrected for attenuation
    (:func:`corrected_validity`), and the median seconds per model."""
    by_budget = sorted(((budget_of(f), f) for f in frames), key=lambda bf: bf[0].images_seen)
    longest = by_budget[-1][1]
    rows = []
    for budget, f in by_budget:
        row: dict[str, object] = {"budget": budget.label, "images_seen": budget.images_seen,
                                  "median_error": float(f["top1_error"].median())}
        pairs = pd.concat([paired(f, s) for s in spaces])
        row["seed_sd"] = seed_sd(pairs["r0"], pairs["r1"]) if len(pairs) else float("nan")
        row["binomial_sd"] = binomial_sd(row["median_error"], int(f["val_images"].iloc[0]))
        for s in spaces:
            p = paired(f, s)
            row[f"retest_{s}"] = spearman(p["r0"], p["r1"]) if len(p) >= 3 else float("nan")
            mine = f[f["space"] == s].groupby("index")["top1_error"].mean()
            ref = longest[longest["space"] == s].groupby("index")["top1_error"].mean()
            common = mine.index.intersection(ref.index)
            row[f"vs_longest_{s}"] = spearman(mine[common], ref[common]) if len(common) >= 3 else float("nan")
        row["s_per_model"] = float(f["wall_time_s"].median())
        row["models"] = int(f.groupby(["space", "index"]).ngroups)
        rows.append(row)
    for row in rows:
        for s in spaces:  # the longest budget is its own reference: 1 by definition, as uncorrected
            row[f"vs_longest_corrected_{s}"] = row[f"vs_longest_{s}"] if row is rows[-1] else corrected_validity(
                row[f"vs_longest_{s}"], row[f"retest_{s}"], rows[-1][f"retest_{s}"])
    columns = list(rows[0])
    for s in spaces:
        columns.insert(columns.index(f"vs_longest_{s}") + 1, f"vs_longest_corrected_{s}")
    return pd.DataFrame(rows).reindex(columns=list(dict.fromkeys(columns)))


def choose_budget(
    table: pd.DataFrame, space: str, threshold: float = 0.7, corrected: bool = False,
) -> Mapping[str, object] | None:
    """The cheapest row whose test-retest Spearman within ``space`` and whose Spearman against the
    longest budget (``corrected``: divided by its attenuation ceiling) both reach ``threshold``;
    ``None`` if no budget does."""
    validity = f"vs_longest_corrected_{space}" if corrected else f"vs_longest_{space}"
    ok = table[(table[f"retest_{space}"] >= threshold) & (table[validity] >= threshold)]
    return None if ok.empty else ok.sort_values("images_seen").iloc[0].to_dict()


def summarize(
    paths: Sequence[str | os.PathLike], spaces: Sequence[str], reference: str, threshold: float = 0.7,
) -> dict[str, object]:
    """The pilot in one record: the per-budget table, 95% bootstrap intervals of the test-retest
    Spearman in each space, and the budget the rule chooses (``None`` when none qualifies)."""
    frames = [read_results(p) for p in paths]
    table = budget_table(frames, spaces)
    intervals = {}
    for f in frames:
        label = budget_of(f).label
        intervals[label] = {}
        for s in spaces:
            p = paired(f, s)
            if len(p) >= 3:
                intervals[label][s] = spearman_ci(p["r0"], p["r1"])
    chosen = choose_budget(table, reference, threshold)
    chosen_corrected = choose_budget(table, reference, threshold, corrected=True)
    return {"table": table.to_dict(orient="records"), "retest_ci95": intervals, "reference_space": reference,
            "space_names": SPACE_NAMES,
            "threshold": threshold, "chosen": None if chosen is None else chosen["budget"],
            "chosen_corrected": None if chosen_corrected is None else chosen_corrected["budget"],
            # The longest budget is valid against itself by definition: its validity is untested.
            "chosen_is_longest": chosen is not None and chosen["images_seen"] == table["images_seen"].max()}


class Retest(NamedTuple):
    """One run's test-retest Spearman in one space at one pilot budget, with its 95% interval."""

    budget: str
    images_seen: int
    rho: float
    low: float
    high: float


def retest_near(summary: Mapping[str, object], images_seen: int, space: str) -> Retest:
    """The test-retest reliability of one run at the pilot budget nearest to ``images_seen``.

    ``summary`` is :func:`summarize`'s record (``results/pilot/pilot_summary.json``). A sweep trained
    on ``images_seen`` images (train images x epochs) reads how reliable one of its runs is here;
    the nearer of two equally distant budgets is the cheaper one."""
    table = list(summary["table"])  # type: ignore[call-overload]
    if not table:
        raise ReliabilityError("the pilot summary holds no budget; run the pilot and summarize it first")
    near = min(table, key=lambda r: (abs(r["images_seen"] - images_seen), r["images_seen"]))
    intervals = summary["retest_ci95"][near["budget"]]  # type: ignore[index]
    if space not in intervals:
        raise ReliabilityError(f"the pilot did not measure space {space!r}; it measured {sorted(intervals)}")
    low, high = intervals[space]
    return Retest(near["budget"], int(near["images_seen"]), float(near[f"retest_{space}"]), float(low),
                  float(high))


def format_table(table: pd.DataFrame) -> str:
    """The per-budget table as fixed-width text, errors and SDs in points, Spearman to 2 decimals."""
    shown = table.copy()
    for column in shown.columns:
        if column.startswith(("retest_", "vs_longest_")):  # vs_longest_corrected_ too
            shown[column] = shown[column].map(lambda v: f"{v:.2f}")
        elif column in ("median_error", "seed_sd", "binomial_sd", "s_per_model"):
            shown[column] = shown[column].map(lambda v: f"{v:.1f}")
    return shown.to_string(index=False)
