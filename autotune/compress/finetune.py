"""Weight compression in training: per-layer bit width, clusters and magnitude pruning, fine-tuned.

Each weighted layer (Conv2D, DepthwiseConv2D, Dense) gets a `LayerCompression`. Its weights are
projected, per output channel c with a scale m_c, onto m_c x L where L is a set of levels in
[-1, 1] that holds -1, 0 and 1 and whose every level is an integer / 127:
  * bits b < 8: the 2^b - 1 levels round(j x 127 / (2^(b-1) - 1)) / 127, j = -(2^(b-1)-1)..;
    without pruning, m_c is the fraction of max |w_c| (CLIP_FRACTIONS) whose projection is
    nearest the weights in squared error, larger weights clipped to +-m_c. On normal or Laplace
    weights that is about 0.4 of the largest on 2 bits and 0.9 on 4; against m_c = max |w_c| the
    squared error is a third on 2 bits, and the spectral task's unpruned 2-bit layers lose about
    2 points fewer. With pruning, m_c = max |w_c|: the weights left are the largest (LeNet-5's
    2-bit layers pruned 88-94 % reached 0.873-0.874 with a fitted scale, 0.877 without);
  * clusters k: k-means centroids of the layer's normalised weights w_c / m_c, m_c = max |w_c|,
    rounded to multiples of 1/127, with -1, 0 and 1;
  * sparsity s: the fraction s of the layer's weights smallest in magnitude set to 0, reached by
    tfmot's polynomial-decay schedule (s_t = s (1 - (1 - t / T)^3) over the first 70 % of the
    fine-tuning steps, then held).
The channel's largest weight lands on level +-1, so the converter quantizes each channel with
scale m_c / 127 and the int8 values are exactly the levels x 127 for every channel: one palette
of at most 2^b - 1 (or k + 3) int8 values per tensor, zeros where pruned. The tensor stays a
valid int8 TFLite tensor and TFLite Micro the ground truth.

Fine-tuning uses a straight-through estimator: a float latent copy of each kernel is trained, the
forward pass sees its projection (tf_keras 2 and tfmot 0.8 have no sub-8-bit scheme that keeps
per-channel scales on the converter's int8 grid and folds batch norm, so the projection is done
here; the converter folds batch norm into the kernel per channel, which keeps the levels).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PRUNE_END = 0.7  # fraction of the fine-tuning steps over which the sparsity ramps up
CLIP_FRACTIONS = np.linspace(0.2, 1.0, 17)  # of a channel's largest weight: the scales tried on a bit grid


@dataclass(frozen=True)
class LayerCompression:
    bits: int = 8  # 8, 4 or 2 (2^b - 1 symmetric levels)
    clusters: int = 0  # k centroids (0: none)
    sparsity: float = 0.0  # fraction of the weights pruned to zero
    keep: float = 1.0  # fraction of the output channels kept (autotune.compress.channels)

    @property
    def plain(self) -> bool:
        """Whether the weights keep the converter's int8 values (no levels, no sparsity); the
        channels kept do not matter here: a pruned model is an ordinary smaller one."""
        return self.bits == 8 and not self.clusters and not self.sparsity


def weighted_layers(model) -> list:
    """The layers whose kernels become int8 weight tensors, in model order (as the converter's ops)."""
    import tf_keras

    kinds = (tf_keras.layers.Conv2D, tf_keras.layers.DepthwiseConv2D, tf_keras.layers.Dense)
    return [layer for layer in model.layers if isinstance(layer, kinds)]


def kernel(layer):
    """The layer's weight variable."""
    return layer.depthwise_kernel if hasattr(layer, "depthwise_kernel") else layer.kernel


def _channels(layer, kernel: np.ndarray) -> np.ndarray:
    """The kernel as (taps, output channels): the converter quantizes per output channel."""
    if hasattr(layer, "depthwise_kernel"):  # (kh, kw, C, multiplier): channel c * multiplier + m
        return kernel.reshape(-1, kernel.shape[2] * kernel.shape[3])
    return kernel.reshape(-1, kernel.shape[-1])


def levels(spec: LayerCompression, normalised: np.ndarray | None = None, seed: int = 0) -> np.ndarray | None:
    """The sorted levels in [-1, 1] (multiples of 1/127, with -1, 0, 1) for `spec`; None for 8 bits
    without clusters (the converter's own grid)."""
    if spec.clusters:
        u = normalised.reshape(-1)
        rng = np.random.default_rng(seed)
        centroids = np.quantile(u, np.linspace(0, 1, spec.clusters))
        for _ in range(30):  # Lloyd's k-means in one dimension
            nearest = np.abs(u[:, None] - centroids[None]).argmin(axis=1)
            for j in range(spec.clusters):
                members = u[nearest == j]
                centroids[j] = members.mean() if len(members) else rng.choice(u)
        grid = np.round(np.concatenate([centroids, [-1.0, 0.0, 1.0]]) * 127)
        return np.unique(grid) / 127
    if spec.bits < 8:
        top = (1 << (spec.bits - 1)) - 1
        return np.unique(np.round(np.arange(-top, top + 1) * 127 / top)) / 127
    return None


def project_untrained(model, specs: list[LayerCompression], seed: int):
    """Each compressed layer's kernel set to its projection with the whole sparsity, as
    fine-tuning leaves it, without training: the weights of an untrained model as its
    compression will store them, for pricing the storage before training (autotune.trial).
    Returns the model."""
    import tensorflow as tf

    layers = weighted_layers(model)
    if len(specs) != len(layers):
        raise ValueError(f"{len(specs)} layer compressions for {len(layers)} weighted layers")
    for layer, spec in zip(layers, specs):
        if spec.plain:
            continue
        k = kernel(layer).numpy()
        cols = _channels(layer, k)
        out = _project(tf.constant(cols, tf.float32), spec, _table(spec, cols, seed), spec.sparsity)
        kernel(layer).assign(out.numpy().reshape(k.shape).astype(k.dtype))
    return model


def _table(spec: LayerCompression, cols: np.ndarray, seed: int):
    """`levels` for the kernel `cols` (taps, output channels) as a float32 constant; None for plain int8."""
    import tensorflow as tf

    grid = levels(spec, cols / np.maximum(np.abs(cols).max(axis=0, keepdims=True), 1e-12), seed)
    return None if grid is None else tf.constant(grid, tf.float32)


def _project(cols, spec: LayerCompression, grid, sparsity):
    """`cols` (taps, output channels; a float32 tensor) on `grid`'s levels per channel (None: kept
    as they are), then the fraction `sparsity` (the spec's, or on its way there) of the smallest in
    magnitude set to 0. TensorFlow ops: traced into the fine-tuning step."""
    import tensorflow as tf

    out = cols
    if grid is not None:
        m = tf.maximum(tf.reduce_max(tf.abs(cols), axis=0, keepdims=True), 1e-12)
        if not spec.clusters and not spec.sparsity:  # an unpruned bit grid: the scale nearest the weights
            top = float((1 << (spec.bits - 1)) - 1)  # its levels are j / top to within 1/127
            fractions = tf.constant(CLIP_FRACTIONS, tf.float32)
            scales = m[None] * fractions[:, None, None]
            rounded = tf.round(tf.clip_by_value(cols[None] / scales, -1.0, 1.0) * top) / top * scales
            error = tf.reduce_sum(tf.square(rounded - cols[None]), axis=1)  # (fractions, channels)
            m = m * tf.gather(fractions, tf.argmin(error, axis=0))[None]
        u = tf.clip_by_value(cols / m, -1.0, 1.0)
        out = tf.gather(grid, tf.argmin(tf.abs(u[..., None] - grid), axis=-1)) * m
    if spec.sparsity:
        magnitude = tf.sort(tf.reshape(tf.abs(cols), [-1]))
        k = tf.cast(tf.floor(sparsity * tf.cast(tf.size(magnitude), tf.float32)), tf.int32)
        threshold = tf.where(k > 0, magnitude[tf.maximum(k - 1, 0)], -1.0)
        out = tf.where(tf.abs(cols) <= threshold, tf.zeros_like(out), out)
    return out


def compress_finetune(model, specs: list[LayerCompression], x: np.ndarray, y: np.ndarray, training,
                      num_classes: int, epochs: int, seed: int):
    """Fine-tune `model` (trained, float) for `epochs` with each weighted layer (weighted_layers,
    in order) projected as its spec says, at a tenth of the peak learning rate; on return its
    kernels hold the projected weights. Returns the model."""
    import tensorflow as tf
    import tf_keras

    from autotune.training import Trainer

    layers = weighted_layers(model)
    if len(specs) != len(layers):
        raise ValueError(f"{len(specs)} layer compressions for {len(layers)} weighted layers")
    active = [(layer, spec) for layer, spec in zip(layers, specs) if not spec.plain]
    if not active:
        return model
    kernels = [kernel(layer) for layer, _ in active]
    latents = [tf.Variable(k.numpy(), trainable=False, name=f"latent_{i}") for i, k in enumerate(kernels)]
    tables = [_table(spec, _channels(layer, k.numpy()), seed) for (layer, spec), k in zip(active, kernels)]
    total_steps = tf.Variable(1.0, trainable=False)

    def project(i: int, latent, step):
        layer, spec = active[i]
        cols = tf.reshape(latent, _channels(layer, np.zeros(latent.shape)).shape)
        ramp = tf.minimum(tf.cast(step, tf.float32) / (PRUNE_END * total_steps), 1.0)
        return tf.reshape(_project(cols, spec, tables[i], spec.sparsity * (1.0 - (1.0 - ramp) ** 3)), latent.shape)

    kernel_ids = {id(k) for k in kernels}

    class Projected(tf_keras.Model):
        def train_step(self, data):
            xb, yb, wb = tf_keras.utils.unpack_x_y_sample_weight(data)
            step = self.optimizer.iterations
            for i, (k, latent) in enumerate(zip(kernels, latents)):
                k.assign(project(i, latent, step))
            others = [v for v in self.trainable_variables if id(v) not in kernel_ids]
            with tf.GradientTape() as tape:
                pred = self(xb, training=True)
                loss = self.compute_loss(xb, yb, pred, wb)
            grads = tape.gradient(loss, kernels + others)
            self.optimizer.apply_gradients(zip(grads, latents + others))  # straight through
            return self.compute_metrics(xb, yb, pred, wb)

    wrapped = Projected(model.inputs, model.outputs)
    trainer = Trainer(lambda: wrapped, training, len(y), epochs, num_classes, peak_lr=training.learning_rate / 10,
                      min_steps=0, fine_tune=True)
    total_steps.assign(float(trainer.schedule.steps))
    trainer.fit(x, y, None, seed)
    final = tf.constant(trainer.schedule.steps, tf.int64)
    for i, (k, latent) in enumerate(zip(kernels, latents)):
        k.assign(project(i, latent, final))
    return model
