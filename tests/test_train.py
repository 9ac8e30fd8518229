"""The training loop: optimiser and schedule, data order, exact resume, metrics, and real runs on tiny data."""

import contextlib
import json
import math
from collections import Counter

import pytest
import torch

from bertlab import BertConfig, BertForPreTraining
from bertlab.corpora import load_pos_tagging, load_span_extraction
from bertlab.distributed import BatchOrder, DistInfo
from bertlab.evaluate import best_span, char_f1, classification_accuracy, exact_match, mlm_accuracy, token_accuracy
from bertlab.finetune import FinetuneConfig, finetune
from bertlab.finetune_tasks import answer_token_span, encode_char_labels, encode_spans
from bertlab.labels import IGNORE_INDEX
from bertlab.optim import build_optimizer, linear_schedule, warmup_linear_decay
from bertlab.pretrain import PretrainConfig, initial_model, pretrain
from bertlab.tokenizer import load_tokenizer
from bertlab.trainer import STATE_NAME, TrainArgs, Trainer, list_checkpoints, set_seed

V = 60  # vocabulary of the synthetic data
TINY = dict(vocab_size=V, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            max_position_embeddings=32)


pytestmark = pytest.mark.usefixtures("one_thread")


# ---- optimiser and schedule -------------------------------------------------------------------
def test_no_weight_decay_on_biases_and_layernorm_only():
    model = BertForPreTraining(BertConfig(**TINY))
    decay, rest = build_optimizer(model, weight_decay=0.01).param_groups
    assert decay["weight_decay"] == 0.01 and rest["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    exempt = {names[id(p)] for p in rest["params"]}
    assert "bert.embeddings.word_embeddings.weight" in decayed
    assert "bert.encoder.layer.0.attention.self.query.weight" in decayed
    assert "bert.encoder.layer.0.attention.self.query.bias" in exempt
    assert "bert.embeddings.LayerNorm.weight" in exempt and "cls.predictions.bias" in exempt
    assert all(n.endswith("bias") or "LayerNorm" in n for n in exempt)
    assert len(decayed) + len(exempt) == len(list(model.parameters()))


def test_warmup_then_linear_decay_to_zero():
    lin = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(lin.parameters(), lr=1.0)
    sched = linear_schedule(opt, warmup_steps=4, total_steps=12)
    lrs = []
    for _ in range(12):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])  # rising to the peak
    assert lrs[4:] == pytest.approx([1.0 - i / 8 for i in range(8)])  # then falling linearly ...
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0)  # ... to 0 after the last step
    assert warmup_linear_decay(0, 0, 10) == 1.0
    with pytest.raises(ValueError, match="warmup_steps"):
        linear_schedule(opt, warmup_steps=13, total_steps=12)


# ---- data order -------------------------------------------------------------------------------
def test_batch_order_shards_are_disjoint_and_reshuffled_each_epoch():
    orders = [BatchOrder(23, batch_size=3, seed=1, rank=r, world_size=2) for r in range(2)]
    assert orders[0].batches_per_epoch == 3  # 23 // 2 // 3; the rest of the epoch is dropped
    epoch0 = [[i for _ in range(3) for i in o.next_batch()] for o in orders]
    assert not set(epoch0[0]) & set(epoch0[1]) and len(set(epoch0[0] + epoch0[1])) == 18
    epoch1 = [i for _ in range(3) for i in orders[0].next_batch()]
    assert orders[0].epoch == 1 and epoch1 != epoch0[0]
    assert BatchOrder(23, 3, seed=1, rank=0, world_size=2).epoch_indices(0) == epoch0[0]  # reproducible


def test_batch_order_resumes_where_it_stopped():
    a = BatchOrder(20, 4, seed=5)
    straight = [a.next_batch() for _ in range(12)]
    b = BatchOrder(20, 4, seed=5)
    first = [b.next_batch() for _ in range(7)]
    c = BatchOrder(20, 4, seed=5)
    c.load_state_dict(b.state_dict())
    assert first + [c.next_batch() for _ in range(5)] == straight
    with pytest.raises(ValueError, match="batch_size"):
        BatchOrder(20, 5, seed=5).load_state_dict(b.state_dict())
    with pytest.raises(ValueError, match="fewer than one batch"):
        BatchOrder(5, 4, world_size=2)


# ---- the loop on synthetic data ---------------------------------------------------------------
def synthetic_rows(n: int = 48):
    """Four token sequences over and over (a model can learn them quickly), with pair labels 0, 1, 0, 1 ..."""
    g = torch.Generator().manual_seed(0)
    patterns = [torch.randint(5, V, (14,), generator=g).tolist() for _ in range(4)]
    return [{"ids": [2] + patterns[i % 4] + [3], "pair": i % 2} for i in range(n)]


def synthetic_collate(generator: torch.Generator):
    """Masks 30% of the non-special tokens, drawing from ``generator`` (as the real collator does)."""
    def collate(rows):
        ids = torch.tensor([r["ids"] for r in rows])
        chosen = (torch.rand(ids.shape, generator=generator) < 0.3) & (ids > 4)
        return dict(input_ids=torch.where(chosen, 4, ids), attention_mask=torch.ones_like(ids),
                    labels=torch.where(chosen, ids, -100), next_sentence_label=torch.tensor([r["pair"] for r in rows]))
    return collate


def pretraining_loss(model, batch):
    out = model(**batch, masked_only=True)
    return {"loss": out.loss, "mlm_loss": out.mlm_loss}


def synthetic_run(output_dir, evaluate=None, **overrides):
    set_seed(0)
    model = BertForPreTraining(BertConfig(**TINY))  # dropout 0.1: the torch RNG matters
    masking = torch.Generator().manual_seed(0)
    args = TrainArgs(**{**dict(output_dir=str(output_dir), max_steps=10, batch_size=4, log_every=2, eval_every=0,
                               progress=False, learning_rate=3e-3), **overrides})
    trainer = Trainer(model, args, synthetic_rows(), synthetic_collate(masking), pretraining_loss, info=DistInfo(),
                      device=torch.device("cpu"), evaluate=evaluate, generators={"masking": masking})
    return trainer.train()


def assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    different = [k for k in sa if not torch.equal(sa[k], sb[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


def test_resume_gives_bitwise_the_same_weights_as_training_straight(tmp_path):
    straight = synthetic_run(tmp_path / "straight")  # 10 steps; 10 / 4 = 2.5 epochs of 4 batches
    first = synthetic_run(tmp_path / "split", stop_at_step=5)
    assert first.step == 5 and first.checkpoint_dir.name == "checkpoint-5"
    assert (first.checkpoint_dir / STATE_NAME).exists() and (first.checkpoint_dir / "model.safetensors").exists()
    resumed = synthetic_run(tmp_path / "split", resume_from="latest")
    assert resumed.step == 10
    assert_same_weights(straight.model, resumed.model)
    assert resumed.history == straight.history  # the log of the first session is carried over
    initial = synthetic_run(tmp_path / "init", max_steps=1, learning_rate=1e-9).model
    bias = "cls.predictions.bias"
    assert not torch.equal(initial.state_dict()[bias], straight.model.state_dict()[bias])


def test_resume_without_the_masking_generator_state_differs(tmp_path):
    """The test above can fail: resuming with a fresh masking generator changes the result."""
    straight = synthetic_run(tmp_path / "straight")
    synthetic_run(tmp_path / "split", stop_at_step=5)
    state_path = tmp_path / "split" / "checkpoint-5" / STATE_NAME
    state = torch.load(state_path, weights_only=True)
    state["ranks"][0]["generators"]["masking"] = torch.Generator().manual_seed(0).get_state()
    torch.save(state, state_path)
    resumed = synthetic_run(tmp_path / "split", resume_from=str(state_path.parent))
    assert not torch.equal(straight.model.state_dict()["cls.predictions.bias"],
                           resumed.model.state_dict()["cls.predictions.bias"])


def test_evaluating_does_not_change_training(tmp_path):
    calls = []

    def evaluate(model):
        assert not model.training
        calls.append(1)
        torch.rand(3)  # even an evaluation that draws random numbers leaves the training RNG alone
        return {"constant": 1.0}

    plain = synthetic_run(tmp_path / "plain")
    evaluated = synthetic_run(tmp_path / "eval", evaluate=evaluate, eval_every=3)
    assert len(calls) == 4  # steps 3, 6, 9 and the last one
    assert_same_weights(plain.model, evaluated.model)
    assert [h["step"] for h in evaluated.history if "eval_constant" in h] == [3, 6, 9, 10]
    assert evaluated.metrics == {"eval_constant": 1.0}


def test_loss_falls_and_checkpoints_are_pruned(tmp_path):
    result = synthetic_run(tmp_path, max_steps=40, save_every=10, save_total_limit=2, warmup_steps=4)
    losses = [h["train_mlm_loss"] for h in result.history]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.5, losses
    assert [p.name for p in list_checkpoints(tmp_path)] == ["checkpoint-30", "checkpoint-40"]
    history = json.loads((tmp_path / "history.json").read_text())
    assert history == result.history and all(math.isfinite(h["train_loss"]) for h in history)
    with pytest.raises(ValueError, match="already holds checkpoints"):
        synthetic_run(tmp_path)
    with pytest.raises(ValueError, match="already"):
        synthetic_run(tmp_path, resume_from="latest", max_steps=40)
    assert synthetic_run(tmp_path, overwrite_output_dir=True, max_steps=2).step == 2


def test_bad_settings_are_named(tmp_path):
    for kwargs, match in [(dict(max_steps=0), "max_steps"), (dict(warmup_steps=20), "warmup_steps"),
                          (dict(stop_at_step=11), "stop_at_step"), (dict(eval_every=-1), "eval_every")]:
        with pytest.raises(ValueError, match=match):
            TrainArgs(max_steps=kwargs.pop("max_steps", 10), **kwargs).validate()
    with pytest.raises(ValueError, match="no trainer_state.pt"):
        synthetic_run(tmp_path, resume_from=str(tmp_path / "checkpoint-3"))


# ---- metrics ----------------------------------------------------------------------------------
def test_mlm_accuracy_counts_masked_positions_only_in_both_layouts():
    labels = torch.tensor([[-100, 3, -100, 1], [2, -100, -100, -100]])
    logits = torch.zeros(2, 4, 5)
    logits[0, 1, 3] = logits[0, 3, 0] = logits[1, 0, 2] = 1.0  # right, wrong, right
    logits[0, 0, 4] = 9.0  # an unmasked position: never counted
    assert mlm_accuracy(logits, labels) == (2, 3)
    assert mlm_accuracy(logits[labels != -100], labels) == (2, 3)  # the (M, V) logits of masked_only=True
    with pytest.raises(ValueError, match="masked positions"):
        mlm_accuracy(torch.zeros(4, 5), labels)


def test_classification_and_token_accuracy():
    logits = torch.tensor([[2.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    assert classification_accuracy(logits, torch.tensor([0, 0, 1])) == (2, 3)
    logits = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]])
    assert token_accuracy(logits, torch.tensor([[0, 0, -100]])) == (1, 2)


def test_best_span_respects_order_length_and_context():
    start = torch.tensor([0.0, 5.0, 0.0, 0.0, 9.0, 0.0])
    end = torch.tensor([0.0, 0.0, 4.0, 8.0, 0.0, 0.0])
    context = torch.tensor([False, True, True, True, True, True])
    assert best_span(start, end, context, max_answer_length=30) == (1, 3)  # (4, 3) scores more but ends first
    assert best_span(start, end, context, max_answer_length=2) == (1, 2)  # (1, 3) is 3 tokens long
    assert best_span(start, end, torch.tensor([False, False, True, True, False, False]), 30) == (2, 3)
    with pytest.raises(ValueError, match="no token"):
        best_span(start, end, torch.zeros(6, dtype=torch.bool))


def test_exact_match_and_char_f1():
    assert exact_match("北京 大学", "北京大学") == 1.0 and exact_match("北京", "北京大学") == 0.0
    assert char_f1("北京", "北京大学") == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert char_f1("上海", "北京") == 0.0 and char_f1("", "") == 1.0


# ---- real runs on the course data (tiny model, a few steps) -----------------------------------
@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer()


def tiny_pretrain(output_dir, **overrides):
    config = PretrainConfig(**{**dict(output_dir=str(output_dir), preset="tiny", max_steps=4, batch_size=8,
                                      max_length=64, max_documents=12, eval_batches=2, eval_every=2, log_every=1,
                                      progress=False), **overrides})
    return pretrain(config)


@pytest.mark.parametrize("task", ["nsp", "sop", "none"])
def test_pretrain_writes_a_self_contained_checkpoint(tmp_path, task):
    result = tiny_pretrain(tmp_path, task=task)
    assert result.step == 4 and result.checkpoint_dir == tmp_path / "checkpoint-4"
    names = {p.name for p in result.checkpoint_dir.iterdir()}
    assert {"config.json", "model.safetensors", "vocab.txt", "tokenizer.json", STATE_NAME} <= names
    evals = [h for h in result.history if "eval_mlm_accuracy" in h]
    assert [h["step"] for h in evals] == [2, 4]
    assert ("eval_sentence_accuracy" in result.metrics) == (task != "none")
    assert ("train_sentence_loss" in result.history[0]) == (task != "none")
    assert 0.0 <= result.metrics["eval_mlm_accuracy"] <= 1.0 and math.isfinite(result.metrics["eval_loss"])
    reloaded = BertForPreTraining.from_pretrained(result.checkpoint_dir, strict=True)
    assert_same_weights(reloaded, result.model)
    assert len(load_tokenizer(result.checkpoint_dir)) == reloaded.config.vocab_size


def test_pretrain_resumes_exactly_on_the_course_data(tmp_path):
    """N steps straight == N/2, stop, resume, N/2: with whole-word masking, SOP and dropout all drawing randomness."""
    settings = dict(task="sop", whole_word_masking=True, max_steps=6, eval_every=3)
    straight = tiny_pretrain(tmp_path / "straight", **settings)
    assert tiny_pretrain(tmp_path / "split", stop_at_step=3, **settings).step == 3
    resumed = tiny_pretrain(tmp_path / "split", resume_from="latest", **settings)
    assert_same_weights(straight.model, resumed.model)
    assert resumed.history == straight.history
    initial = initial_model(PretrainConfig(**settings), load_tokenizer())
    bias = "cls.predictions.bias"
    assert not torch.equal(initial.state_dict()[bias], straight.model.state_dict()[bias])


def test_pretraining_learns_the_masked_lm(tmp_path):
    """A few dozen steps on 12 articles: the training MLM loss falls well below its starting value, ln(vocab)."""
    result = tiny_pretrain(tmp_path, task="none", max_steps=40, learning_rate=2e-3, warmup_steps=4, eval_every=0,
                           max_documents=6, log_every=5)
    losses = [h["train_mlm_loss"] for h in result.history if "train_mlm_loss" in h]
    assert losses[0] > 7.5 and losses[-1] < losses[0] - 1.5, losses


@pytest.mark.filterwarnings("ignore:.*(newly initialised|not used from)")  # the pretraining head -> a task head
@pytest.mark.parametrize("task", ["sentiment", "pos", "pair", "qa"])
def test_finetune_each_task_from_a_checkpoint_and_from_random_weights(tmp_path, tokenizer, task):
    torch.manual_seed(0)
    BertForPreTraining(BertConfig.from_preset("tiny", vocab_size=len(tokenizer))).save_pretrained(tmp_path / "pre")
    tokenizer.save_pretrained(tmp_path / "pre")
    results = {}
    for init in ("pretrained", "random"):
        config = FinetuneConfig(task=task, checkpoint=str(tmp_path / "pre"), init=init, max_steps=3, batch_size=8,
                                max_train_examples=32, eval_batches=2, output_dir=str(tmp_path / init), progress=False)
        results[init] = finetune(config)
    keys = {"exact_match", "f1"} if task == "qa" else {"accuracy", "loss"}
    for result in results.values():
        assert {f"{split}_{k}" for split in ("eval", "test") for k in keys} <= set(result.metrics)
        assert all(0.0 <= v <= 1.0 for k, v in result.metrics.items() if not k.endswith("loss"))
        assert json.loads((result.checkpoint_dir.parent / "test_metrics.json").read_text())
    # the same budget, a different start: the encoder weights after fine-tuning differ
    a, b = (r.model.state_dict()["bert.embeddings.word_embeddings.weight"] for r in results.values())
    assert not torch.equal(a, b)


def test_qa_answer_positions_point_at_the_answer_text(tokenizer):
    rows = load_span_extraction("validation").select(range(200))
    features = encode_spans(rows, tokenizer, max_length=128)
    hits = 0
    for f in features:
        start, end = f["start_positions"], f["end_positions"]
        if (start, end) == (0, 0):
            continue  # the answer was truncated away
        assert f["context_mask"][start] and f["context_mask"][end] and start <= end
        assert f["contexts"][f["offsets"][start][0]: f["offsets"][end][1]] == f["answers"]
        hits += 1
    assert hits >= 190
    short = encode_spans(rows.select(range(20)), tokenizer, max_length=16)
    assert any((f["start_positions"], f["end_positions"]) == (0, 0) for f in short)


def test_answer_token_span_maps_characters_to_tokens():
    offsets = [(0, 0), (0, 1), (1, 2), (0, 0), (0, 2), (2, 3), (3, 4), (0, 0)]  # [CLS] q q [SEP] ctx ctx ctx [SEP]
    in_context = [False, False, False, False, True, True, True, False]
    assert answer_token_span(offsets, in_context, 2, 4) == (5, 6)
    assert answer_token_span(offsets, in_context, 1, 2) == (4, 4)  # inside a two-character token
    assert answer_token_span(offsets, in_context, 3, 6) == (0, 0)  # runs past the (truncated) context


def test_pos_labels_follow_the_characters(tokenizer):
    rows = load_pos_tagging("validation").select(range(50))
    for row, f in zip(rows, encode_char_labels(rows, tokenizer, max_length=512), strict=True):
        labelled = [label for label in f["labels"] if label != IGNORE_INDEX]
        assert f["labels"][0] == f["labels"][-1] == IGNORE_INDEX  # [CLS] and [SEP]
        if len(labelled) == len(row["text"]):  # one token per character (no Latin words or digits)
            assert labelled == row["char_labels"]
        assert set(labelled) <= set(row["char_labels"])


def test_finetuning_learns_part_of_speech(tmp_path):
    """60 steps from random weights beat always answering the most frequent tag by a wide margin."""
    config = FinetuneConfig(task="pos", init="random", preset="tiny", max_steps=60, batch_size=16, learning_rate=1e-3,
                            max_length=64, max_train_examples=960, eval_batches=8, eval_every=0, log_every=10,
                            output_dir=str(tmp_path), progress=False)
    result = finetune(config)
    tags = Counter(label for row in load_pos_tagging("validation") for label in row["char_labels"])
    majority = tags.most_common(1)[0][1] / sum(tags.values())
    assert result.metrics["eval_accuracy"] > majority + 0.15, (result.metrics, majority)
    losses = [h["train_loss"] for h in result.history if "train_loss" in h]
    assert losses[-1] < losses[0] - 1.0, losses


def test_keep_best_tests_the_weights_of_the_best_validation_score(tmp_path):
    """With keep_best the run ends with the weights of its best evaluation: evaluating them again gives the best
    validation score (and loss) that the run recorded at that step, not at the last (the learning rate is far too
    high, so the scores jump around)."""
    from bertlab.finetune import evaluate_task, sample_rows
    from bertlab.finetune_tasks import TASKS

    config = FinetuneConfig(task="pos", init="random", preset="tiny", max_steps=12, batch_size=8, learning_rate=3e-2,
                            max_length=32, max_train_examples=64, eval_batches=2, eval_every=2, keep_best=True,
                            output_dir=str(tmp_path), progress=False)
    result = finetune(config)
    evals = [h for h in result.history if "eval_accuracy" in h]
    best = max(evals, key=lambda h: h["eval_accuracy"])  # the first of equal scores: later ties do not replace it
    assert best["step"] != evals[-1]["step"] and best["eval_loss"] != evals[-1]["eval_loss"]
    assert (result.metrics["best_eval_accuracy"], result.metrics["best_eval_step"]) == (best["eval_accuracy"],
                                                                                      best["step"])
    tokenizer, task = load_tokenizer(), TASKS["pos"]
    validation = task.encode(sample_rows(task.load()["validation"], 16, 0), tokenizer, 32)  # the run's 2 batches of 8
    again = evaluate_task(result.model.eval(), validation, config, task, tokenizer.pad_token_id, torch.device("cpu"))
    assert again == pytest.approx({"accuracy": best["eval_accuracy"], "loss": best["eval_loss"]})


def test_patience_stops_a_run_once_its_best_score_is_that_many_evaluations_old(tmp_path):
    """Early stopping: the run ends at the evaluation that makes `patience` in a row without a new best, is scored
    on test with its best weights, and says it stopped early; without patience the same run goes on."""
    settings = dict(task="pos", init="random", preset="tiny", max_steps=40, batch_size=8, learning_rate=3e-2,
                    max_length=32, max_train_examples=64, eval_batches=2, eval_every=2, keep_best=True,
                    progress=False)
    result = finetune(FinetuneConfig(**settings, patience=2, output_dir=str(tmp_path / "a")))
    evals = [h for h in result.history if "eval_accuracy" in h]
    best = next(h["step"] for h in evals if h["eval_accuracy"] == result.metrics["best_eval_accuracy"])
    assert result.metrics["stopped_early"] and result.step == best + 2 * 2 < 40
    assert evals[-1]["step"] == result.step and "test_accuracy" in result.metrics
    longer = finetune(FinetuneConfig(**settings, output_dir=str(tmp_path / "b")))
    assert longer.step == 40 and not longer.metrics["stopped_early"]
    with pytest.raises(ValueError, match="patience"):
        FinetuneConfig(**{**settings, "keep_best": False}, patience=2).validate()


def test_one_seed_gives_every_start_the_same_head(tmp_path):
    """seeded_head: the classifier of a pretrained start and of a random one, built with one seed, are equal (so a
    paired difference of the two measures the encoder); another seed draws another head."""
    from bertlab.finetune import build_model
    from bertlab.finetune_tasks import TASKS
    from bertlab.shipped import course_model_dir

    tokenizer, task = load_tokenizer(), TASKS["sentiment"]
    heads = {}
    for init, seed in (("pretrained", 3), ("random", 3), ("random", 4)):
        config = FinetuneConfig(task="sentiment", init=init, checkpoint=str(course_model_dir()), seed=seed)
        with pytest.warns(UserWarning) if init == "pretrained" else contextlib.nullcontext():
            model = build_model(config, task, 2, course_model_dir(), tokenizer)
        heads[init, seed] = model.classifier.weight.detach().clone()
    assert torch.equal(heads["pretrained", 3], heads["random", 3])
    assert not torch.equal(heads["random", 3], heads["random", 4])
    assert heads["random", 3].std().item() == pytest.approx(0.02, rel=0.2)


def test_stacking_copies_each_trained_layer_into_the_deeper_model(tmp_path):
    """Progressive stacking: a 2-layer checkpoint fills 4 layers as 0, 1, 0, 1; embeddings and heads carry over."""
    from bertlab.pretrain import stacked_state

    shallow = BertForPreTraining(BertConfig(**TINY))
    state = stacked_state(shallow.state_dict(), 4)
    deep = BertForPreTraining(BertConfig(**{**TINY, "num_hidden_layers": 4}))
    deep.load_hf_state_dict(state, strict=True)
    own = shallow.state_dict()
    for i in range(4):
        key = f"bert.encoder.layer.{i}.attention.self.query.weight"
        assert torch.equal(deep.state_dict()[key], own[f"bert.encoder.layer.{i % 2}.attention.self.query.weight"])
    assert torch.equal(deep.bert.embeddings.word_embeddings.weight, shallow.bert.embeddings.word_embeddings.weight)
    with pytest.raises(ValueError, match="cannot stack a checkpoint of 2 layers into 3"):
        stacked_state(own, 3)


def test_mean_pooling_classifies_the_mean_of_the_real_tokens_only():
    from bertlab import BertForSequenceClassification

    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(**TINY, classifier_pooling="mean")).eval()
    ids = torch.randint(5, V, (1, 6))
    padded = torch.cat([ids, torch.zeros(1, 3, dtype=torch.long)], dim=1)
    mask = torch.tensor([[1] * 6 + [0] * 3])
    with torch.no_grad():
        alone = model(ids).logits
        with_padding = model(padded, attention_mask=mask).logits
        hidden = model.bert(ids).last_hidden_state
    assert torch.allclose(alone, with_padding, atol=1e-5)
    assert torch.allclose(alone, model.classifier(hidden.mean(1)), atol=1e-5)
    with pytest.raises(ValueError, match="classifier_pooling must be one of"):
        BertConfig(**TINY, classifier_pooling="max")


def test_transfer_keeps_the_source_layers_frozen_and_learns_new_embeddings(tmp_path):
    """Artetxe et al.'s recipe: the source's layers load unchanged and stay frozen; tokens both vocabularies
    share start from the source's vectors; only the token embeddings and the MLM head get gradients."""
    from bertlab.pretrain import PretrainConfig, initial_model
    from bertlab.tokenizer import load_tokenizer

    tokenizer = load_tokenizer()
    source = BertForPreTraining(BertConfig(**{**TINY, "vocab_size": 40}))
    source.save_pretrained(tmp_path)
    shared = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "的", "中"]
    (tmp_path / "vocab.txt").write_text("\n".join(shared + [f"word{i}" for i in range(33)]) + "\n")
    config = PretrainConfig(task="none", transfer_from=str(tmp_path), max_length=32)
    config.validate()
    model = initial_model(config, tokenizer)
    assert model.config.vocab_size == len(tokenizer) and model.config.hidden_size == TINY["hidden_size"]
    layer = "bert.encoder.layer.1.output.dense.weight"
    assert torch.equal(model.state_dict()[layer], source.state_dict()[layer])
    new, old = model.bert.embeddings.word_embeddings.weight, source.bert.embeddings.word_embeddings.weight
    for i, token in enumerate(shared):
        assert torch.equal(new[tokenizer.convert_tokens_to_ids(token)], old[i])
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "bert.embeddings.word_embeddings.weight" in trainable
    assert trainable - {"bert.embeddings.word_embeddings.weight"} and all(
        n.startswith("cls.predictions.") for n in trainable - {"bert.embeddings.word_embeddings.weight"})
    with pytest.raises(ValueError, match="task='none'"):
        PretrainConfig(task="sop", transfer_from=str(tmp_path)).validate()


@pytest.mark.parametrize("probability", [0.0, 1.0, 1.5, True, "0.15"])
def test_every_entry_point_rejects_a_bad_mlm_probability_with_one_message(probability, tokenizer):
    """The config of a pretraining run, the collator and mask_tokens share one rule (masking.check_mlm_probability)."""
    from bertlab.masking import mask_tokens
    from bertlab.pretraining_data import PretrainingCollator

    messages = set()
    for attempt in (lambda: PretrainConfig(mlm_probability=probability).validate(),
                    lambda: PretrainingCollator(tokenizer, mlm_probability=probability),
                    lambda: mask_tokens(torch.tensor([5, 6, 7]), vocab_size=10, mask_token_id=4,
                                        special_token_ids=[0], mlm_probability=probability)):
        with pytest.raises(ValueError, match="mlm_probability must be a number strictly between 0 and 1") as e:
            attempt()
        messages.add(str(e.value))
    assert len(messages) == 1
