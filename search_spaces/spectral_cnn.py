"""LARUN-style 1D spectral CNN, written as 2D so tfmot QAT/pruning and int8 conversion work.

Input (1, L, C). Blocks of conv (1, k) + BN + ReLU + max-pool (1, p); block i > 0 may instead be
depthwise (1, k) + BN + ReLU + pointwise 1x1 + BN + ReLU (`separable`). Then GAP, dense, softmax.
"""
from __future__ import annotations

from typing import Any, Mapping

import optuna

from search_spaces.base import Choice, IntRange, SearchSpace, suggest


class SpectralCNN(SearchSpace):
    name = "spectral_cnn"
    signal_kinds = ("1d",)
    defaults = {
        "blocks": IntRange(2, 4),
        "filters": Choice((8, 16, 32)),  # sampled per block as filters_0 .. filters_{blocks-1}
        "kernel": Choice((3, 5, 7, 11)),
        "pool": Choice((2, 4)),
        "separable": Choice((False, True)),
        "dense": Choice((8, 16, 32)),
        # A strided first conv keeps length-1024 inputs under the M0+ latency budget.
        "stem_stride": Choice((1, 2, 4, 8)),
    }
    # From the front of the BasicMotions accuracy benchmark (validation accuracy 0.975-1.0, 0.9-2.5 ms
    # on the RP2040): small, strided, mostly separable. Not taken from the spaces the search
    # efficiency benchmark measures (synthetic spectral, GunPoint). A search tries them after the
    # three points of the cost ladder below (autotune.starting_points).
    starting_points = (
        {"blocks": 2, "filters_0": 8, "filters_1": 8, "kernel": 11, "pool": 2, "separable": True, "dense": 8,
         "stem_stride": 8},
        {"blocks": 3, "filters_0": 8, "filters_1": 16, "filters_2": 32, "kernel": 7, "pool": 2, "separable": True,
         "dense": 8, "stem_stride": 8},
        {"blocks": 2, "filters_0": 8, "filters_1": 32, "kernel": 7, "pool": 4, "separable": True, "dense": 16,
         "stem_stride": 2},
        {"blocks": 3, "filters_0": 16, "filters_1": 8, "filters_2": 8, "kernel": 3, "pool": 4, "separable": False,
         "dense": 8, "stem_stride": 2},
    )

    # Cost ladder: each parameter's options cheapest first, and the order in which the rungs make
    # them costlier, one step each in turn: receptive field and width before depth, then the input
    # resolution (less stride, less pooling), full convolutions last.
    cheapest_first = {"kernel": False, "filters": False, "dense": False, "blocks": False, "stem_stride": True,
                      "pool": True, "separable": True}  # True: a larger value is cheaper
    ladder_order = ("kernel", "filters", "dense", "blocks", "stem_stride", "pool", "separable")

    def cost_ladder(self) -> list[dict[str, Any]]:
        options = {}
        for key, larger_is_cheaper in self.cheapest_first.items():
            spec = self.ranges[key]
            values = list(range(spec.low, spec.high + 1, spec.step)) if isinstance(spec, IntRange) else \
                sorted(spec.options)
            options[key] = values[::-1] if larger_is_cheaper else values
        step = dict.fromkeys(options, 0)
        ladder = [self._rung(options, step)]
        while any(step[k] < len(options[k]) - 1 for k in self.ladder_order):
            for key in self.ladder_order:
                if step[key] < len(options[key]) - 1:
                    step[key] += 1
                    ladder.append(self._rung(options, step))
        return ladder

    @staticmethod
    def _rung(options: Mapping[str, list], step: Mapping[str, int]) -> dict[str, Any]:
        value = {k: options[k][i] for k, i in step.items()}
        p: dict[str, Any] = {"blocks": value["blocks"]}
        p.update({f"filters_{i}": value["filters"] for i in range(value["blocks"])})
        p.update({k: value[k] for k in ("kernel", "pool", "separable", "dense", "stem_stride")})
        return p

    def sample(self, trial: optuna.Trial) -> dict[str, Any]:
        r = self.ranges
        p: dict[str, Any] = {"blocks": suggest(trial, "blocks", r["blocks"])}
        for i in range(p["blocks"]):
            p[f"filters_{i}"] = suggest(trial, f"filters_{i}", r["filters"])
        for key in ("kernel", "pool", "separable", "dense", "stem_stride"):
            p[key] = suggest(trial, key, r[key])
        return p

    def weighted_layers(self, params: Mapping[str, Any]) -> int:
        blocks = int(params["blocks"])
        return blocks + (blocks - 1 if params["separable"] else 0) + 2  # a separable block is two

    def channel_layers(self, params: Mapping[str, Any]) -> list[int]:
        depthwise = set(range(1, 2 * int(params["blocks"]) - 1, 2)) if params["separable"] else set()
        return [i for i in range(self.weighted_layers(params) - 1) if i not in depthwise]

    def build(self, params: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int):
        import tf_keras as keras
        from tf_keras import layers

        if len(input_shape) != 3 or input_shape[0] != 1:
            raise ValueError(f"{self.name} takes 1D signals shaped (1, L, C), got {tuple(input_shape)}")
        k, pool, stride = int(params["kernel"]), int(params["pool"]), int(params["stem_stride"])
        length = input_shape[1]

        x = inputs = keras.Input(shape=tuple(input_shape))
        for i in range(int(params["blocks"])):
            filters = int(params[f"filters_{i}"])
            if i > 0 and params["separable"]:
                x = layers.DepthwiseConv2D((1, k), padding="same", use_bias=False)(x)
                x = layers.BatchNormalization()(x)
                x = layers.ReLU()(x)
                x = layers.Conv2D(filters, 1, use_bias=False)(x)
            else:
                s = stride if i == 0 else 1
                x = layers.Conv2D(filters, (1, k), strides=(1, s), padding="same", use_bias=False)(x)
                length = -(-length // s)  # SAME padding: ceil(L / s)
            x = layers.BatchNormalization()(x)
            x = layers.ReLU()(x)
            if length // pool >= pool:  # skip the pool once the length would drop below the pool size
                x = layers.MaxPooling2D((1, pool))(x)
                length //= pool
        x = layers.GlobalAveragePooling2D()(x)
        x = layers.Dense(int(params["dense"]), activation="relu")(x)
        outputs = layers.Dense(num_classes, activation="softmax")(x)
        return keras.Model(inputs, outputs, name=self.name)
