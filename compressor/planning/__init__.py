"""Planning: plans, the planner, the cost model, op prediction, coverage and
input-resolution choice.

Above ``compressor.core``; imports neither TensorFlow nor LiteRT, so ``compressor plan``
answers without loading them.
"""
