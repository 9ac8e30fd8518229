"""The low-label learning-curve experiment: its protocol, its baselines and probes, its statistics, a quick run that
resumes, and the stored results it shipped."""

import json
import math
from dataclasses import asdict

import pytest
from shipped_results import stored_or_skip

from bertlab.counting_baselines import C_GRID, shared_characters, tag_lookup, tuned_baseline
from bertlab.learning_curves import (
    Plan,
    capped_while_rising,
    describe,
    governing_size,
    paired_differences,
    run_plan,
    selection_sizes,
    start_weights,
    summarize,
)

pytestmark = pytest.mark.usefixtures("one_thread")
WARNINGS = "ignore:.*(newly initialised|not used from)"


def test_the_budget_is_a_number_of_passes_with_a_floor():
    plan = Plan()
    assert plan.budget(100) == (plan.min_steps, plan.min_eval_steps)  # 20 passes of 4 steps: below the floor
    assert plan.budget(900) == (580, 29)  # 20 passes of 29 steps of 32, an evaluation a pass
    assert plan.budget(3000) == (1880, 94)


def test_rates_are_chosen_at_both_ends_and_used_by_the_nearer_one_in_log_n():
    sizes = (100, 300, 1000, 3000)
    assert selection_sizes(sizes) == (100, 3000)
    assert [governing_size(n, sizes) for n in sizes] == [100, 100, 3000, 3000]  # 300/100 = 3 < 10 = 3000/300
    assert governing_size(math.isqrt(100 * 3000) + 1, sizes) == 3000 and selection_sizes((300,)) == (300,)


def test_the_classical_baselines_learn_from_their_examples():
    pairs = {"text_a": ["北京下雪", "北京下雪", "上海下雨", "上海下雨"] * 5,  # snow in Beijing, rain in Shanghai
             "text_b": ["北京很冷", "上海很热", "上海很热", "北京很冷"] * 5,  # cold in Beijing, hot in Shanghai
             "label": [1, 0, 1, 0] * 5}  # same city = same article
    assert shared_characters(pairs, {"text_a": ["北京冬天"], "text_b": ["北京的雪"], "label": [1]}) == 1.0
    tags = {"text": ["我们", "他们"], "char_labels": [[1, 2], [3, 2]]}  # "we", "they"
    assert tag_lookup(tags, {"text": ["我你"], "char_labels": [[1, 1]]}) == 0.5  # 你 is unseen: tag 2, the commonest


def test_a_baseline_chooses_its_regularisation_on_validation():
    """好 (good) marks the positive reviews; one mislabelled training review pulls a weakly regularised model
    towards 差 (bad) being positive too. Validation picks the C that scores best there, never the test's."""
    train = {"text": ["好", "好好", "很好", "差", "很差", "差差", "差好差"], "label": [1, 1, 1, 0, 0, 0, 1]}
    validation = {"text": ["好的", "差的"], "label": [1, 0]}
    test = {"text": ["不好"], "label": [0]}  # 'not good': no C gets it right, so the test cannot have chosen
    result = tuned_baseline("sentiment", train, validation, test)
    assert result["C"] in C_GRID and result["validation"] == 1.0 and result["test"] == 0.0
    assert tuned_baseline("pos", {"text": ["我"], "char_labels": [[1]]}, {"text": ["我"], "char_labels": [[1]]},
                          {"text": ["我"], "char_labels": [[2]]}) == {"C": None, "validation": 1.0, "test": 0.0}


def test_paired_differences_pair_the_seeds_and_give_a_t_interval():
    points = [{"task": "pos", "n": 100, "seed": s, "start": start, "test": score}
              for s, (course, random) in enumerate([(0.7, 0.6), (0.8, 0.6), (0.9, 0.7)])
              for start, score in (("course", course), ("random", random))]
    points.append({"task": "pos", "n": 100, "seed": 9, "start": "course", "test": 1.0})  # no partner: left out
    cell = paired_differences({"points": points})["pos"][100]
    assert cell["seeds"] == 3 and cell["mean"] == pytest.approx(0.5 / 3)
    half = 4.302653 * 0.057735 / math.sqrt(3)  # t(0.975, 2) x sample sd of (0.1, 0.2, 0.2) / sqrt(3)
    assert (cell["low"], cell["high"]) == pytest.approx((0.5 / 3 - half, 0.5 / 3 + half), abs=1e-4)


def test_a_run_capped_while_its_best_is_recent_is_flagged():
    run = {"stopped_early": False, "best_step": 95, "max_steps": 100, "eval_every": 10}
    assert capped_while_rising(run, patience=3)
    assert not capped_while_rising({**run, "best_step": 60}, patience=3)
    assert not capped_while_rising({**run, "stopped_early": True}, patience=3)


def test_each_start_names_its_weights():
    plan = Plan(checkpoints={"course": "c", "minilm": "m"})
    assert start_weights(plan, "course") == ("c", "pretrained")
    assert start_weights(plan, "random") == ("c", "random")
    assert start_weights(plan, "minilm-random") == ("m", "random")
    with pytest.raises(ValueError, match="no checkpoint for the start 'bert'"):
        start_weights(plan, "bert")


@pytest.mark.slow
@pytest.mark.filterwarnings(WARNINGS)
def test_a_quick_run_chooses_rates_on_validation_and_resumes(tmp_path):
    plan = Plan.quick()
    results = run_plan(plan, tmp_path)
    grid, points = results["grid"], results["points"]
    assert {(r["n"], r["seed"]) for r in grid} == {(32, 0), (64, 0)}
    for start in plan.starts:
        for n in (32, 64):
            tried = {r["learning_rate"]: r["validation"] for r in grid if (r["start"], r["n"]) == (start, n)}
            best = max(plan.learning_rates, key=lambda lr: (tried[lr], -lr))
            used = {r["learning_rate"] for r in points if (r["start"], r["n"]) == (start, n)}
            assert used == {best}
    assert sorted((r["start"], r["n"], r["seed"]) for r in points) == sorted(
        (start, n, seed) for start in plan.starts for n in (32, 64) for seed in plan.seeds(n))
    assert all(r["stopped_early"] or r["steps"] == r["max_steps"] for r in points)
    assert len(results["probes"]) == len(points) and len(results["baselines"]) == 3
    table = summarize(results)["sentiment"]
    assert set(table) == {*plan.starts, "probe course", "probe random", "baseline"}
    assert table["course"][32]["seeds"] == 2
    lines = (tmp_path / "runs.jsonl").read_text().splitlines()
    again = run_plan(plan, tmp_path)  # everything is in runs.jsonl already: nothing is trained again
    assert (tmp_path / "runs.jsonl").read_text().splitlines() == lines
    assert json.dumps(again["points"]) == json.dumps(points)


# ---- the stored results ----------------------------------------------------------------------------------------------
def _stored(name):
    return stored_or_skip(name)


@pytest.mark.parametrize("name", ["learning_curves", "pretraining_compute"])
def test_the_shipped_curves_chose_on_validation_and_cover_every_point(name):
    """Every (task, start, N) has a point per seed of its N, all at the rate that won on validation at the
    governing size (the test scores played no part), and a baseline per seed."""
    results = _stored(name)
    plan = results["plan"]
    rates = {(r["task"], r["start"], r["chosen_at"]): r["learning_rate"] for r in results["rates"]}
    seeds = lambda n: plan["seeds_few"] if n <= plan["few_labels"] else plan["seeds_many"]  # noqa: E731
    for task, sizes in plan["sizes"].items():
        for start in plan["starts"]:
            for s in selection_sizes(sizes):
                fixed = plan["fixed_rates"].get(f"{task}/{start}")
                if fixed is None:
                    selection = plan["selection_seeds_few"] if s <= plan["few_labels"] else plan["selection_seeds_many"]
                    score = {lr: sum(r["validation"] for r in results["grid"] if (r["task"], r["start"], r["n"],
                             r["learning_rate"]) == (task, start, s, lr)) / len(selection)
                             for lr in plan["learning_rates"]}
                    fixed = max(plan["learning_rates"], key=lambda lr: (score[lr], -lr))
                assert rates[(task, start, s)] == fixed
            points = [r for r in results["points"] if (r["task"], r["start"]) == (task, start)]
            assert sorted((r["n"], r["seed"]) for r in points) == sorted((n, s) for n in sizes for s in seeds(n))
            assert all(r["learning_rate"] == rates[(task, start, governing_size(r["n"], sizes))] for r in points)
        baselines = sorted((r["n"], r["seed"]) for r in results["baselines"] if r["task"] == task)
        assert baselines == sorted((n, s) for n in sizes for s in seeds(n))


def test_the_shipped_curves_say_how_many_runs_hit_their_cap_while_improving():
    """The protocol's promise, checked on the stored runs: each stopped early or used its whole budget, and the
    book reports how many were capped while their best score was recent (describe() states the rules)."""
    results = _stored("learning_curves")
    assert all(r["stopped_early"] or r["steps"] == r["max_steps"] for r in results["points"])
    capped = [r for r in results["points"] if capped_while_rising(r, results["plan"]["patience"])]
    assert len(capped) <= len(results["points"]) // 10, f"{len(capped)} runs ended at their cap while improving"
    assert len(describe(results["plan"])) == 6


def test_the_protocol_says_which_vector_a_sentence_head_reads():
    stored = {k: v for k, v in asdict(Plan()).items() if k != "checkpoints"} | {"sizes": {"sentiment": [100]}}
    assert "reads the mean of the token vectors, as the probes do" in " ".join(describe(stored))
    assert "reads the [CLS] vector;" in " ".join(describe(stored | {"pooling": {"sentiment": "cls"}}))


@pytest.mark.slow
@pytest.mark.filterwarnings(WARNINGS)
def test_the_shipped_curves_are_what_the_shipped_model_gives():
    """A point of results/learning_curves.json, run again from the shipped course model with its stored
    settings, gives the stored scores (to within float noise across machines)."""
    from bertlab.learning_curves import finetune_point

    results = _stored("learning_curves")
    stored = {k: tuple(v) if isinstance(v, list) else v for k, v in results["plan"].items() if k != "sizes"}
    plan = Plan(**stored)
    smallest = min((r for r in results["points"] if r["start"] == "course"),
                   key=lambda r: (r["n"], r["task"] != "sentiment", r["seed"]))
    again = finetune_point(plan, smallest["task"], smallest["start"], smallest["n"], smallest["seed"],
                           smallest["learning_rate"])
    assert again["validation"] == pytest.approx(smallest["validation"], abs=0.02)
    assert again["test"] == pytest.approx(smallest["test"], abs=0.02)


def test_a_run_made_under_another_step_budget_is_made_again(tmp_path):
    from bertlab.learning_curves import stored_runs

    plan = Plan.quick()
    steps = plan.budget(32)[0]
    runs = [{"kind": "finetune", "task": "sentiment", "start": "course", "n": 32, "seed": 0, "learning_rate": 1e-3,
             "max_steps": steps},
            {"kind": "finetune", "task": "sentiment", "start": "random", "n": 32, "seed": 0, "learning_rate": 1e-3,
             "max_steps": steps + 1},
            {"kind": "probe", "task": "sentiment", "start": "course", "n": 32, "seed": 0}]
    (tmp_path / "runs.jsonl").write_text("".join(json.dumps({"pooling": "mean"} | r) + "\n" for r in runs))
    kept = stored_runs(tmp_path / "runs.jsonl", plan)
    assert sorted(key[2] for key in kept) == ["course", "course"]  # the fine-tuning run of its budget, and the probe


def test_a_run_made_with_another_pooling_is_made_again(tmp_path):
    from bertlab.learning_curves import stored_runs

    plan = Plan.quick()
    assert plan.pooling["sentiment"] == "mean"  # every sentence task reads the mean of the tokens, as the probes do
    run = {"kind": "finetune", "task": "sentiment", "n": 32, "seed": 0, "learning_rate": 1e-3,
           "max_steps": plan.budget(32)[0]}
    runs = [run | {"start": "course", "pooling": "mean"}, run | {"start": "random"},  # recorded before: [CLS]
            run | {"start": "course-random", "pooling": "cls"}]
    (tmp_path / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in runs))
    assert [key[2] for key in stored_runs(tmp_path / "runs.jsonl", plan)] == ["course"]
