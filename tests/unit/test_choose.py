"""`harmonic choose`: the ranking follows the answers, every point names the figure behind it, and the
figures it cites are the committed measurements (not a stale copy)."""

from __future__ import annotations

import json

import pytest

from bench import cost
from harmonic_client.choose import ARCHITECTURES, QUESTIONS, check_answers, load_figures, rank
from harmonic_client.cli import main as cli_main
from scripts import export_choice_figures

FIGURES = load_figures()


def _first(ranking) -> str:
    return ranking.ordered()[0][0]


def test_the_committed_figures_are_the_committed_measurements() -> None:
    """figures.json is what scripts/export_choice_figures.py makes of bench/results/operating.json and the
    prices: rerun `make cost` (or `make bench`) after either changes."""
    assert export_choice_figures.figures(export_choice_figures.OPERATING, cost.load_prices()) == FIGURES


def test_ten_questions_each_with_a_default_that_validates() -> None:
    assert len(QUESTIONS) == 10
    assert check_answers({}) == {q.key: q.default for q in QUESTIONS}


def test_a_person_in_the_loop_puts_the_state_machine_first_and_sync_last() -> None:
    ranking = rank({"human": "yes"}, FIGURES)
    assert _first(ranking) == "statemachine"
    assert ranking.ordered()[-1][0] == "sync"


def test_an_interactive_caller_with_few_steps_gets_sync() -> None:
    ranking = rank({"latency": "interactive", "steps": "3"}, FIGURES)
    assert _first(ranking) == "sync"
    assert any(f"{FIGURES['latency_ms']['sync_p50']:.0f} ms p50" in r for r in ranking.reasons["sync"])


def test_independent_steps_favour_the_architectures_with_a_parallel_branch() -> None:
    ranking = rank({"parallel": "yes"}, FIGURES)
    scores = ranking.scores
    assert scores["events"] > scores["pipeline"]
    assert scores["statemachine"] > scores["pipeline"]
    bound = FIGURES["parallel_branch"]["dsp_bound_speedup"]["5s"]
    assert any(f"up to {bound:.2f}x sooner" in reason for reason in ranking.reasons["events"])


def test_strict_ordering_counts_against_the_bus() -> None:
    ranking = rank({"ordering": "strict", "team": "events", "existing": "eventbridge"}, FIGURES)
    assert ranking.scores["events"] < ranking.scores["pipeline"]


def test_a_budget_rewards_what_fits_it_and_says_what_it_costs() -> None:
    costs = FIGURES["cost_per_million_usd"]
    budget = (costs["sync"] + min(costs[a] for a in ARCHITECTURES if a != "sync")) / 2  # only sync fits
    ranking = rank({"budget": str(budget)}, FIGURES)
    unlimited = rank({"budget": "0"}, FIGURES)  # the same answers otherwise
    assert ranking.scores["sync"] - unlimited.scores["sync"] == 1
    assert all(ranking.scores[a] - unlimited.scores[a] == -2 for a in ARCHITECTURES if a != "sync")
    assert any(f"${costs['pipeline']:,.0f} per million" in r for r in ranking.reasons["pipeline"])


@pytest.mark.parametrize(
    ("answers", "flag"),
    [({"steps": "many"}, "--steps"), ({"parallel": "maybe"}, "--parallel"), ({"budget": "-5"}, "--budget")],
)
def test_bad_answers_name_their_flag(answers: dict[str, str], flag: str) -> None:
    with pytest.raises(ValueError, match=flag):
        check_answers(answers)


def test_cli_prints_the_ranking_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["choose", "--human", "yes", "--latency", "minutes", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["ranking"][0]["architecture"] == "statemachine"
    assert {entry["architecture"] for entry in printed["ranking"]} == set(ARCHITECTURES)
    assert printed["answers"]["human"] == "yes"


def test_cli_text_lists_every_architecture_with_its_reasons(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["choose", "--parallel", "yes"]) == 0
    text = capsys.readouterr().out
    for architecture in ARCHITECTURES:
        assert architecture in text
    assert "features and match end up to" in text
