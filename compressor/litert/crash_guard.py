"""Run a ``.tflite`` once in a child process first, so a model that crashes the LiteRT
interpreter (SIGFPE on an integer ``FLOOR_MOD`` of INT_MIN by -1, SIGSEGV in a kernel)
fails one candidate, with its signal named, instead of killing the run.

The child is a fresh interpreter (``subprocess``, never ``fork``: TensorFlow's threads do
not survive a fork) that imports LiteRT only and invokes the model on the very inputs the
measurement will use, through the same I/O conversion.
"""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from compressor.core.errors import ModelError
from compressor.core.outputs import ModelOutputs

PROBE_TIMEOUT_SECONDS = 600

_PROBE = """
import sys
import numpy as np
from compressor.litert.tflite_runtime import TFLiteModel
folder = sys.argv[1]
model = TFLiteModel(open(folder + "/model.tflite", "rb").read(), int(sys.argv[2]))
model.predict_outputs(np.load(folder + "/inputs.npy"))
"""


def crash_of(model: bytes, inputs: np.ndarray, threads: int | None = None) -> str | None:
    """Why invoking ``model`` on ``inputs`` kills the interpreter ("SIGFPE (signal 8)"),
    or None when it runs (errors LiteRT reports as exceptions are left to the caller)."""
    with tempfile.TemporaryDirectory(prefix="compressor-probe-") as folder:
        (Path(folder) / "model.tflite").write_bytes(model)
        np.save(Path(folder) / "inputs.npy", np.asarray(inputs, dtype=np.float32))
        try:
            done = subprocess.run(
                [sys.executable, "-c", _PROBE, folder, str(threads or 1)],
                capture_output=True,
                timeout=PROBE_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return f"no answer within {PROBE_TIMEOUT_SECONDS} s (a hang)"
    if done.returncode >= 0:
        return None
    number = -done.returncode
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = "signal"
    return f"{name} (signal {number})"


# (model, inputs, threads) digests a child has already run unharmed in this process
_SURVIVED: set[str] = set()


def check_runs(model: bytes, inputs: np.ndarray, threads: int | None, what: str) -> None:
    """A ``ModelError`` naming the signal when invoking ``model`` on ``inputs`` kills a
    child process's interpreter (each model and inputs are tried once per process)."""
    digest = hashlib.sha256(model)
    digest.update(np.ascontiguousarray(inputs, dtype=np.float32).tobytes())
    digest.update(str(threads).encode())
    key = digest.hexdigest()
    if key in _SURVIVED:
        return
    crash = crash_of(model, inputs, threads)
    if crash is None:
        _SURVIVED.add(key)
    else:
        raise ModelError(
            f"{what}: LiteRT crashed running it: {crash}",
            "the interpreter dies in one of the model's kernels on these inputs (caught in "
            "a child process); try another precision or report it to LiteRT",
        )


def guarded_outputs(
    model: bytes, inputs: np.ndarray, threads: int | None, what: str
) -> ModelOutputs:
    """``model``'s outputs on ``inputs``, computed here once a child process has run it
    unharmed (``check_runs``)."""
    from compressor.litert.tflite_runtime import TFLiteModel

    check_runs(model, inputs, threads, what)
    return TFLiteModel(model, threads).predict_outputs(inputs)
