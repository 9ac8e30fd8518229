"""Test-wide settings: everything runs offline, on the CPU unless a test asks for CUDA."""

import os

import pytest
import torch

from bertlab.hub import OFFLINE_ENV

for _name, _value in OFFLINE_ENV.items():
    os.environ.setdefault(_name, _value)


@pytest.fixture
def one_thread():
    """Tiny models run faster on one thread, above all on a busy machine (threads wait for each other)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
