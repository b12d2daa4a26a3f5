"""The compression search's dimensions: per weighted layer i, `bits_i`, `clusters_i`, `sparsity_i`,
`keep_i` and `codec_i`, each an Optuna dimension where the experiment's `compression:` section
lists more than one choice (a single choice is fixed and not sampled). `keep_i` (channel_keep)
only for the layers whose output channels are free to prune (the family's `channel_layers`:
not a depthwise convolution, whose channels follow its input, nor the output layer). With
`first_last_int8` the first and the last layer have `codec_i` only: their weights stay plain."""
from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import optuna

from autotune.compress.finetune import LayerCompression
from autotune.config import Compression

DIMENSIONS = (("bits", "bitwidths"), ("clusters", "clusters"), ("sparsity", "sparsity"), ("keep", "channel_keep"),
              ("codec", "codecs"))


def sample_compression(trial: optuna.Trial, compression: Compression, layers: int,
                       channel_layers: Collection[int]) -> dict[str, Any]:
    """The open choices of `layers` weighted layers, as trial parameters; a channel keep only for
    the `channel_layers`."""
    params: dict[str, Any] = {}
    plain = _plain_layers(compression, layers)
    for i in range(layers):
        for key, field in DIMENSIONS:
            options = getattr(compression, field)
            if len(options) > 1 and (key != "keep" or i in channel_layers) and (key == "codec" or i not in plain):
                params[f"{key}_{i}"] = trial.suggest_categorical(f"{key}_{i}", list(options))
    return params


def _plain_layers(compression: Compression, layers: int) -> set[int]:
    """The layers whose weights stay plain int8 and unpruned."""
    return {0, layers - 1} if compression.first_last_int8 else set()


def layer_choices(params: Mapping[str, Any], compression: Compression,
                  layers: int) -> tuple[list[LayerCompression], list[str]]:
    """Per weighted layer, how it is compressed in training and the storage its weights take."""
    def value(key: str, field: str, i: int):
        return params.get(f"{key}_{i}", getattr(compression, field)[0])

    plain = _plain_layers(compression, layers)
    specs = [LayerCompression() if i in plain else
             LayerCompression(int(value("bits", "bitwidths", i)), int(value("clusters", "clusters", i)),
                              float(value("sparsity", "sparsity", i)), float(value("keep", "channel_keep", i)))
             for i in range(layers)]
    return specs, [str(value("codec", "codecs", i)) for i in range(layers)]
