import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """Unit tests are small: one thread keeps them fast and deterministic."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)
