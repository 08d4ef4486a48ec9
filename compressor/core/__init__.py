"""Core of compressor: profiles, model facts, plans, the planner, the runner and reports.

Nothing in this package imports TensorFlow at module level.
"""
