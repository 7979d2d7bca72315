"""Fixtures shared by several test modules."""

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's tiny models on one torch thread: a second intra-op thread gains nothing
    at these sizes, and on a machine whose cores are busy with other jobs its spin-waits make
    each step tens of times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
