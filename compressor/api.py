"""The stable plugin API: everything a plugin needs, from one module.

A plugin imports from here only; what it imports keeps its name and meaning across
minor releases (internal modules may move). Importing it does not import TensorFlow.

    from compressor.api import Estimate, Strategy, StrategyConfig, Support, hookimpl

    class MyQuantizer(Strategy):
        name = "my-quantizer"
        stage = "quantize"
        ...

    @hookimpl
    def register_strategies(registry):
        registry.add(MyQuantizer)

docs/plugins.md is the tutorial; ``compressor.testing`` has the pytest fixture that
registers a plugin object without installing it.
"""

from __future__ import annotations

from compressor.core.artifact import Artifact
from compressor.core.context import RunContext
from compressor.core.datasets import ImageSet
from compressor.core.errors import CompressorError, PluginError, StageError
from compressor.core.finetune import fine_tune_on_float, self_distill
from compressor.core.metrics import Metric, MetricRegistry
from compressor.core.model_info import LayerInfo, ModelInfo, model_info_from_keras
from compressor.core.outputs import ModelOutputs
from compressor.core.profiles import HardwareProfile, ProfileRegistry
from compressor.core.strategy import (
    REQUIRED_STAGES,
    STAGES,
    Estimate,
    PipelineView,
    Strategy,
    StrategyConfig,
    StrategyRegistry,
    Support,
)
from compressor.ingest.keras_io import clone_keras_model
from compressor.plugins import hookimpl
from compressor.reports.report_model import Report

__all__ = [
    "REQUIRED_STAGES",
    "STAGES",
    "Artifact",
    "CompressorError",
    "Estimate",
    "HardwareProfile",
    "ImageSet",
    "LayerInfo",
    "Metric",
    "MetricRegistry",
    "ModelInfo",
    "ModelOutputs",
    "PipelineView",
    "PluginError",
    "ProfileRegistry",
    "Report",
    "RunContext",
    "StageError",
    "Strategy",
    "StrategyConfig",
    "StrategyRegistry",
    "Support",
    "clone_keras_model",
    "fine_tune_on_float",
    "hookimpl",
    "model_info_from_keras",
    "self_distill",
]
