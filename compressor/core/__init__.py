"""The domain and the plugin contract: hardware profiles, model facts, constraints,
images, and what a strategy is (``Strategy``, ``Artifact``, ``RunContext``).

The bottom layer: it imports no other compressor package, and nothing here imports
TensorFlow at module level.
"""
