"""Data-parallel pretraining: two CPU processes (gloo on 127.0.0.1) train replicas that stay identical.

Each process runs ``pretrain`` as under ``torchrun --nproc_per_node 2``: it finds RANK, WORLD_SIZE,
MASTER_ADDR and MASTER_PORT in its environment, trains on its own half of every batch, and DDP averages
the gradients. Then it stops half way and resumes, which must give the same weights again.
"""

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from bertlab.pretrain import PretrainConfig, initial_model, pretrain
from bertlab.tokenizer import load_tokenizer
from bertlab.trainer import list_checkpoints

SETTINGS = dict(preset="tiny", task="nsp", max_steps=4, batch_size=4, max_length=48, max_documents=8,
                eval_every=2, eval_batches=1, log_every=1, progress=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(rank: int, world_size: int, port: int, out: str) -> None:
    """One process: straight run, then the same run in two sessions; saves what it ended with."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world_size), BERTLAB_DEVICE="cpu")
    torch.set_num_threads(1)
    try:
        straight = pretrain(PretrainConfig(output_dir=f"{out}/straight", **SETTINGS))
        pretrain(PretrainConfig(output_dir=f"{out}/split", stop_at_step=2, **SETTINGS))
        resumed = pretrain(PretrainConfig(output_dir=f"{out}/split", resume_from="latest", **SETTINGS))
        torch.save({"straight": straight.model.state_dict(), "resumed": resumed.model.state_dict(),
                    "history": straight.history, "metrics": straight.metrics}, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    mp.start_processes(worker, args=(2, free_port(), str(out)), nprocs=2, start_method="spawn")
    return out, [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(2)]


def differing(a: dict, b: dict) -> list[str]:
    return [k for k in a if not torch.equal(a[k], b[k])]


def test_replicas_end_identical_and_trained(ranks):
    _, (r0, r1) = ranks
    assert not differing(r0["straight"], r1["straight"])
    initial = initial_model(PretrainConfig(**SETTINGS), load_tokenizer()).state_dict()
    assert len(differing(initial, r0["straight"])) > 0.9 * len(initial)  # every trained weight has moved


def test_processes_agree_on_the_logged_metrics(ranks):
    """Losses are averaged over the processes (each saw other examples); evaluation is shared from rank 0."""
    _, (r0, r1) = ranks
    assert r0["history"] == r1["history"] and r0["metrics"] == r1["metrics"]
    assert [h["step"] for h in r0["history"] if "eval_mlm_accuracy" in h] == [2, 4]


def test_resume_under_ddp_is_exact_and_only_rank_0_writes(ranks):
    out, (r0, r1) = ranks
    assert not differing(r0["straight"], r0["resumed"]) and not differing(r1["straight"], r1["resumed"])
    assert [p.name for p in list_checkpoints(out / "straight")] == ["checkpoint-4"]
    state = torch.load(out / "straight" / "checkpoint-4" / "trainer_state.pt", weights_only=True)
    assert state["world_size"] == 2 and len(state["ranks"]) == 2  # both processes' RNG states, written once
    assert not torch.equal(state["ranks"][0]["generators"]["masking"], state["ranks"][1]["generators"]["masking"])
