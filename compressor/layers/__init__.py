"""Keras layers the project defines: instance normalisation (tf_keras has none) and the
space-to-depth block layers. They import TensorFlow at import, so they live here rather
than in ``compressor.core``, which stays TensorFlow-free at import."""
