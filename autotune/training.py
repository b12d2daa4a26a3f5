"""Training a candidate (tf_keras): the float recipe, then quantization-aware fine-tuning.

The recipe holds up on a few dozen examples as on tens of thousands: AdamW with a linear warm-up
and cosine decay to zero, label smoothing, class weights, augmentation (1-D: random shift,
scaling, jitter; images: shifts and optional flips; both: mixup), restored best weights when a
validation split drives early stopping, and a restart from new initial weights when a run ends
at chance. Batch norm is folded into the convolutions by the converter (and by tfmot's QAT
wrappers, which fine-tune with the fold in place).

Speed: augmentation runs as TensorFlow ops in a tf.data pipeline (no Python per batch), and a
`Trainer` builds and compiles its model once, so the k-fold models, the final fit and restarts
of one candidate share one traced training step; each fit starts from new initial weights and a
fresh optimizer state.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from autotune.config import Augment, Training


@dataclass(frozen=True)
class TrainStats:
    epochs_run: int  # passes over the training data
    best_epoch: int  # 1-based: the validation round whose weights were kept
    val_accuracy: float | None  # float model on the validation data, None when there was none
    restarts: int  # runs that ended at chance and were started again from new weights
    short_accuracy: float | None = None  # float accuracy at the short run's end (ShortRun), if checked
    stopped: bool = False  # training ended at the short run: ShortRun.keep_going said no


@dataclass(frozen=True)
class ShortRun:
    """A check after the first `rounds` rounds of a fit: the float model's accuracy on (x, y), and
    training ends there when `keep_going(accuracy)` is false (autotune.early_stop)."""

    rounds: int
    x: np.ndarray
    y: np.ndarray
    keep_going: Callable[[float], bool]


@dataclass(frozen=True)
class Schedule:
    """Optimizer steps of one fit, in `rounds` equal rounds (a validation and early-stopping
    check after each, when there is validation data)."""

    batch_size: int
    steps: int
    rounds: int

    @property
    def steps_per_round(self) -> int:
        return self.steps // self.rounds


def use_one_cpu() -> None:
    """One thread for TensorFlow's ops, as a Ray worker gets one CPU: the models are small, so
    thread hand-offs cost more than they save (600 GunPoint steps: 1.3 s against 3.6 s with the
    default pools, on a loaded 2-core machine; Fashion-MNIST epochs equal). Only possible before
    TensorFlow starts; later it keeps the threads it has."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # already initialised in this process
        pass


def chance_margin(rate: float, n: int) -> float:
    """How far above `rate` an accuracy on `n` examples must be to be clearly better than always
    answering the majority class: 1.96 binomial standard errors, at least 5 points."""
    return max(0.05, 1.96 * float(np.sqrt(rate * (1 - rate) / max(n, 1))))


def auto_batch_size(examples: int) -> int:
    """The power of two nearest examples / 32, within [8, 128]: a few dozen examples still get
    several optimizer steps an epoch, tens of thousands do not crawl."""
    return int(min(128, max(8, 2 ** round(np.log2(max(examples, 1) / 32)))))


def schedule(examples: int, epochs: int, training: Training, min_steps: int) -> Schedule:
    """`epochs` passes over `examples`, at least `min_steps` steps; one round per epoch (several
    passes per round when the step floor dominates)."""
    batch_size = min(training.batch_size or auto_batch_size(examples), examples)
    per_epoch = -(-examples // batch_size)
    rounds = max(1, epochs)
    per_round = max(per_epoch, -(-min_steps // rounds))
    return Schedule(batch_size, per_round * rounds, rounds)


def _majority(y: np.ndarray) -> float:
    return float(np.bincount(y).max() / len(y))


def _augment(augment: Augment, one_d: bool):
    """A batch -> batch function of TensorFlow ops; inputs are (B, 1, L, C) signals or (B, H, W, C)
    images, labels one-hot, plus per-example weights."""
    import tensorflow as tf

    def shift(x, axis: int, fraction: float):
        size = x.shape[axis]
        most = int(round(size * fraction))
        if most < 1:
            return x
        offset = tf.random.uniform([tf.shape(x)[0]], -most, most + 1, dtype=tf.int32)
        index = tf.clip_by_value(tf.range(size)[None, :] - offset[:, None], 0, size - 1)  # edge values fill in
        return tf.gather(x, index, axis=axis, batch_dims=1)

    def beta(n, a):
        g1, g2 = tf.random.gamma([n], a), tf.random.gamma([n], a)
        return g1 / tf.maximum(g1 + g2, 1e-12)

    def apply(x, y, w):
        n = tf.shape(x)[0]
        if one_d:
            x = shift(x, 2, augment.shift)
            if augment.scale:
                x = x * tf.random.uniform([n, 1, 1, 1], 1 - augment.scale, 1 + augment.scale)
            if augment.jitter:
                x = x + tf.random.normal(tf.shape(x), stddev=augment.jitter)
        else:
            x = shift(shift(x, 1, augment.shift), 2, augment.shift)
            if augment.flip:
                x = tf.where(tf.random.uniform([n, 1, 1, 1]) < 0.5, tf.reverse(x, [2]), x)
        if augment.mixup:
            lam = beta(n, augment.mixup)
            lam = tf.maximum(lam, 1 - lam)  # the first example dominates its mix
            other = tf.random.shuffle(tf.range(n))
            x = lam[:, None, None, None] * x + (1 - lam[:, None, None, None]) * tf.gather(x, other)
            y = lam[:, None] * y + (1 - lam[:, None]) * tf.gather(y, other)
            w = lam * w + (1 - lam) * tf.gather(w, other)
        return x, y, w

    return apply


def batches(x: np.ndarray, y: np.ndarray, training: Training, num_classes: int, batch_size: int, seed: int):
    """An endless tf.data pipeline of shuffled, augmented, mixed-up, class-weighted batches with
    one-hot labels (the augmentation runs as graph ops beside the training step)."""
    import tensorflow as tf

    counts = np.bincount(y, minlength=num_classes).astype(np.float64)
    weights = (len(y) / (np.count_nonzero(counts) * np.maximum(counts, 1)))[y] if training.class_weights \
        else np.ones(len(y))
    data = tf.data.Dataset.from_tensor_slices((x, np.eye(num_classes, dtype=np.float32)[y],
                                               weights.astype(np.float32)))
    augment = _augment(training.augment, x.shape[1] == 1)
    return (data.shuffle(len(y), seed=seed, reshuffle_each_iteration=True).repeat()
            .batch(batch_size, drop_remainder=True).map(augment).prefetch(2))


class Trainer:
    """Trains one architecture again and again (k-fold models, the final fit, restarts): the
    model is built and compiled once, so its traced training step is reused; every `fit` starts
    from new initial weights (`build()` after seeding) and a fresh optimizer, with the same
    schedule. `fine_tune` keeps the model's weights instead (quantization-aware fine-tuning).
    The model `fit` returns is this trainer's own: convert or copy it before the next fit."""

    def __init__(self, build: Callable, training: Training, examples: int, epochs: int, num_classes: int,
                 peak_lr: float | None = None, min_steps: int | None = None, fine_tune: bool = False):
        import tf_keras

        self.build, self.training, self.num_classes, self.fine_tune = build, training, num_classes, fine_tune
        self.schedule = s = schedule(examples, epochs, training, training.min_steps if min_steps is None else min_steps)
        self.model = build()
        peak = training.learning_rate if peak_lr is None else peak_lr
        warmup = 0 if fine_tune else min(s.steps // 2, training.warmup_epochs * s.steps_per_round)
        lr = tf_keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=peak / 10 if warmup else peak, decay_steps=s.steps - warmup,
            alpha=0.0, warmup_target=peak if warmup else None, warmup_steps=warmup)
        self.model.compile(optimizer=tf_keras.optimizers.AdamW(lr, weight_decay=training.weight_decay),
                           loss=tf_keras.losses.CategoricalCrossentropy(label_smoothing=training.label_smoothing),
                           metrics=["accuracy"], steps_per_execution=s.steps_per_round)  # a round per call

    def _start(self, seed: int) -> None:
        import tf_keras

        tf_keras.utils.set_random_seed(seed)  # initial weights, shuffling, augmentation
        if not self.fine_tune:
            self.model.set_weights(self.build().get_weights())
        for v in self.model.optimizer.variables:  # the step count (so the schedule) and the moments
            v.assign(np.zeros(v.shape, v.dtype.as_numpy_dtype))

    def _run(self, x, y, val, seed: int, check: list) -> tuple[int, int, float | None]:
        """One pass of the schedule; returns (passes over the data, best round, float validation
        accuracy or None). `check`: callbacks beside early stopping (the short-run check)."""
        import tensorflow as tf
        import tf_keras

        s = self.schedule
        data = batches(x, y, self.training, self.num_classes, s.batch_size, seed)
        if val is None:  # nothing to stop on
            with tf.device("/CPU:0"):
                h = self.model.fit(data, epochs=s.rounds, steps_per_epoch=s.steps_per_round, callbacks=check,
                                   verbose=0).history
            return -(-len(h["loss"]) * s.steps_per_round * s.batch_size // len(y)), len(h["loss"]), None
        validation = (val[0], np.eye(self.num_classes, dtype=np.float32)[val[1]])
        stop = tf_keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=self.training.patience, restore_best_weights=True,
            start_from_epoch=min(self.training.warmup_epochs, s.rounds // 4))
        with tf.device("/CPU:0"):
            h = self.model.fit(data, validation_data=validation, epochs=s.rounds, steps_per_epoch=s.steps_per_round,
                               callbacks=[stop, *check], verbose=0, validation_batch_size=256).history
        best = int(np.argmin(h["val_loss"]))
        return -(-len(h["loss"]) * s.steps_per_round * s.batch_size // len(y)), best + 1, float(h["val_accuracy"][best])

    def fit(self, x: np.ndarray, y: np.ndarray, val: tuple[np.ndarray, np.ndarray] | None, seed: int,
            short: ShortRun | None = None):
        """Train with the recipe; start again from other new weights, up to `training.restarts`
        times, when the run ends at chance (on the validation data, or on the training data when
        there is none). `short` checks the first attempt after its first rounds and may end the
        training there (`TrainStats.stopped`). Returns (model, TrainStats)."""
        check_x, check_y = val if val is not None else (x, y)
        majority = _majority(check_y)
        restarts = 0 if self.fine_tune else self.training.restarts
        seen: dict = {}
        for attempt in range(restarts + 1):
            self._start(seed + 7919 * attempt)
            check = [_short_run_check(short, seen)] if short is not None and attempt == 0 else []
            passes, best, val_acc = self._run(x, y, val, seed + attempt, check)
            stats = TrainStats(passes, best, val_acc, attempt, seen.get("accuracy"), seen.get("stopped", False))
            if attempt == restarts or stats.stopped:
                return self.model, stats
            accuracy = val_acc if val is not None else _accuracy(self.model, check_x, check_y)
            if accuracy > majority + chance_margin(majority, len(check_y)):
                return self.model, stats
        raise AssertionError("unreachable")


def _short_run_check(short: ShortRun, seen: dict):
    """A Keras callback: after round `short.rounds`, the float accuracy on the check data goes
    into `seen`, and training stops when `short.keep_going` says so."""
    import tf_keras

    class ShortRunCheck(tf_keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 == short.rounds:
                seen["accuracy"] = _accuracy(self.model, short.x, short.y)
                if not short.keep_going(seen["accuracy"]):
                    seen["stopped"] = True
                    self.model.stop_training = True

    return ShortRunCheck()


def _accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    """The float model's accuracy (no augmentation)."""
    return float(np.mean(model.predict(x, verbose=0, batch_size=256).argmax(axis=1) == y))


def quantization_aware_finetune(model, x: np.ndarray, y: np.ndarray, training: Training, num_classes: int,
                                seed: int):
    """Fine-tune the trained float model with tfmot's int8 fake quantization (BN folded, per-channel
    weights, as the converter will quantize) for `training.qat_epochs` epochs at a tenth of the
    peak learning rate. Returns the quantization-aware model, which converts to full int8 like the
    float one. This is the step lower bit widths will take too."""
    import tensorflow_model_optimization as tfmot

    return fine_tune(tfmot.quantization.keras.quantize_model(model), x, y, training, num_classes,
                     training.qat_epochs, seed)


def fine_tune(model, x: np.ndarray, y: np.ndarray, training: Training, num_classes: int, epochs: int, seed: int,
              min_steps: int = 0, peak_lr: float | None = None):
    """Train `model` further from its weights with the recipe (augmentation, mixup, label
    smoothing, class weights, AdamW) for `epochs` passes (at least `min_steps` steps), no
    warm-up, cosine decay from `peak_lr` (default a tenth of the training's). Returns the model."""
    Trainer(lambda: model, training, len(y), epochs, num_classes,
            peak_lr=training.learning_rate / 10 if peak_lr is None else peak_lr,
            min_steps=min_steps, fine_tune=True).fit(x, y, None, seed)
    return model
