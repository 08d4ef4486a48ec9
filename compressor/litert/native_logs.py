"""Keep TensorFlow's and LiteRT's native start-up chatter off the user's terminal.

TF 2.21 prints absl/cudart lines to file descriptor 2 while importing, whatever
``TF_CPP_MIN_LOG_LEVEL`` says; LiteRT announces its XNNPACK delegate the same way.
Python exceptions still propagate; ``COMPRESSOR_DEBUG=1`` shows everything.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_native_logs() -> Iterator[None]:
    """Silence file descriptor 2 inside the block (not with COMPRESSOR_DEBUG)."""
    if os.environ.get("COMPRESSOR_DEBUG"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow_quietly() -> None:
    """Import TensorFlow (and tf_keras) once, without the native log lines."""
    # ai-edge-quantizer calibrates with every intermediate tensor kept, on purpose; LiteRT
    # warns about that debugging mode each time, which tells the user nothing.
    warnings.filterwarnings(
        "ignore", message=".*experimental_preserve_all_tensors", category=UserWarning
    )
    if "tensorflow" in sys.modules:
        return
    with quiet_native_logs():
        import tensorflow  # noqa: F401
        import tf_keras  # noqa: F401
