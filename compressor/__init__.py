"""compressor: hardware-aware model compression for TensorFlow/Keras.

tensorflow-model-optimization needs Keras 2, so the package selects tf_keras as
``tf.keras`` before anything imports TensorFlow.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# TensorFlow's C++ start-up chatter is noise for a CLI user; real errors still surface.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"
