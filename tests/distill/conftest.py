import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The toys run many tiny tensor ops; one thread avoids thread-pool overhead on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
