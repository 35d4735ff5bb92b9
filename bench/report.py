"""The results: rows of repeated measurements, their best, medians and ratios, as markdown.

Each row holds one value per repeat (seconds, µs per task, MiB, ...); the
table shows the best (the least: noise on a shared machine only ever adds
time or memory) and the median beside it, and the ratio of the best to the
best of the row named in the ``vs`` column. The targets table holds
the ratios the project is held to, each with its goal and whether it is met.
Nothing here measures: see ``bench.measure`` and ``bench.workloads``.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

OK = "✓"
WRONG = "✗"


@dataclass
class Row:
    workload: str
    variant: str
    size: str
    unit: str
    values: list[float] = field(default_factory=list)
    reference: Row | None = None  # the ratio column is best / reference's best
    answer: str = OK  # ✓, "✗ ..." or "skipped: ..."
    note: str = ""
    # A derived row's best, when it is not the least of its values: a marginal cost
    # is best taken from the best times it is the difference of.
    best_of: float | None = None

    @property
    def best(self) -> float | None:
        if self.best_of is not None:
            return self.best_of
        return min(self.values) if self.values else None

    @property
    def median(self) -> float | None:
        return statistics.median(self.values) if self.values else None

    @property
    def ratio(self) -> float | None:
        return ratio(self, self.reference) if self.reference is not None else None


def ratio(top: Row | None, bottom: Row | None) -> float | None:
    """best(top) / best(bottom), or None when either is missing or not positive.

    A time or a size is positive; a value at or below zero (a marginal cost
    lost in noise, at smoke sizes) has no meaningful ratio.
    """
    if top is None or bottom is None:
        return None
    a, b = top.best, bottom.best
    if a is None or b is None or a <= 0 or b <= 0:
        return None
    return a / b


@dataclass
class Target:
    name: str
    measured: float | None
    goal: str  # "<= 2.0" or ">= 1.9"
    note: str = ""

    @property
    def met(self) -> bool | None:
        if self.measured is None:
            return None
        op, _, bound = self.goal.partition(" ")
        limit = float(bound)
        return self.measured <= limit if op == "<=" else self.measured >= limit


@dataclass
class Section:
    """What one workload produced."""

    name: str
    rows: list[Row] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    error: str | None = None

    def row(self, variant: str, size: str, unit: str, *,
            reference: Row | None = None, note: str = "") -> Row:
        added = Row(self.name, variant, size, unit, reference=reference, note=note)
        self.rows.append(added)
        return added

    def skip(self, variant: str, size: str, reason: str) -> Row:
        added = Row(self.name, variant, size, "", answer=f"skipped: {reason}")
        self.rows.append(added)
        return added


def number(value: float | None) -> str:
    if value is None:
        return "-"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def times(value: float | None) -> str:
    """A ratio as ``1.23``, or ``-`` when it could not be computed."""
    return "-" if value is None else f"{value:.2f}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def results_table(sections: Sequence[Section]) -> str:
    lines = ["| workload | variant | size | best | median | unit | runs | ratio | vs | answer "
             "| notes |", "|---|---|---|---:|---:|---|---:|---:|---|---|---|"]
    for section in sections:
        if section.error is not None:
            lines.append(f"| {section.name} | - | - | - | - | - | - | - | - | "
                         f"{WRONG} {_cell(section.error)} | |")
        for row in section.rows:
            ratio_text = "-" if row.ratio is None else f"{row.ratio:.2f}x"
            vs = row.reference.variant if row.reference is not None else ""
            lines.append(
                f"| {row.workload} | {_cell(row.variant)} | {row.size} | {number(row.best)} | "
                f"{number(row.median)} | "
                f"{row.unit} | {len(row.values)} | {ratio_text} | {_cell(vs)} | "
                f"{_cell(row.answer)} | {_cell(row.note)} |")
    return "\n".join(lines)


def targets_table(sections: Sequence[Section], *, judge: bool = True) -> str:
    """The targets; with ``judge`` false (smoke sizes) none is marked met or not."""
    lines = ["| target | measured | goal | met | notes |", "|---|---:|---|---|---|"]
    for section in sections:
        for target in section.targets:
            met = {True: "yes", False: "**no**", None: "-"}[target.met if judge else None]
            lines.append(f"| {_cell(target.name)} | {number(target.measured)} | {target.goal} "
                         f"| {met} | {_cell(target.note)} |")
    return "\n".join(lines)


def failed(sections: Sequence[Section]) -> list[str]:
    """Every wrong answer or error, one line each."""
    problems = [f"{s.name}: {s.error}" for s in sections if s.error is not None]
    problems += [f"{r.workload}: {r.variant}: {r.answer}" for s in sections for r in s.rows
                 if r.answer.startswith(WRONG)]
    return problems
