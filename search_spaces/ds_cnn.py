"""Keyword-spotting style DS-CNN (Zhang et al., "Hello Edge") for 2D inputs (H, W, C).

A strided conv stem, then blocks of depthwise 3x3 + BN + ReLU + pointwise 1x1 + BN + ReLU, GAP,
dense softmax. 1D signals (1, L, C) are accepted too: every kernel and stride becomes (1, k), so
the same family serves both kinds and stays tfmot/int8 friendly (no Conv1D anywhere).
"""
from __future__ import annotations

from typing import Any, Mapping

import optuna

from search_spaces.base import Choice, IntRange, SearchSpace, suggest


class DSCNN(SearchSpace):
    name = "ds_cnn"
    signal_kinds = ("1d", "2d")
    defaults = {
        "first_filters": Choice((8, 16, 32, 64)),
        "first_kernel": Choice((3, 5)),
        "first_stride": Choice((1, 2)),
        "blocks": IntRange(1, 4),
        "block_filters": Choice((16, 32, 64)),  # shared by all blocks, as in DS-CNN
        # 2: the depthwise of blocks 0, 2, ... has stride 2 (skipped once a dimension would drop
        # below 2). A choice of strides rather than a count of strided blocks, so it is never 0.
        "block_stride": Choice((1, 2)),
    }
    # The largest DS-CNNs of the space under 100 ms on the RP2040 (Cortex-M0+ kernels; 58-78 ms,
    # 9.5-13.7 KB RAM on 28x28 images): 4 blocks of 32 filters after a 16-filter stem, downsampled
    # once by the stem or twice by the blocks. On Fashion-MNIST's test split (accuracy benchmark,
    # n=10,000): 0.883 and 0.879.
    starting_points = (
        {"first_filters": 16, "first_kernel": 3, "first_stride": 2, "blocks": 4, "block_filters": 32,
         "block_stride": 1},
        {"first_filters": 16, "first_kernel": 3, "first_stride": 1, "blocks": 4, "block_filters": 32,
         "block_stride": 2},
    )

    def sample(self, trial: optuna.Trial) -> dict[str, Any]:
        return {key: suggest(trial, key, spec) for key, spec in self.ranges.items()}

    def weighted_layers(self, params: Mapping[str, Any]) -> int:
        return 2 * int(params["blocks"]) + 2

    def channel_layers(self, params: Mapping[str, Any]) -> list[int]:
        return [0] + [2 * i + 2 for i in range(int(params["blocks"]))]  # the stem and each pointwise

    def build(self, params: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int):
        import tf_keras as keras
        from tf_keras import layers

        if len(input_shape) != 3:
            raise ValueError(f"{self.name} takes (H, W, C) or (1, L, C) inputs, got {tuple(input_shape)}")
        one_d = input_shape[0] == 1
        dims = [input_shape[1]] if one_d else list(input_shape[:2])

        def kernel(k: int) -> tuple[int, int]:
            return (1, k) if one_d else (k, k)

        def stride(s: int) -> tuple[int, int]:
            nonlocal dims
            if s > 1 and min(-(-d // s) for d in dims) < 2:
                s = 1
            dims = [-(-d // s) for d in dims]  # SAME padding: ceil(d / s)
            return (1, s) if one_d else (s, s)

        x = inputs = keras.Input(shape=tuple(input_shape))
        x = layers.Conv2D(int(params["first_filters"]), kernel(int(params["first_kernel"])),
                          strides=stride(int(params["first_stride"])), padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        for i in range(int(params["blocks"])):
            s = int(params["block_stride"]) if i % 2 == 0 else 1
            x = layers.DepthwiseConv2D(kernel(3), strides=stride(s), padding="same", use_bias=False)(x)
            x = layers.BatchNormalization()(x)
            x = layers.ReLU()(x)
            x = layers.Conv2D(int(params["block_filters"]), 1, use_bias=False)(x)
            x = layers.BatchNormalization()(x)
            x = layers.ReLU()(x)
        x = layers.GlobalAveragePooling2D()(x)
        outputs = layers.Dense(num_classes, activation="softmax")(x)
        return keras.Model(inputs, outputs, name=self.name)
