"""The run engine and its use cases: the plugin host, jobs (plan, run, resume), the
stage runner, the run store, the measured plan search, stage metrics, and host
calibration.

The top layer below the CLI: it drives plugins through the plugin host; no plugin
imports it.
"""
