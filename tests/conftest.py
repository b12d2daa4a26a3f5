import pytest

from tiny import run_tiny


@pytest.fixture(scope="session")
def zoo_dir(tmp_path_factory):
    """Where tests/model_zoo.py caches its converted models: each converts once a session."""
    path = tmp_path_factory.getbasetemp() / "model_zoo"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """One tiny search, shared by the tests that read its outputs or export from it."""
    return run_tiny(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def sim_cache(tmp_path_factory):
    """apollo5-sim's QEMU plugin and llvm-mca block timings, built and measured once a session."""
    return tmp_path_factory.mktemp("apollo5_sim")
