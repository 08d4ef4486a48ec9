"""Example third-party plugin: tfmot weight clustering as a `prune`-stage strategy.

Clustering shares each layer's weights among a few centroids, so the converted
model gzips much smaller (fewer distinct values); like unstructured pruning it does
not change TFLite latency. Installed with pip, it is found through the entry point
group ``compressor`` and appears in `compressor plugins` and in plans.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from compressor.api import (
    Artifact,
    Estimate,
    RunContext,
    StageError,
    Strategy,
    StrategyConfig,
    StrategyRegistry,
    Support,
    clone_keras_model,
    fine_tune_on_float,
    hookimpl,
)

_CLUSTERABLE = ("Conv2D", "Dense")  # depthwise kernels stay unclustered in tfmot 0.8


class ClusterConfig(StrategyConfig):
    clusters: int = Field(default=16, ge=2, le=256, description="Centroids per layer")
    fine_tune_steps: int = Field(default=30, ge=0, le=100_000, description="Training steps")
    batch_size: int = Field(default=4, ge=1, le=512, description="Images per step")
    learning_rate: float = Field(default=1e-5, gt=0, le=1, description="Adam learning rate")


def distinct_values(model: Any, names: list[str]) -> int:
    """Largest number of distinct kernel values among the named layers."""
    import numpy as np

    return max(len(np.unique(model.get_layer(n).get_weights()[0])) for n in names)


class WeightClustering(Strategy):
    """k-means weight clustering per layer (tfmot), self-distilled, then stripped."""

    name = "weight-clustering"
    stage = "prune"
    summary = "tfmot weight clustering (k-means per layer): much smaller gzip, same latency"
    Config = ClusterConfig

    def supports(self, profile, info, pipeline) -> Support:
        if not any(layer.class_name in _CLUSTERABLE for layer in info.layers):
            return Support.no("no Conv2D/Dense layer to cluster")
        return Support.yes()

    def estimate(self, profile, info, params, pipeline) -> Estimate:
        clusters = int(params.get("clusters", 16))
        return Estimate(
            gzip_factor=0.45 if clusters <= 16 else 0.7,
            ssim_loss=0.015,
            fine_tunes=True,
            note=f"{clusters} shared values per layer: smaller gzip, same latency",
        )

    def apply(self, artifact: Artifact, context: RunContext, config: ClusterConfig) -> Artifact:
        """Cluster the supported layers, fine-tune against the float model, strip."""
        import tensorflow_model_optimization as tfmot
        import tf_keras as keras

        clustered_names: list[str] = []
        wrapper_names: set[str] = set()
        init = tfmot.clustering.keras.CentroidInitialization.KMEANS_PLUS_PLUS

        def wrap(layer: Any) -> Any:
            copy = layer.__class__.from_config(layer.get_config())
            if layer.__class__.__name__ in _CLUSTERABLE and layer.weights:
                # Centroids are initialised from the kernel when the wrapper is built,
                # so the layer must hold the trained weights before it is wrapped.
                copy.build(layer.input_shape)
                copy.set_weights(layer.get_weights())
                clustered_names.append(layer.name)
                wrapper = tfmot.clustering.keras.cluster_weights(
                    copy, number_of_clusters=config.clusters, cluster_centroids_init=init
                )
                wrapper_names.add(wrapper.name)
                return wrapper
            return copy

        source = clone_keras_model(artifact.keras_model)  # cluster_weights mutates its input
        wrapped = keras.models.clone_model(source, clone_function=wrap)
        for layer, original in zip(wrapped.layers, source.layers, strict=True):
            if original.weights and layer.name not in wrapper_names:
                layer.set_weights(original.get_weights())
        if not clustered_names:
            raise StageError("weight-clustering: no layer to cluster")
        fine_tune_on_float(wrapped, context, config)  # self-distilled on the float outputs
        stripped = tfmot.clustering.keras.strip_clustering(wrapped)
        values = distinct_values(stripped, clustered_names)
        context.note(f"weight-clustering: {len(clustered_names)} layers, ≤{values} values each")
        return artifact.with_keras(
            stripped, clustered_layers=len(clustered_names), max_distinct_weights=values
        )


@hookimpl
def register_strategies(registry: StrategyRegistry) -> None:
    """Register the clustering strategy."""
    registry.add(WeightClustering)
