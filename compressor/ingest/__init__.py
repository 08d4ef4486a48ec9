"""Users' models in: Keras 2/3 files, ONNX, fixed input sizes for dynamic-shape models.

Above ``compressor.litert``.
"""
