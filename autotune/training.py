"""Float training of a candidate model (tf_keras), with early stopping on validation loss."""
from __future__ import annotations

from dataclasses import dataclass

from autotune.config import Training
from autotune.data import Dataset


@dataclass(frozen=True)
class TrainStats:
    epochs_run: int
    val_accuracy: float  # float model, best epoch


def train_model(model, dataset: Dataset, epochs: int, training: Training) -> TrainStats:
    """Fit `model`; seed the global generators (`tf_keras.utils.set_random_seed`) before building
    it, so that its initial weights and the shuffling are reproducible."""
    import tensorflow as tf
    import tf_keras

    model.compile(optimizer=tf_keras.optimizers.Adam(training.learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    # The loss often plateaus for the first epochs before it falls: do not stop in them.
    stop = tf_keras.callbacks.EarlyStopping(monitor="val_loss", patience=training.patience,
                                            restore_best_weights=True, start_from_epoch=min(3, epochs // 4))
    with tf.device("/CPU:0"):
        history = model.fit(dataset.x_train, dataset.y_train, validation_data=(dataset.x_val, dataset.y_val),
                            epochs=epochs, batch_size=training.batch_size, callbacks=[stop], verbose=0)
    val = history.history["val_accuracy"]
    best = min(range(len(val)), key=lambda i: history.history["val_loss"][i])
    return TrainStats(epochs_run=len(val), val_accuracy=float(val[best]))
