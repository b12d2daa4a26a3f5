"""Model families, by name. Importing this package stays cheap: TF is imported only inside `build`."""
from __future__ import annotations

import os

# tfmot needs tf_keras (Keras 2) objects; must be set before anything imports TF.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from search_spaces.base import Choice, FloatRange, IntRange, ParamSpec, SearchSpace  # noqa: E402
from search_spaces.ds_cnn import DSCNN  # noqa: E402
from search_spaces.mlp import MLP  # noqa: E402
from search_spaces.spectral_cnn import SpectralCNN  # noqa: E402

FAMILIES: dict[str, type[SearchSpace]] = {"spectral_cnn": SpectralCNN, "ds_cnn": DSCNN, "mlp": MLP}


def get_family(name: str) -> type[SearchSpace]:
    """The family class for `name`; instantiate it with the YAML's overrides."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise KeyError(f"unknown model family {name!r}; known: {', '.join(FAMILIES)}") from None


__all__ = ["FAMILIES", "get_family", "SearchSpace", "ParamSpec", "IntRange", "FloatRange", "Choice",
           "SpectralCNN", "DSCNN", "MLP"]
