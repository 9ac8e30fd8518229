"""The low-label learning-curve experiment: its budget, its baselines, and a quick run that resumes."""

import json

import pytest

from bertlab.learning_curves import Plan, run_plan, shared_characters, summarize, tag_lookup

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_budget_grows_with_the_labels_within_its_limits():
    plan = Plan()
    assert plan.budget(100) == (plan.min_steps, plan.min_steps // plan.evaluations)
    assert plan.budget(900) == (282, 35)  # ten passes over 900 examples in batches of 32, eight evaluations
    assert plan.budget(10**6)[0] == plan.max_steps


def test_the_classical_baselines_learn_from_their_examples():
    # sentiment's bag of characters is experiments.logistic_regression_baseline, tested in test_experiments.py
    pairs = {"text_a": ["北京下雪", "北京下雪", "上海下雨", "上海下雨"] * 5,  # snow in Beijing, rain in Shanghai
             "text_b": ["北京很冷", "上海很热", "上海很热", "北京很冷"] * 5,  # cold in Beijing, hot in Shanghai
             "label": [1, 0, 1, 0] * 5}  # same city = same article
    assert shared_characters(pairs, {"text_a": ["北京冬天"], "text_b": ["北京的雪"], "label": [1]}) == 1.0
    tags = {"text": ["我们", "他们"], "char_labels": [[1, 2], [3, 2]]}  # "we", "they"
    assert tag_lookup(tags, {"text": ["我你"], "char_labels": [[1, 1]]}) == 0.5  # 你 is unseen: tag 2, the commonest


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*(newly initialised|not used from)")
def test_a_quick_run_chooses_rates_on_validation_and_resumes(tmp_path):
    plan = Plan.quick()
    results = run_plan(plan, tmp_path)
    points, grid = results["points"], results["grid"]
    assert len(grid) == len(plan.learning_rates) * len(plan.starts)
    assert {r["n"] for r in grid} == {plan.select_at}
    assert len(points) == len(plan.seeds) * len(plan.starts) * len(plan.sizes)
    for start in plan.starts:
        tried = [r for r in grid if r["start"] == start]
        chosen = max(tried, key=lambda r: r["validation"])["learning_rate"]
        assert {r["learning_rate"] for r in points if r["start"] == start} == {chosen}
    assert all(0.0 <= r["test"] <= 1.0 and r["steps"] == plan.max_steps for r in points)
    assert len(results["baselines"]) == len(plan.seeds) * len(plan.sizes)
    table = summarize(results)["sentiment"]
    assert set(table) == {*plan.starts, "baseline"}
    lines = (tmp_path / "runs.jsonl").read_text().splitlines()
    again = run_plan(plan, tmp_path)  # everything is in runs.jsonl already: nothing is trained again
    assert (tmp_path / "runs.jsonl").read_text().splitlines() == lines
    assert json.dumps(again["points"]) == json.dumps(points)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*(newly initialised|not used from)")
def test_the_shipped_curves_are_what_the_shipped_model_gives():
    """A point of results/learning_curves.json, run again from the shipped course model with its stored
    settings, gives the stored scores (to within float noise across machines)."""
    from bertlab.learning_curves import finetune_point
    from bertlab.shipped import load_results

    results = load_results("learning_curves")
    plan = Plan(**{k: tuple(v) if isinstance(v, list) else v for k, v in results["plan"].items() if k != "sizes"})
    assert plan.pooling == Plan().pooling, "the stored curves were made with another pooling than the plan's"
    smallest = min(results["points"], key=lambda r: (r["n"], r["task"] != "sentiment", r["start"], r["seed"]))
    again = finetune_point(plan, smallest["task"], smallest["start"], smallest["n"], smallest["seed"],
                           smallest["learning_rate"])
    assert again["validation"] == pytest.approx(smallest["validation"], abs=0.02)
    assert again["test"] == pytest.approx(smallest["test"], abs=0.02)


@pytest.mark.parametrize("name", ["learning_curves", "pretraining_compute", "transfer_curves"])
def test_the_shipped_curves_chose_on_validation_and_cover_every_point(name):
    """Every (task, start, N) has a point per seed, all at the learning rate that won on validation in the grid
    (the test scores played no part), and a baseline per seed."""
    from bertlab.shipped import load_results

    results = load_results(name)
    plan = results["plan"]
    for task in plan["tasks"]:
        for start in plan["starts"]:
            grid = [r for r in results["grid"] if (r["task"], r["start"]) == (task, start)]
            fixed = plan.get("fixed_rates", {}).get(f"{task}/{start}")
            if fixed is None:
                assert {r["learning_rate"] for r in grid} == set(plan["learning_rates"])
                best = max(r["validation"] for r in grid)  # a tie goes to the smaller rate
                chosen = min(r["learning_rate"] for r in grid if r["validation"] == best)
            else:
                assert not grid
                chosen = fixed
            points = [r for r in results["points"] if (r["task"], r["start"]) == (task, start)]
            assert {r["learning_rate"] for r in points} == {chosen}
            assert sorted((r["n"], r["seed"]) for r in points) == sorted(
                (n, seed) for n in plan["sizes"][task] for seed in plan["seeds"])
        assert len([r for r in results["baselines"] if r["task"] == task]) == len(plan["sizes"][task]) * len(
            plan["seeds"])


def test_each_start_names_its_weights():
    plan = Plan(checkpoints={"course": "c", "minilm": "m"})
    from bertlab.learning_curves import start_weights

    assert start_weights(plan, "course") == ("c", "pretrained")
    assert start_weights(plan, "random") == ("c", "random")
    assert start_weights(plan, "minilm-random") == ("m", "random")
    with pytest.raises(ValueError, match="no checkpoint for the start 'bert'"):
        start_weights(plan, "bert")


@pytest.mark.filterwarnings("ignore:.*(newly initialised|not used from)")
def test_the_sweep_starts_from_stage1_stacked_and_counts_compute(tmp_path):
    """The sweep's first point is stage 1 stacked to the course architecture (layer i = stage-1 layer i mod 2),
    and the compute grows with the steps after stage 1 up to the shipped model's (stages 2 and 3)."""
    import torch

    from bertlab.checkpoint import read_state_dict
    from bertlab.experiments import COURSE, STAGE3
    from bertlab.heads import BertForSequenceClassification
    from bertlab.learning_curves import pretraining_compute, stacked_stage1
    from bertlab.shipped import STAGE1, course_model_dir

    directory = stacked_stage1(tmp_path / "stacked")
    model = BertForSequenceClassification.from_pretrained(directory, num_labels=2)
    stage1 = read_state_dict(STAGE1)
    assert model.config.num_hidden_layers == 4
    for i in range(4):
        key = "encoder.layer.{}.attention.self.value.weight"
        assert torch.equal(model.bert.state_dict()[key.format(i)], stage1["bert." + key.format(i % 2)].float())
    assert (directory / "vocab.txt").read_bytes() == (course_model_dir() / "vocab.txt").read_bytes()
    zero, stage2, full = (pretraining_compute(s) for s in (0, COURSE["max_steps"],
                                                           COURSE["max_steps"] + STAGE3["max_steps"]))
    assert 0 < zero["fraction"] < stage2["fraction"] < full["fraction"] == 1.0
    assert zero["token_layers_millions"] < stage2["token_layers_millions"] < full["token_layers_millions"]


def test_the_sweep_measures_every_checkpoint_against_the_same_random_runs():
    """The compute sweep: the course model's learning rate, its own points identical to the learning curves'
    (the same runs), and checkpoints ordered by compute, the shipped model's being the unit."""
    from bertlab.learning_curves import SWEEP_TASKS
    from bertlab.shipped import load_results

    sweep, curves = load_results("pretraining_compute"), load_results("learning_curves")
    chosen = {(r["task"], r["start"]): r["learning_rate"] for r in curves["points"] if r["task"] in SWEEP_TASKS}
    shared = {(r["task"], r["start"], r["n"], r["seed"]): r["test"] for r in curves["points"]}
    for run in sweep["points"]:
        assert run["learning_rate"] == chosen[(run["task"], "random" if run["start"] == "random" else "course")]
        if run["start"] in ("course", "random"):
            assert run["test"] == shared[(run["task"], run["start"], run["n"], run["seed"])]
    fractions = [c["fraction"] for c in sweep["checkpoints"].values()]
    assert fractions == sorted(fractions) and sweep["checkpoints"]["course"]["fraction"] == 1.0
    assert len(fractions) >= 3
