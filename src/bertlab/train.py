"""Training, in one import: ``from bertlab.train import pretrain, PretrainConfig, finetune, FinetuneConfig``.

The pieces live in their own modules: :mod:`bertlab.optim` (AdamW, warm-up and linear decay),
:mod:`bertlab.trainer` (the loop and its checkpoints), :mod:`bertlab.distributed` (torchrun, data order),
:mod:`bertlab.pretrain` and :mod:`bertlab.finetune` (the two kinds of run).
"""

from .finetune import FinetuneConfig, finetune
from .pretrain import PretrainConfig, pretrain
from .trainer import TrainArgs, TrainResult

__all__ = ["PretrainConfig", "pretrain", "FinetuneConfig", "finetune", "TrainArgs", "TrainResult"]
