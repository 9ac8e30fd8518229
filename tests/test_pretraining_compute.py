"""The gain against pretraining compute: its first checkpoint, its compute axis, and its shared runs."""

import pytest
from shipped_results import stored_or_skip

from bertlab.pretraining_compute import parse_sweep, pretraining_compute, shipped_steps, stacked_stage1


@pytest.mark.filterwarnings("ignore:.*(newly initialised|not used from)")
def test_the_sweep_starts_from_stage1_stacked_and_counts_compute(tmp_path):
    """The sweep's first point is stage 1 stacked to the course architecture (layer i = stage-1 layer i mod 2),
    and the compute grows with the steps after stage 1 up to the shipped model's (stages 2 and 3)."""
    import torch

    from bertlab.checkpoint import read_state_dict
    from bertlab.experiments import COURSE
    from bertlab.heads import BertForSequenceClassification
    from bertlab.shipped import STAGE1, course_model_dir

    directory = stacked_stage1(tmp_path / "stacked")
    model = BertForSequenceClassification.from_pretrained(directory, num_labels=2)
    stage1 = read_state_dict(STAGE1)
    assert model.config.num_hidden_layers == 4
    for i in range(4):
        key = "encoder.layer.{}.attention.self.value.weight"
        assert torch.equal(model.bert.state_dict()[key.format(i)], stage1["bert." + key.format(i % 2)].float())
    assert (directory / "vocab.txt").read_bytes() == (course_model_dir() / "vocab.txt").read_bytes()
    zero, stage2, full = (pretraining_compute(s) for s in (0, COURSE["max_steps"], shipped_steps()))
    assert 0 < zero["fraction"] < stage2["fraction"] < full["fraction"] == 1.0
    assert zero["token_layers_millions"] < stage2["token_layers_millions"] < full["token_layers_millions"]


def test_sweep_arguments_name_a_directory_and_its_steps():
    assert parse_sweep(["mid=runs/x/checkpoint-8000:13000"]) == {"mid": ("runs/x/checkpoint-8000", 13000)}
    with pytest.raises(ValueError, match="NAME=DIR:STEPS"):
        parse_sweep(["runs/x"])


def test_the_sweep_shares_the_course_and_random_runs_of_the_curves():
    """The course model's and random weights' points are the learning curves' own (same rate, seed, examples and
    score); the checkpoints are ordered by compute, the shipped model's being the unit."""
    sweep, curves = stored_or_skip("pretraining_compute"), stored_or_skip("learning_curves")
    shared = {(r["task"], r["start"], r["n"], r["seed"]): (r["learning_rate"], r["test"]) for r in curves["points"]}
    mine = [r for r in sweep["points"] if r["start"] in ("course", "random")]
    assert mine and all(shared[(r["task"], r["start"], r["n"], r["seed"])] == (r["learning_rate"], r["test"])
                        for r in mine)
    fractions = [c["fraction"] for c in sweep["checkpoints"].values()]
    assert fractions == sorted(fractions) and sweep["checkpoints"]["course"]["fraction"] == 1.0
    assert len(fractions) >= 3
