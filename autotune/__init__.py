"""autotune: design-space search and autotuner for TinyML on microcontrollers."""
import os

# tfmot and our model builders need Keras 2 (tf_keras); must be set before TensorFlow loads.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"
