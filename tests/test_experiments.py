"""The course's experiments: exporting models into the package, the NSP/SOP cross-evaluation, the baselines,
and the shipped models themselves (they must have learned what the book says they learned)."""

import json

import pytest
import torch
from safetensors.torch import load_file
from shipped_results import stored_or_skip

from bertlab import BertForPreTraining
from bertlab.counting_baselines import bag_of_characters
from bertlab.experiments import cross_evaluate, export_model
from bertlab.pretrain import PretrainConfig, pretrain
from bertlab.pretraining_data import PAIR_TASKS
from bertlab.shipped import course_model_dir, load_results, load_training, pair_model_dir


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    pretrain(PretrainConfig(preset="tiny", task="sop", max_steps=2, batch_size=4, max_length=48, max_documents=8,
                            eval_batches=1, progress=False, output_dir=str(out)))
    return out


def test_export_stores_float16_that_loads_into_float32_with_the_same_outputs(quick_run, tmp_path):
    exported = export_model(quick_run, tmp_path / "model")
    weights = load_file(exported / "model.safetensors")
    assert {v.dtype for v in weights.values() if v.is_floating_point()} == {torch.float16}
    original = BertForPreTraining.from_pretrained(quick_run / "checkpoint-2").eval()
    reloaded = BertForPreTraining.from_pretrained(exported).eval()
    assert next(reloaded.parameters()).dtype == torch.float32
    ids = torch.randint(5, original.config.vocab_size, (2, 12))
    with torch.no_grad():
        a, b = original(ids), reloaded(ids)
    assert torch.allclose(a.prediction_logits, b.prediction_logits, atol=2e-2)
    assert (a.prediction_logits.argmax(-1) == b.prediction_logits.argmax(-1)).float().mean() > 0.9
    training = load_training(exported)
    assert training["checkpoint"] == "checkpoint-2" and training["args"]["max_steps"] == 2
    assert training["history"][-1]["step"] == 2 and "eval_mlm_accuracy" in training["metrics"]
    assert (exported / "vocab.txt").exists() and (exported / "tokenizer.json").exists()


def test_export_of_a_directory_without_checkpoints_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no checkpoint"):
        export_model(tmp_path, tmp_path / "out")


def test_unknown_names_are_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="task must be one of"):
        pair_model_dir("mlm")
    with pytest.raises(ValueError, match="pair_tasks"):
        load_results("no_such_results")


def test_an_untrained_model_is_at_chance_on_every_task(tmp_path):
    model_dir = BertForPreTraining(course_model_config()).save_pretrained(tmp_path / "random")
    table = cross_evaluate({"random": model_dir}, max_examples=256, device=torch.device("cpu"))
    scores = table["random"]
    assert set(scores) == {"mlm_accuracy", "mlm_top5_accuracy", "nsp_accuracy", "sop_accuracy"}
    assert scores["mlm_accuracy"] < 0.02 and scores["mlm_accuracy"] <= scores["mlm_top5_accuracy"] < 0.05
    assert 0.35 < scores["nsp_accuracy"] < 0.65 and 0.35 < scores["sop_accuracy"] < 0.65


def course_model_config():
    from bertlab import BertConfig

    return BertConfig.from_json_file(course_model_dir() / "config.json")


def test_bag_of_characters_baseline_finds_the_telling_character():
    train = {"text": ["很好看", "真好", "好的", "很差", "太差了", "差评"] * 5, "label": [1, 1, 1, 0, 0, 0] * 5}
    test = {"text": ["好书", "差书"], "label": [1, 0]}
    assert bag_of_characters(train, test) == 1.0


# ---- the shipped models ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("longer", [False, True])
def test_every_shipped_model_loads_and_says_how_it_was_trained(longer):
    for task in PAIR_TASKS:
        directory = pair_model_dir(task, longer=longer)
        model = BertForPreTraining.from_pretrained(directory, strict=True)
        training = load_training(directory)
        assert training["args"]["task"] == task
        assert model.config.vocab_size == 3908
        assert training["history"][-1]["step"] == training["args"]["max_steps"]
        # the longer ones went on from the short ones' weights, with the same settings otherwise
        init_from = training["args"].get("init_from") or ""
        assert init_from.endswith(f"{pair_model_dir(task).parent.name}/{task}") == longer


def test_each_longer_model_had_the_same_budget():
    args = [load_training(pair_model_dir(task, longer=True))["args"] for task in PAIR_TASKS]
    budget = {(a["max_steps"], a["batch_size"], a["max_length"], a["learning_rate"], a["seed"]) for a in args}
    assert len(budget) == 1


def test_the_shipped_cross_evaluation_is_what_the_shipped_models_give():
    """results/pair_tasks.json is reproducible from the models next to it (same data, same masks)."""
    results = load_results("pair_tasks")
    for key, longer in (("models", False), ("longer", True)):
        again = cross_evaluate({task: pair_model_dir(task, longer=longer) for task in PAIR_TASKS},
                               device=torch.device("cpu"))
        for task in PAIR_TASKS:
            for metric, value in results[key][task].items():
                assert again[task][metric] == pytest.approx(value, abs=1e-6), (key, task, metric)
    # what chapter 4 reports, with chance as 50% give or take 1.96 standard deviations of 1,024 coin flips
    chance = 1.96 * (0.25 / 1024) ** 0.5
    for key in ("models", "longer"):
        stored = results[key]
        assert stored["nsp"]["nsp_accuracy"] > 0.5 + chance, key  # NSP is learned (through topic)
        assert abs(stored["sop"]["sop_accuracy"] - 0.5) < chance, key  # SOP, on leak-free pairs, is not
        assert abs(stored["nsp"]["sop_accuracy"] - 0.5) < 2 * chance, key  # topic says nothing about order
    longer = results["longer"]  # three times the budget: masked LM alone leaves the plateau, NSP's stays on it
    assert longer["nsp"]["mlm_accuracy"] < longer["sop"]["mlm_accuracy"] < longer["none"]["mlm_accuracy"]


def test_the_course_model_was_pretrained_past_the_plateau_of_character_frequencies():
    """The course model reads the review texts too, and its held-out masked-LM loss is far below that of the
    character frequencies alone (which the 1,500-step pair models barely left behind)."""
    import math
    from collections import Counter

    from bertlab.corpora import load_peoples_daily_documents

    course, sop = load_training(course_model_dir()), load_training(pair_model_dir("sop"))
    assert course["args"]["task"] == "sop" and course["args"]["corpus"] == "peoples_daily+reviews"
    counts = Counter(ch for doc in load_peoples_daily_documents("validation")["sentences"] for s in doc for ch in s)
    total = sum(counts.values())
    frequency_only = -sum(n / total * math.log(n / total) for n in counts.values())
    assert course["metrics"]["eval_mlm_loss"] < frequency_only - 1.5 < sop["metrics"]["eval_mlm_loss"]
    assert course["metrics"]["eval_mlm_accuracy"] > sop["metrics"]["eval_mlm_accuracy"] + 0.1


def test_the_pair_models_downstream_ran_the_curves_protocol_for_every_start():
    """results/pair_downstream.json: every pair model, its longer twin and random weights, on each task, with a
    point per seed at the rate chosen on validation, a probe of each start and a counting baseline."""
    from bertlab.experiments import DOWNSTREAM_NAME, DOWNSTREAM_SIZE, pair_model_plan

    results, plan = stored_or_skip(DOWNSTREAM_NAME), pair_model_plan()
    assert json.loads(json.dumps(results)) == results  # plain JSON
    cells = {(r["task"], r["start"], r["seed"]) for r in results["points"]}
    assert cells == {(task, start, seed) for task in plan.tasks for start in plan.starts
                     for seed in plan.seeds(DOWNSTREAM_SIZE)}
    assert {(r["task"], r["start"]) for r in results["probes"]} == {(t, s) for t in plan.tasks for s in plan.starts}
    assert all(r["stopped_early"] or r["steps"] == r["max_steps"] for r in results["points"])
    assert all(0.0 <= r["test"] <= 1.0 for r in results["points"] + results["probes"] + results["baselines"])


@pytest.mark.slow
def test_the_course_model_held_out_scores_are_what_the_shipped_models_give():
    """results/course_model.json (held-out MLM top-1/top-5 on every test article) reproduces from the shipped
    models, and each stage predicts better than the one it grew from."""
    from bertlab.experiments import COURSE_STAGES

    stored = load_results("course_model")["by_max_length"]["128"]
    again = cross_evaluate(COURSE_STAGES, max_length=128, max_examples=None, device=torch.device("cpu"))
    for name, scores in stored.items():
        for metric, value in scores.items():
            assert again[name][metric] == pytest.approx(value, abs=1e-6), (name, metric)
    for metric in ("mlm_accuracy", "mlm_top5_accuracy"):
        assert stored["course"][metric] > stored["stage 2"][metric] > stored["stage 1"][metric], metric
