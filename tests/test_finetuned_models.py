"""The fine-tuned models that chapter 5 demonstrates: they load, and their stored test scores are what they give."""

import pytest
import torch

from bertlab.finetune import FinetuneConfig, evaluate_task, sample_rows
from bertlab.finetune_tasks import TASKS
from bertlab.finetuned_models import load_scores
from bertlab.shipped import FINETUNED_TASKS, finetuned_model_dir
from bertlab.tokenizer import load_tokenizer


def test_an_unknown_task_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="task must be one of"):
        finetuned_model_dir("nli")


def test_a_model_is_shipped_for_every_fine_tuning_task():
    """shipped.py names the tasks without importing the task definitions (and the corpora behind them)."""
    assert FINETUNED_TASKS == tuple(TASKS)


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("task", FINETUNED_TASKS)
def test_each_shipped_model_gives_its_stored_test_score(task):
    scores = load_scores(task)
    settings = scores["settings"]
    model = TASKS[task].model_class.from_pretrained(finetuned_model_dir(task), strict=True).eval()
    config = FinetuneConfig(task=task, checkpoint=str(finetuned_model_dir(task)), **settings)
    tokenizer = load_tokenizer()
    rows = sample_rows(TASKS[task].load()["test"], settings["test_batches"] * settings["batch_size"], 0)
    features = TASKS[task].encode(rows, tokenizer, settings["max_length"])
    metrics = evaluate_task(model, features, config, TASKS[task], tokenizer.pad_token_id, torch.device("cpu"))
    name = TASKS[task].score_name
    # stored from the float32 weights; the shipped ones are float16, so allow a little rounding
    assert metrics[name] == pytest.approx(scores[f"test_{name}"], abs=0.01)
