import pytest


@pytest.fixture(scope="session")
def zoo_dir(tmp_path_factory):
    """Where tests/model_zoo.py caches its converted models: each converts once a session."""
    path = tmp_path_factory.getbasetemp() / "model_zoo"
    path.mkdir(exist_ok=True)
    return path
