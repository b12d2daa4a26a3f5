"""Datasets: the synthetic LARUN spectral task and the user's own .npz / .csv files."""
from autotune.data.dataset import DataSpec, Dataset, load_dataset
from autotune.data.spectral import CLASS_NAMES, generate_spectral

__all__ = ["CLASS_NAMES", "DataSpec", "Dataset", "generate_spectral", "load_dataset"]
