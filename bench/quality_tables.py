"""bench/quality.py's record of one run, and the tables and the verdict it prints from the runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

COLLAPSE_RECALL = 0.05
NEAR_CHANCE = 0.1  # label accuracy below 1/classes + this counts as a collapse

# The quality targets for a recipe, against plain (docs/quality.md).
FID_CUT = 0.40  # FID at least this share lower than plain's, on every data set in every seed
STEPS_SHARE = 0.5  # reaches plain's final FID within this share of the steps
LABEL_ACCURACY = 0.95


@dataclass(frozen=True)
class Run:
    dataset: str
    recipe: str
    seed: int
    classes: int
    curve: list[tuple[int, float]]  # (step, FID on --eval-samples images)
    figures: dict[str, Any]  # models.evaluation.score's, on --samples images
    label_accuracy: float
    judge_accuracy: float  # the label judge's on the real training images: the most a generator scores
    images_per_second: float
    train_seconds: float
    eval_seconds: float

    @property
    def collapsed(self) -> bool:
        chance = 1 / self.classes
        return self.figures["recall"] < COLLAPSE_RECALL or self.label_accuracy < chance + NEAR_CHANCE


def steps_to_reach(curve: Sequence[tuple[int, float]], target: float) -> int | None:
    return next((step for step, fid in curve if fid <= target), None)


def plain_target(runs: Sequence[Run], dataset: str) -> float:
    """Plain's FID at its last checkpoint, the mean over its seeds."""
    plain = [run for run in runs if run.dataset == dataset and run.recipe == "plain"]
    return float(np.mean([run.curve[-1][1] for run in plain]))


def spread(values: Sequence[float], digits: int = 1) -> str:
    """Mean ± standard deviation over seeds (± 0 for one seed)."""
    deviation = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return f"{np.mean(values):.{digits}f} ± {deviation:.{digits}f}"


def signed_percent(share: float) -> str:
    return f"{share * 100:+.0f} %".replace("-", "−")


def steps_cell(steps: Sequence[int | None]) -> str:
    """The mean over seeds; when some seeds never got there, how many did."""
    reached = [step for step in steps if step is not None]
    if len(reached) == len(steps):
        return f"{np.mean(reached):.0f}"
    mean = f"{np.mean(reached):.0f} in " if reached else ""
    return f"{mean}{len(reached)}/{len(steps)} seeds"


def summary_table(runs: Sequence[Run], recipes: Sequence[str], target: float) -> list[str]:
    lines = [
        "| recipe | FID | KID×10³ | precision | recall | label acc. | images/s | steps to plain's FID "
        "| FID vs plain | collapses |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    plain_fid = np.mean([run.figures["fid"] for run in runs if run.recipe == "plain"])
    for recipe in recipes:
        mine = [run for run in runs if run.recipe == recipe]
        fid = [run.figures["fid"] for run in mine]
        versus = "—" if recipe == "plain" else signed_percent(np.mean(fid) / plain_fid - 1)
        cells = [
            recipe,
            spread(fid),
            spread([run.figures["kid"] * 1e3 for run in mine], 2),
            f"{np.mean([run.figures['precision'] for run in mine]):.3f}",
            f"{np.mean([run.figures['recall'] for run in mine]):.3f}",
            f"{np.mean([run.label_accuracy for run in mine]):.3f}",
            f"{np.mean([run.images_per_second for run in mine]):.1f}",
            steps_cell([steps_to_reach(run.curve, target) for run in mine]),
            versus,
            f"{sum(run.collapsed for run in mine)}/{len(mine)}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def seed_table(runs: Sequence[Run], target: float) -> list[str]:
    lines = [
        "| recipe | seed | FID | KID×10³ | precision | recall | label acc. | worst class FID | images/s "
        "| steps to plain's FID | FID curve (step: FID) | training s | judging s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for run in runs:
        per_class = run.figures.get("per_class_fid") or {}
        worst = max(per_class.items(), key=lambda item: item[1], default=None)
        reached = steps_to_reach(run.curve, target)
        cells = [
            run.recipe,
            str(run.seed),
            f"{run.figures['fid']:.1f}",
            f"{run.figures['kid'] * 1e3:.2f}",
            f"{run.figures['precision']:.3f}",
            f"{run.figures['recall']:.3f}",
            f"{run.label_accuracy:.3f}",
            f"{worst[1]:.1f} ({worst[0]})" if worst else "—",
            f"{run.images_per_second:.1f}",
            "never" if reached is None else str(reached),
            ", ".join(f"{step}: {fid:.1f}" for step, fid in run.curve),
            f"{run.train_seconds:.0f}",
            f"{run.eval_seconds:.0f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def verdict_rows(runs: Sequence[Run], recipe: str, steps: int) -> list[list[str]]:
    """[target, met or not, the figures] for each of the quality targets."""
    plain = {(run.dataset, run.seed): run for run in runs if run.recipe == "plain"}
    mine = [run for run in runs if run.recipe == recipe]
    cuts = [1 - run.figures["fid"] / plain[run.dataset, run.seed].figures["fid"] for run in mine]
    reached = [steps_to_reach(run.curve, plain_target(runs, run.dataset)) for run in mine]
    collapses = [f"{run.dataset} seed {run.seed}" for run in mine if run.collapsed]
    relative = [run.label_accuracy / run.judge_accuracy for run in mine]
    seeds = [f"{run.dataset} {run.seed}" for run in mine]
    budget = int(STEPS_SHARE * steps)
    return [
        [
            f"FID ≥ {FID_CUT * 100:.0f} % below plain's, every data set and seed",
            all(cut >= FID_CUT for cut in cuts),
            ", ".join(f"{seed}: {signed_percent(-cut)}" for seed, cut in zip(seeds, cuts, strict=True)),
        ],
        [
            f"reaches plain's final FID within {budget} steps, every seed",
            all(step is not None and step <= budget for step in reached),
            ", ".join(f"{seed}: {step or 'never'}" for seed, step in zip(seeds, reached, strict=True)),
        ],
        ["no seed collapses", not collapses, ", ".join(collapses) or f"none of {len(mine)} runs"],
        [
            f"label accuracy ≥ {LABEL_ACCURACY * 100:.0f} % of the judge's on real images, every seed",
            min(relative) >= LABEL_ACCURACY,
            ", ".join(
                f"{seed}: {run.label_accuracy:.3f} of {run.judge_accuracy:.3f} ({share * 100:.1f} %)"
                for seed, run, share in zip(seeds, mine, relative, strict=True)
            ),
        ],
    ]


def verdict_table(runs: Sequence[Run], recipes: Sequence[str], steps: int) -> list[str]:
    lines = ["| recipe | target | verdict | figures (data set, seed) |", "|---|---|---|---|"]
    for recipe in recipes:
        for target, met, figures in verdict_rows(runs, recipe, steps):
            lines.append(f"| {recipe} | {target} | {'met' if met else 'NOT met'} | {figures} |")
    return lines
