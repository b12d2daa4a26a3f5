"""A plain MLP on the flattened input: the cheapest baseline, for 1D and 2D inputs alike."""
from __future__ import annotations

from typing import Any, Mapping

import optuna

from search_spaces.base import Choice, IntRange, SearchSpace, suggest


class MLP(SearchSpace):
    name = "mlp"
    signal_kinds = ("1d", "2d")
    defaults = {
        "layers": IntRange(1, 3),
        "units": Choice((16, 32, 64, 128)),  # sampled per layer as units_0 .. units_{layers-1}
    }

    def sample(self, trial: optuna.Trial) -> dict[str, Any]:
        p: dict[str, Any] = {"layers": suggest(trial, "layers", self.ranges["layers"])}
        for i in range(p["layers"]):
            p[f"units_{i}"] = suggest(trial, f"units_{i}", self.ranges["units"])
        return p

    def weighted_layers(self, params: Mapping[str, Any]) -> int:
        return int(params["layers"]) + 1

    def build(self, params: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int):
        import tf_keras as keras
        from tf_keras import layers

        x = inputs = keras.Input(shape=tuple(input_shape))
        x = layers.Flatten()(x)  # a RESHAPE in TFLite
        for i in range(int(params["layers"])):
            x = layers.Dense(int(params[f"units_{i}"]), activation="relu")(x)
        outputs = layers.Dense(num_classes, activation="softmax")(x)
        return keras.Model(inputs, outputs, name=self.name)
