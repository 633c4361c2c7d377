"""``harmonic choose``: which process architecture fits a chain, from ten questions and Harmonic's figures.

The four architectures are the ones Harmonic runs the same stage code under: ``sync`` (one call does the
whole chain), ``pipeline`` (SQS-linked stage functions), ``statemachine`` (Step Functions) and ``events``
(an EventBridge bus with independent subscribers). Each answer moves each architecture's score, and every
move carries the measured figure behind it, so the ranking can be argued with. The figures are
``figures.json`` beside this module, exported from `make bench` and `make cost` by
scripts/export_choice_figures.py (docs/choosing.md explains every rule).

Scores are a guide, not a verdict: a hard constraint (a person in the loop, a 29 s limit) is scored so that
it outweighs preferences (familiarity, what is already deployed).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ARCHITECTURES = ("sync", "pipeline", "statemachine", "events")
FIGURES = Path(__file__).with_name("figures.json")


@dataclass(frozen=True)
class Question:
    """One of the ten questions: its flag, the words of the question, and the answers it takes."""

    key: str
    text: str
    choices: tuple[str, ...] | None  # None: a number
    default: str


QUESTIONS: tuple[Question, ...] = (
    Question("steps", "How many steps does the process have?", None, "6"),
    Question(
        "parallel", "Do some steps not depend on each other (could run in parallel)?", ("yes", "no"), "no"
    ),
    Question(
        "branching",
        "Does the path branch (none; steps skipped on a condition; several real paths)?",
        ("none", "skips", "paths"),
        "skips",
    ),
    Question("human", "Does a person approve or act in the middle (human in the loop)?", ("yes", "no"), "no"),
    Question(
        "latency",
        "How soon does the caller need the result (interactive: under a second; seconds; minutes)?",
        ("interactive", "seconds", "minutes"),
        "seconds",
    ),
    Question(
        "ordering",
        "Must invocations be processed in the order they arrive?",
        ("strict", "none"),
        "none",
    ),
    Question(
        "team",
        "What does the team already know best (queues, statemachines, events, none)?",
        ("queues", "statemachines", "events", "none"),
        "none",
    ),
    Question(
        "existing",
        "What is already running in the account (sqs, stepfunctions, eventbridge, none)?",
        ("sqs", "stepfunctions", "eventbridge", "none"),
        "none",
    ),
    Question("budget", "Budget per million invocations, in USD (0: no limit)?", None, "0"),
    Question(
        "change",
        "How often does the process change (steps added or removed: rarely, monthly, weekly)?",
        ("rarely", "monthly", "weekly"),
        "monthly",
    ),
)


@dataclass
class Ranking:
    """Scores per architecture and the reasons behind every point."""

    scores: dict[str, float] = field(default_factory=lambda: dict.fromkeys(ARCHITECTURES, 0.0))
    reasons: dict[str, list[str]] = field(default_factory=lambda: {a: [] for a in ARCHITECTURES})

    def add(self, architecture: str, points: float, reason: str) -> None:
        self.scores[architecture] += points
        self.reasons[architecture].append(f"{points:+g} {reason}")

    def ordered(self) -> list[tuple[str, float]]:
        """Architectures best first (ties in the order of ARCHITECTURES)."""
        return sorted(self.scores.items(), key=lambda item: (-item[1], ARCHITECTURES.index(item[0])))


def load_figures(path: Path = FIGURES) -> dict[str, Any]:
    """The measured figures the rules cite (see scripts/export_choice_figures.py)."""
    return json.loads(path.read_text())


def check_answers(answers: Mapping[str, str]) -> dict[str, str]:
    """Every question answered (defaults filled in) and valid; ValueError naming the flag that is not."""
    checked = {}
    for question in QUESTIONS:
        value = str(answers.get(question.key) or question.default).strip().lower()
        if question.choices is None:
            try:
                number = float(value)
            except ValueError:
                raise ValueError(f"--{question.key} must be a number, got {value!r}") from None
            if number < 0:
                raise ValueError(f"--{question.key} must not be negative, got {value!r}")
        elif value not in question.choices:
            raise ValueError(f"--{question.key} must be one of {', '.join(question.choices)}, got {value!r}")
        checked[question.key] = value
    return checked


def rank(answers: Mapping[str, str], figures: Mapping[str, Any]) -> Ranking:
    """The ranking for `answers` (see :func:`check_answers`), every point with its figure."""
    a = check_answers(answers)
    f = figures
    r = Ranking()
    latency, cost, parallel = f["latency_ms"], f["cost_per_million_usd"], f["parallel_branch"]
    add_step = f["files_to_add_a_step"]

    steps = float(a["steps"])
    per_step = f["cost_per_step_per_million_usd"]
    if steps >= 8:
        r.add(
            "statemachine",
            -1,
            f"{steps:g} steps: Standard workflows bill every state transition, "
            f"${per_step['statemachine_standard']:.0f} per million per step (Express avoids it)",
        )
    if steps <= 3:
        r.add(
            "sync",
            1,
            f"{steps:g} steps fit one call (/v1/analyze runs six in {latency['sync_p50']:.0f} ms p50)",
        )

    if a["parallel"] == "yes":
        bound = parallel["dsp_bound_speedup"]
        for arch in ("events", "statemachine"):
            local = parallel["local_vs_pipeline"][arch]
            r.add(
                arch,
                2,
                "runs independent steps together: with a CPU per function, as Lambda gives, features and "
                f"match end up to {bound['5s']:.2f}x sooner on a 5 s clip ({bound['30s']:.2f}x on 30 s); on "
                f"the 2-core local stack, {local['5s']:.2f}x / {local['30s']:.2f}x the pipeline's pair",
            )
        r.add("pipeline", -1, "a pipeline is linear: independent steps wait for each other")

    if a["branching"] == "paths":
        r.add(
            "statemachine", 2, "Choice states make every path explicit and visible in the execution history"
        )
        r.add("events", 1, "paths are subscriptions: a rule per path, no central definition to read")

    if a["human"] == "yes":
        r.add("statemachine", 3, "a task token waits for the person: a Standard execution runs up to a year")
        r.add("events", 1, "an approval is one more event that resumes the chain (no timer of its own)")
        r.add("pipeline", -1, "a message waits at most 12 h invisible and 14 days on the queue")
        r.add("sync", -5, "API Gateway ends the call after 29 s: nobody approves that fast")

    if a["latency"] == "interactive":
        r.add("sync", 3, f"{latency['sync_p50']:.0f} ms p50 end to end on a 1 s clip (the fastest)")
        for arch in ("pipeline", "statemachine", "events"):
            r.add(arch, -1, f"{latency[arch + '_p50']:.0f} ms p50: queues or a workflow between every step")
    elif a["latency"] == "seconds":
        r.add("sync", 1, f"a 30 s clip's chain took {latency['sync_30s_clip_p50']:.0f} ms p50 (limit 29 s)")
        for arch in ("pipeline", "statemachine", "events"):
            p50, p95 = latency[arch + "_p50"], latency[arch + "_p95"]
            r.add(arch, 1, f"{p50:.0f} ms p50, {p95:.0f} ms p95 on a 1 s clip")
    else:
        r.add("sync", -3, "minutes do not fit API Gateway's 29 s")
        for arch in ("pipeline", "statemachine", "events"):
            r.add(arch, 1, "each step has its own timeout (up to 15 min), retries and a resumable checkpoint")

    if a["ordering"] == "strict":
        r.add("sync", 1, "the caller orders its own calls")
        r.add("pipeline", 1, "SQS FIFO queues keep order per group (Harmonic's are standard queues today)")
        r.add("events", -2, "EventBridge does not guarantee order; parallel steps finish in any order")

    familiar = {"queues": "pipeline", "statemachines": "statemachine", "events": "events"}
    if a["team"] in familiar:
        r.add(familiar[a["team"]], 1, "what the team already knows")
    existing = {"sqs": "pipeline", "stepfunctions": "statemachine", "eventbridge": "events"}
    if a["existing"] in existing:
        r.add(existing[a["existing"]], 1, "fits what is already deployed")

    budget = float(a["budget"])
    if budget > 0:
        for arch in ARCHITECTURES:
            usd = cost[arch]
            within = usd <= budget
            note = (
                f" (Express; Standard ${cost['statemachine_standard']:,.0f})"
                if arch == "statemachine"
                else ""
            )
            r.add(
                arch,
                1 if within else -2,
                f"${usd:,.0f} per million 5 s clips{note}, {'within' if within else 'over'} ${budget:,.0f}",
            )

    if a["change"] == "weekly":
        r.add(
            "events",
            1,
            f"new consumers subscribe without touching the producers; a new step is {add_step} files here, "
            "as in every mode",
        )
        r.add("statemachine", 0, f"a new step is {add_step} files; the ASL is regenerated (make asl)")
    return r


def ask(
    questions: tuple[Question, ...], answered: Mapping[str, str | None], prompt: Callable[[str], str]
) -> dict[str, str]:
    """The answers given as flags, and the rest asked with `prompt` (an empty answer takes the default)."""
    answers = {}
    for question in questions:
        given = answered.get(question.key)
        if given is None:
            options = f" [{'/'.join(question.choices)}]" if question.choices else ""
            given = prompt(f"{question.text}{options} ({question.default}) ").strip() or question.default
        answers[question.key] = given
    return answers


def report(ranking: Ranking, figures: Mapping[str, Any]) -> str:
    """The ranking as text: best first, each with its score and reasons."""
    lines = [f"Ranking (figures: {figures.get('source', 'figures.json')})"]
    for place, (arch, score) in enumerate(ranking.ordered(), 1):
        lines.append(f"{place}. {arch:<13} {score:+g}")
        lines += [f"     {reason}" for reason in ranking.reasons[arch]]
    return "\n".join(lines)
