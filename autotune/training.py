"""Training a candidate (tf_keras): the float recipe, then quantization-aware fine-tuning.

The recipe holds up on a few dozen examples as on tens of thousands: AdamW with a linear warm-up
and cosine decay to zero, label smoothing, class weights, augmentation (1-D: random shift,
scaling, jitter; images: shifts and optional flips; both: mixup), restored best weights when a
validation split drives early stopping, and a restart from new initial weights when a run ends
at chance. Batch norm is folded into the convolutions by the converter (and by tfmot's QAT
wrappers, which fine-tune with the fold in place).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from autotune.config import Augment, Training


@dataclass(frozen=True)
class TrainStats:
    epochs_run: int
    best_epoch: int  # 1-based: the epoch whose weights were kept
    val_accuracy: float | None  # float model on the validation data, None when there was none
    restarts: int  # runs that ended at chance and were started again from new weights


def chance_margin(rate: float, n: int) -> float:
    """How far above `rate` an accuracy on `n` examples must be to be clearly better than always
    answering the majority class: 1.96 binomial standard errors, at least 5 points."""
    return max(0.05, 1.96 * float(np.sqrt(rate * (1 - rate) / max(n, 1))))


def auto_batch_size(examples: int) -> int:
    """The power of two nearest examples / 32, within [8, 128]: a few dozen examples still get
    several optimizer steps an epoch, tens of thousands do not crawl."""
    return int(min(128, max(8, 2 ** round(np.log2(max(examples, 1) / 32)))))


def _majority(y: np.ndarray) -> float:
    return float(np.bincount(y).max() / len(y))


class _Augmenter:
    """Numpy augmentation of one batch; inputs are (N, 1, L, C) signals or (N, H, W, C) images."""

    def __init__(self, augment: Augment, one_d: bool, rng: np.random.Generator):
        self.a, self.one_d, self.rng = augment, one_d, rng

    def _shift(self, x: np.ndarray, axis: int, fraction: float) -> np.ndarray:
        size = x.shape[axis]
        most = int(round(size * fraction))
        if most < 1:
            return x
        offset = self.rng.integers(-most, most + 1, len(x))
        index = np.clip(np.arange(size)[None, :] - offset[:, None], 0, size - 1)  # edge values fill in
        shape = [len(x)] + [1] * (x.ndim - 1)
        shape[axis] = size
        return np.take_along_axis(x, index.reshape(shape), axis=axis)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        a, n = self.a, len(x)
        if self.one_d:
            x = self._shift(x, 2, a.shift)
            if a.scale:
                x = x * self.rng.uniform(1 - a.scale, 1 + a.scale, (n, 1, 1, 1))
            if a.jitter:
                x = x + self.rng.normal(0.0, a.jitter, x.shape)
        else:
            x = self._shift(self._shift(x, 1, a.shift), 2, a.shift)
            if a.flip:
                flip = self.rng.random(n) < 0.5
                x = np.where(flip[:, None, None, None], x[:, :, ::-1], x)
        return x.astype(np.float32)


def _batches(x: np.ndarray, y: np.ndarray, training: Training, num_classes: int, one_d: bool, seed: int):
    """A tf_keras Sequence of augmented, mixed-up, class-weighted batches with one-hot labels."""
    import tf_keras

    batch_size = training.batch_size or auto_batch_size(len(y))
    counts = np.bincount(y, minlength=num_classes).astype(np.float64)
    weights = (len(y) / (np.count_nonzero(counts) * np.maximum(counts, 1)))[y] if training.class_weights \
        else np.ones(len(y))
    onehot = np.eye(num_classes, dtype=np.float32)[y]

    class Batches(tf_keras.utils.Sequence):
        def __init__(self):
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.augment = _Augmenter(training.augment, one_d, self.rng)
            self.order = self.rng.permutation(len(y))

        def __len__(self) -> int:
            return -(-len(y) // batch_size)

        def __getitem__(self, i: int):
            idx = self.order[i * batch_size:(i + 1) * batch_size]
            bx, by, bw = self.augment(x[idx]), onehot[idx], weights[idx].astype(np.float32)
            if training.augment.mixup:
                lam = self.rng.beta(training.augment.mixup, training.augment.mixup, (len(idx), 1)).astype(np.float32)
                lam = np.maximum(lam, 1 - lam)  # the first example dominates its mix
                other = self.rng.permutation(len(idx))
                bx = lam.reshape(-1, *([1] * (bx.ndim - 1))) * bx + (1 - lam.reshape(-1, *([1] * (bx.ndim - 1)))) * bx[other]
                by = lam * by + (1 - lam) * by[other]
                bw = lam[:, 0] * bw + (1 - lam[:, 0]) * bw[other]
            return bx, by, bw

        def on_epoch_end(self) -> None:
            self.order = self.rng.permutation(len(y))

    return Batches()


def _compile(model, training: Training, peak_lr: float, epochs: int, steps: int, warmup: bool) -> None:
    import tf_keras

    total = max(1, epochs * steps)
    warmup_steps = min(total // 2, training.warmup_epochs * steps) if warmup else 0
    schedule = tf_keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=peak_lr if not warmup_steps else peak_lr / 10, decay_steps=total - warmup_steps,
        alpha=0.0, warmup_target=peak_lr if warmup_steps else None, warmup_steps=warmup_steps)
    model.compile(optimizer=tf_keras.optimizers.AdamW(schedule, weight_decay=training.weight_decay),
                  loss=tf_keras.losses.CategoricalCrossentropy(label_smoothing=training.label_smoothing),
                  metrics=["accuracy"])


def _fit(model, x, y, val, training: Training, epochs: int, num_classes: int, seed: int,
         peak_lr: float, warmup: bool):
    """One run of the schedule; returns (epochs run, best epoch, float validation accuracy or None)."""
    import tensorflow as tf
    import tf_keras

    one_d = x.shape[1] == 1
    batches = _batches(x, y, training, num_classes, one_d, seed)
    if warmup:  # a full schedule: a few dozen examples still get enough optimizer steps
        epochs = max(epochs, -(-training.min_steps // len(batches)))
    _compile(model, training, peak_lr, epochs, len(batches), warmup)
    callbacks = []
    validation = None
    if val is not None:
        validation = (val[0], np.eye(num_classes, dtype=np.float32)[val[1]])
        callbacks.append(tf_keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=training.patience, restore_best_weights=True,
            start_from_epoch=min(training.warmup_epochs, epochs // 4)))
    with tf.device("/CPU:0"):
        history = model.fit(batches, validation_data=validation, epochs=epochs, callbacks=callbacks,
                            verbose=0, shuffle=False)
    h = history.history
    if val is None:
        return len(h["loss"]), len(h["loss"]), None
    best = int(np.argmin(h["val_loss"]))
    return len(h["loss"]), best + 1, float(h["val_accuracy"][best])


def train_float(build, x: np.ndarray, y: np.ndarray, val: tuple[np.ndarray, np.ndarray] | None,
                epochs: int, training: Training, num_classes: int, seed: int):
    """Build (`build()` returns a fresh model) and train with the recipe; restart from new initial
    weights, up to `training.restarts` times, when the run ends at chance (on the validation data,
    or on the training data when there is none). Returns (model, TrainStats)."""
    import tf_keras

    check_x, check_y = val if val is not None else (x, y)
    majority = _majority(check_y)
    for attempt in range(training.restarts + 1):
        tf_keras.backend.clear_session()
        tf_keras.utils.set_random_seed(seed + 7919 * attempt)  # initial weights, dropout, shuffling
        model = build()
        epochs_run, best, val_acc = _fit(model, x, y, val, training, epochs, num_classes,
                                         seed + attempt, training.learning_rate, warmup=True)
        accuracy = val_acc if val is not None else _accuracy(model, check_x, check_y)
        if accuracy > majority + chance_margin(majority, len(check_y)) or attempt == training.restarts:
            return model, TrainStats(epochs_run, best, val_acc, attempt)
    raise AssertionError("unreachable")


def _accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(model.predict(x, verbose=0, batch_size=256).argmax(axis=1) == y))


def quantization_aware_finetune(model, x: np.ndarray, y: np.ndarray, training: Training, num_classes: int,
                                seed: int):
    """Fine-tune the trained float model with tfmot's int8 fake quantization (BN folded, per-channel
    weights, as the converter will quantize) for `training.qat_epochs` epochs at a tenth of the
    peak learning rate. Returns the quantization-aware model, which converts to full int8 like the
    float one. This is the step lower bit widths will take too."""
    import tensorflow_model_optimization as tfmot

    qat = tfmot.quantization.keras.quantize_model(model)
    _fit(qat, x, y, None, training, training.qat_epochs, num_classes, seed, training.learning_rate / 10,
         warmup=False)
    return qat
