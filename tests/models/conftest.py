import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """These tests run many tiny ops, where extra OpenMP threads only add synchronisation (and stalls on a
    shared machine); one thread is faster and keeps the numbers bitwise reproducible."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
