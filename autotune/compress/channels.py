"""Structured channel pruning: a smaller dense model with whole filters removed, then fine-tuned.

`prune_channels(model, keep)` takes a float tf_keras functional model and, per weighted layer
(`weighted_layers` order, as the compression search numbers them), the fraction of its output
channels to keep. It returns a new model of the same layers with fewer filters, the kept
weights carried over:

* Channels are ranked by the L1 norm of their filter (Li et al., "Pruning filters for efficient
  ConvNets", 2017), as the converter will see it: a batch norm right after the Conv2D or Dense
  scales each filter by |gamma| / sqrt(var + eps) when it is folded, so the norm is taken after
  that scale. The highest max(1, round(keep x channels)) are kept, in their original order.
* Dependencies are followed: every consumer of a pruned tensor loses the matching input
  channels: the next Conv2D's or Dense's input channels, a DepthwiseConv2D (multiplier 1: its
  channels follow its input, so its own keep is not used) and batch norm (sliced), through
  activations, pooling and global pooling; a Flatten maps a channel to each of its positions.
  Tensors joined by an Add must keep the same channels: their producers form one group, pruned
  together at the keep of its first layer in model order, ranked by the sum of the members'
  norms. A Concatenate keeps each part's own choice.
* The model's input and output channels are never pruned (the output layer's keep is not used).
* Any other layer raises `ChannelPruningError` naming it.

`prune_and_finetune` is the trial's step: prune the trained float model, then fine-tune the
smaller one with the training recipe (autotune.training.fine_tune) for the compression's
`finetune_epochs`, at least the training's step floor (`training.min_steps`), from the full peak
learning rate with cosine decay. Both measured: on GunPoint's 50 examples 5 epochs are 35
steps, too few to recover (keep 0.5: test accuracy 0.43 after them, 0.97 after 600 steps;
tests/test_compress_channels.py's model); on the spectral task (benchmarks/bench_compression.py
MID, keep 0.5, 600 steps, n=360) 0.781 from the peak rate against 0.675 from a tenth of it. The
result is an ordinary model, so int8 conversion, QAT, bit widths, storage and costs treat it
like any other.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from autotune.compress.finetune import weighted_layers

# Layers that keep each channel where it is, with no weights: channels pass straight through.
PASS_THROUGH = ("ReLU", "Activation", "LeakyReLU", "Softmax", "Dropout", "MaxPooling2D", "AveragePooling2D",
                "GlobalAveragePooling2D", "GlobalMaxPooling2D", "ZeroPadding2D", "Cropping2D")


class ChannelPruningError(ValueError):
    """A layer or arrangement the channel pruner cannot follow."""


@dataclass
class _Tensor:
    """A layer output's last axis: channel groups `parts` [(group, channels)] in order, tiled
    `repeat` times (a Flatten: one copy per spatial position, channels fastest)."""

    parts: list[tuple[int, int]]
    repeat: int = 1


class _Groups:
    """Union-find over channel groups, each owned by the layers that produce it."""

    def __init__(self):
        self.parent: list[int] = []
        self.size: list[int] = []

    def new(self, size: int) -> int:
        self.parent.append(len(self.parent))
        self.size.append(size)
        return len(self.parent) - 1

    def find(self, g: int) -> int:
        while self.parent[g] != g:
            g = self.parent[g] = self.parent[self.parent[g]]
        return g

    def union(self, a: int, b: int) -> None:
        a, b = self.find(a), self.find(b)
        if self.size[a] != self.size[b]:
            raise ChannelPruningError(f"an Add joins {self.size[a]} and {self.size[b]} channels")
        self.parent[max(a, b)] = min(a, b)  # the earlier group (model order) is the root


def _inbound(layer) -> list:
    nodes = layer.inbound_nodes
    if len(nodes) != 1:
        raise ChannelPruningError(f"layer {layer.name} is called {len(nodes)} times; shared layers are not supported")
    inbound = nodes[0].inbound_layers
    return list(inbound) if isinstance(inbound, (list, tuple)) else [inbound]


def _filter_norms(layer) -> np.ndarray:
    """L1 norm of each output channel's filter."""
    k = layer.kernel.numpy()
    return np.abs(k.reshape(-1, k.shape[-1])).sum(axis=0)


def plan_channels(model, keep: list[float]) -> dict[str, np.ndarray]:
    """The kept channels of every layer's output, as boolean masks over its last axis (tiled for
    a Flatten), by layer name."""
    weighted = weighted_layers(model)
    if len(keep) != len(weighted):
        raise ValueError(f"{len(keep)} channel keep fractions for {len(weighted)} weighted layers")
    ratio = {layer.name: k for layer, k in zip(weighted, keep)}
    groups = _Groups()
    tensors: dict[str, _Tensor] = {}
    producers: dict[int, list] = {}  # group -> [(layer, norms)]
    fixed: set[int] = set()  # groups of the model's input and output: never pruned
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "InputLayer":
            g = groups.new(layer.output_shape[0][-1])
            fixed.add(g)
            tensors[layer.name] = _Tensor([(g, groups.size[g])])
            continue
        inputs = [tensors[i.name] for i in _inbound(layer)]
        if getattr(layer, "data_format", "channels_last") != "channels_last":
            raise ChannelPruningError(f"layer {layer.name}: {layer.data_format}, not channels_last")
        if kind == "DepthwiseConv2D":
            if layer.depth_multiplier != 1:
                raise ChannelPruningError(f"layer {layer.name}: depthwise multiplier {layer.depth_multiplier}, not 1")
            tensors[layer.name] = inputs[0]
        elif kind in ("Conv2D", "Dense"):
            if getattr(layer, "groups", 1) != 1:
                raise ChannelPruningError(f"layer {layer.name}: grouped convolution")
            g = groups.new(layer.kernel.shape[-1])
            producers[g] = [(layer, _filter_norms(layer))]
            tensors[layer.name] = _Tensor([(g, groups.size[g])])
        elif kind == "BatchNormalization":
            if layer.axis not in ([-1], [len(layer.input_shape) - 1]):
                raise ChannelPruningError(f"layer {layer.name}: batch norm over axis {layer.axis}, not the channels")
            [source] = _inbound(layer)
            if type(source).__name__ in ("Conv2D", "Dense"):
                [(g, _)] = inputs[0].parts  # the folded filter's norm: scaled as the converter folds it
                gamma = layer.gamma.numpy() if layer.scale else 1.0
                scale = np.abs(gamma) / np.sqrt(layer.moving_variance.numpy() + layer.epsilon)
                producers[g][0] = (source, producers[g][0][1] * scale)
            tensors[layer.name] = inputs[0]
        elif kind in PASS_THROUGH:
            tensors[layer.name] = inputs[0]
        elif kind == "Add":
            first = inputs[0]
            for other in inputs[1:]:
                if [n for _, n in other.parts] != [n for _, n in first.parts] or other.repeat != first.repeat:
                    raise ChannelPruningError(f"layer {layer.name}: its inputs' channels are laid out differently")
                for (a, _), (b, _) in zip(first.parts, other.parts):
                    groups.union(a, b)
            tensors[layer.name] = first
        elif kind == "Concatenate":
            if layer.axis not in (-1, len(layer.input_shape[0]) - 1) or any(t.repeat != 1 for t in inputs):
                raise ChannelPruningError(f"layer {layer.name}: concatenation other than of channels")
            tensors[layer.name] = _Tensor([p for t in inputs for p in t.parts])
        elif kind == "Flatten":
            positions = int(np.prod(layer.input_shape[1:-1], dtype=np.int64))
            tensors[layer.name] = _Tensor(inputs[0].parts, inputs[0].repeat * positions)
        else:
            raise ChannelPruningError(f"channel pruning cannot follow layer {layer.name} ({kind})")
    for name in model.output_names:
        fixed.update(g for g, _ in tensors[name].parts)

    masks: dict[int, np.ndarray] = {}
    for g in range(len(groups.parent)):
        root = groups.find(g)
        if root in masks:
            continue
        members = [m for h in range(len(groups.parent)) if groups.find(h) == root for m in producers.get(h, [])]
        n = groups.size[root]
        if any(groups.find(f) == root for f in fixed) or not members:
            masks[root] = np.ones(n, bool)
            continue
        first = min(members, key=lambda m: model.layers.index(m[0]))[0]
        kept = max(1, int(round(ratio[first.name] * n)))
        score = np.sum([norms for _, norms in members], axis=0)
        mask = np.zeros(n, bool)
        mask[np.sort(np.argsort(-score, kind="stable")[:kept])] = True
        masks[root] = mask
    return {name: np.tile(np.concatenate([masks[groups.find(g)] for g, _ in t.parts]), t.repeat)
            for name, t in tensors.items()}


def prune_channels(model, keep: list[float]):
    """A new float model with the channels `plan_channels` drops removed and the rest of the
    weights carried over; with every keep 1.0 it computes exactly what `model` does."""
    import tf_keras

    masks = plan_channels(model, keep)

    def clone(layer):
        config = layer.get_config()
        kept = int(masks[layer.name].sum())
        if type(layer).__name__ == "Conv2D":
            config["filters"] = kept
        elif type(layer).__name__ == "Dense":
            config["units"] = kept
        return type(layer).from_config(config)

    pruned = tf_keras.models.clone_model(model, clone_function=clone)
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        [source] = _inbound(layer)
        into, out = masks[source.name], masks[layer.name]
        kind = type(layer).__name__
        if kind in ("Conv2D", "Dense"):
            weights = [weights[0][..., into, :][..., out]] + [b[out] for b in weights[1:]]
        else:  # DepthwiseConv2D (kh, kw, C, 1) and BatchNormalization: one value per channel
            weights = [w[..., into, :] if w.ndim == 4 else w[into] for w in weights]
        pruned.get_layer(layer.name).set_weights(weights)
    return pruned



def prune_and_finetune(model, keep: list[float], x: np.ndarray, y: np.ndarray, training, num_classes: int,
                       epochs: int, seed: int):
    """The trained float `model` pruned (prune_channels), then fine-tuned on (x, y)."""
    from autotune.training import fine_tune

    return fine_tune(prune_channels(model, keep), x, y, training, num_classes, epochs, seed, training.min_steps,
                     training.learning_rate)
