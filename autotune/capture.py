"""Capture what native code writes to a file descriptor (TFLM and the TFLite converter print
from C++, out of reach of Python's sys.stderr)."""
from __future__ import annotations

import ctypes
import os
import sys
import tempfile
from contextlib import contextmanager
from typing import Iterator

_libc = ctypes.CDLL(None)


@contextmanager
def captured_fd(fd: int = 2) -> Iterator[list[str]]:
    """Yields a list that holds, after the block, the text written to `fd` inside it."""
    text: list[str] = []
    with tempfile.TemporaryFile(mode="w+b") as sink:
        (sys.stdout if fd == 1 else sys.stderr).flush()
        saved = os.dup(fd)
        try:
            os.dup2(sink.fileno(), fd)
            yield text
        finally:
            _libc.fflush(None)
            os.dup2(saved, fd)
            os.close(saved)
            sink.seek(0)
            text.append(sink.read().decode(errors="replace"))


def import_tensorflow():
    """Import TensorFlow without its start-up chatter (oneDNN, CUDA probing) on the terminal."""
    with captured_fd(2):
        import tensorflow as tf
        import tf_keras  # noqa: F401
    return tf
