"""Compression of a model's weights: bit width, clusters and pruning trained in (finetune.py), the
search's per-layer dimensions (search.py), and the storage each weight tensor takes in flash
(storage.py).

The weights stay valid int8 TFLite tensors whatever is done to them, so TFLite Micro remains the
ground truth; compression is how those values are stored and fed to the kernels.
"""
from autotune.compress.storage import StorageChoice, auto_storage, storage_for, store, weight_tensors, with_storage

__all__ = ["StorageChoice", "auto_storage", "storage_for", "store", "weight_tensors", "with_storage"]
