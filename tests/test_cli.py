"""The command line: documented options, clear errors with exit code 2, and runs end to end."""

import dataclasses
import json
import os
import subprocess
import sys

import pytest
import torch

from bertlab import BertConfig, BertForPreTraining
from bertlab.cli import build_parser, main
from bertlab.finetune import FinetuneConfig
from bertlab.hub import OFFLINE_ENV
from bertlab.pretrain import PretrainConfig
from bertlab.tokenizer import load_tokenizer

ENV = {**os.environ, **OFFLINE_ENV}


pytestmark = pytest.mark.usefixtures("one_thread")


def run_main(capsys, *argv):
    """main(argv) -> (exit code, stdout, stderr); argparse's own errors exit through SystemExit."""
    try:
        code = main(list(argv))
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("command, cls", [("pretrain", PretrainConfig), ("finetune", FinetuneConfig)])
def test_help_documents_every_option(capsys, command, cls):
    code, out, _ = run_main(capsys, command, "--help")
    assert code == 0
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        assert flag in out, flag
        assert f.metadata.get("help"), f"{f.name} has no help text"
    assert "(default: 1000)" in out or command == "finetune"


def test_options_map_onto_the_config():
    args = build_parser().parse_args(["pretrain", "--preset", "mini", "--task", "sop", "--whole-word-masking",
                                      "--max-steps", "7", "--no-progress", "--warmup-steps", "2"])
    config = PretrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(PretrainConfig)})
    assert (config.preset, config.task, config.whole_word_masking, config.max_steps) == ("mini", "sop", True, 7)
    assert config.progress is False and config.warmup_steps == 2 and config.tokenizer is None


@pytest.mark.parametrize("argv, message", [
    (["pretrain", "--preset", "huge"], "invalid choice: 'huge'"),
    (["pretrain", "--max-steps", "ten"], "invalid int value"),
    (["pretrain", "--max-steps", "0"], "max_steps must be >= 1"),
    (["pretrain", "--mlm-probability", "1.5"], "mlm_probability"),
    (["finetune", "--task", "sentiment"], "needs a checkpoint directory"),
    (["finetune", "--checkpoint", "runs/does/not/exist"], "does not exist"),
    (["fill-mask", "--model", "./no-such-dir", "台湾大[MASK]"], "does not exist"),
])
def test_bad_input_exits_with_2_and_a_message(capsys, argv, message):
    code, _, err = run_main(capsys, *argv)
    assert code == 2 and message in err and "Traceback" not in err


def test_a_directory_that_is_not_bert_is_refused(capsys, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 2}))
    code, _, err = run_main(capsys, "finetune", "--task", "sentiment", "--checkpoint", str(tmp_path))
    assert code == 2 and "not 'bert'" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run_main(capsys, "fill-mask", "--model", str(empty), "台湾大[MASK]")
    assert code == 2 and "config.json" in err


def saved_tiny_model(directory):
    tokenizer = load_tokenizer()
    torch.manual_seed(0)
    model = BertForPreTraining(BertConfig.from_preset("tiny", vocab_size=len(tokenizer), num_hidden_layers=1))
    with torch.no_grad():
        model.cls.predictions.bias[tokenizer.convert_tokens_to_ids("学")] = 30.0
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def test_fill_mask_command_prints_candidates_and_rejects_text_without_mask(capsys, tmp_path):
    model_dir = str(saved_tiny_model(tmp_path))
    code, out, _ = run_main(capsys, "fill-mask", "--model", model_dir, "--top-k", "2", "台湾大[MASK]")
    assert code == 0
    assert out.splitlines()[0] == "台湾大[MASK]" and out.splitlines()[1].startswith("  [MASK] 1: 学 1.000")
    code, _, err = run_main(capsys, "fill-mask", "--model", model_dir, "台湾大学")
    assert code == 2 and "has no [MASK]" in err and "Traceback" not in err


def test_python_dash_m_bertlab(tmp_path):
    """The module entry point, in a fresh process: output and exit codes as a user sees them."""
    model_dir = str(saved_tiny_model(tmp_path))
    ok = subprocess.run([sys.executable, "-m", "bertlab", "fill-mask", "--model", model_dir, "台湾大[MASK]"],
                        capture_output=True, text=True, env=ENV, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "[MASK] 1: 学" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "bertlab", "fill-mask", "--model", model_dir, "没有掩码"],
                         capture_output=True, text=True, env=ENV, timeout=120)
    assert bad.returncode == 2 and "has no [MASK]" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.filterwarnings("ignore:.*(newly initialised|not used from)")  # the pretraining head -> a classifier
def test_pretrain_then_finetune_then_fill_mask_end_to_end(capsys, tmp_path):
    code, out, err = run_main(
        capsys, "pretrain", "--preset", "tiny", "--max-steps", "4", "--batch-size", "8", "--max-documents", "20",
        "--eval-batches", "2", "--max-length", "64", "--output-dir", str(tmp_path / "pre"), "--no-progress")
    assert code == 0, err
    summary = json.loads(out[out.index("{"):])
    checkpoint = summary["checkpoint_dir"]
    assert summary["step"] == 4 and checkpoint.endswith("checkpoint-4")
    assert 0.0 <= summary["metrics"]["eval_mlm_accuracy"] <= 1.0
    code, out, err = run_main(
        capsys, "finetune", "--task", "sentiment", "--checkpoint", checkpoint, "--max-steps", "3", "--batch-size", "8",
        "--max-train-examples", "64", "--eval-batches", "2", "--output-dir", str(tmp_path / "fine"), "--no-progress")
    assert code == 0, err
    metrics = json.loads(out[out.index("{"):])["metrics"]
    assert {"eval_accuracy", "test_accuracy"} <= set(metrics)
    code, out, _ = run_main(capsys, "fill-mask", "--model", checkpoint, "台湾大[MASK]")
    assert code == 0 and out.count("[MASK] 1:") == 1
