"""Datasets: the synthetic LARUN spectral task and the user's own .npz / .csv files."""
from autotune.data.dataset import SMALL_TEST, DataSpec, Dataset, describe_data, load_dataset
from autotune.data.spectral import CLASS_NAMES, generate_spectral

__all__ = ["CLASS_NAMES", "SMALL_TEST", "DataSpec", "Dataset", "describe_data", "generate_spectral", "load_dataset"]
