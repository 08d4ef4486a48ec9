"""Train stage: generic supervised fine-tuning of an image-to-image model on paired images.

``targets_dir`` holds, for each image in the data folder, the wanted output under the
same file name. (Style-transfer perceptual training is a separate strategy.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field

from compressor.api import (
    Artifact,
    RunContext,
    StageError,
    Strategy,
    StrategyConfig,
    StrategyRegistry,
    Support,
    hookimpl,
    self_distill,
)
from compressor.core.datasets import IMAGE_SUFFIXES, images_from_paths
from compressor.core.errors import DataError


class PairedFineTuneConfig(StrategyConfig):
    inputs_dir: str = Field(description="Folder of input images")
    targets_dir: str = Field(description="Folder of target images with the same file names")
    steps: int = Field(default=100, ge=1, le=1_000_000, description="Training steps")
    batch_size: int = Field(default=4, ge=1, le=512, description="Images per step")
    learning_rate: float = Field(default=1e-4, gt=0, le=1, description="Adam learning rate")


def load_pairs(inputs_dir: Path, targets_dir: Path, shape: tuple[int, int, int], out_channels: int):
    """Paired (input, target) arrays matched by file name; errors name the missing side."""
    for folder in (inputs_dir, targets_dir):
        if not folder.is_dir():
            raise DataError(f"train: folder {folder} does not exist", "check train.params")
    names = sorted(p.name for p in inputs_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    paired = [n for n in names if (targets_dir / n).is_file()]
    if not paired:
        raise DataError(
            f"train: no file of {inputs_dir} has a same-named target in {targets_dir}",
            "name each target like its input image",
        )
    inputs = images_from_paths(
        [inputs_dir / n for n in paired], shape, str(inputs_dir), 0, held_out_fraction=0
    )
    target_shape = (shape[0], shape[1], out_channels)
    targets = images_from_paths(
        [targets_dir / n for n in paired], target_shape, str(targets_dir), 0, held_out_fraction=0
    )
    if len(inputs.evaluation) != len(targets.evaluation):
        raise DataError("train: some input or target images could not be read", "check the files")
    return inputs.evaluation, targets.evaluation


class PairedFineTune(Strategy):
    """Fine-tune an image-to-image model on (input, target) pairs with MSE."""

    name = "paired-finetune"
    stage = "train"
    summary = "Supervised fine-tuning of an image-to-image model on paired images (MSE)"
    Config = PairedFineTuneConfig
    auto_plan = False  # models arrive trained; a plan asks for training explicitly

    def supports(self, profile, info, pipeline) -> Support:
        if not info.is_image_to_image:
            return Support.no("paired fine-tuning needs an image-to-image model")
        return Support.yes()

    def apply(self, artifact: Artifact, context: RunContext, config: PairedFineTuneConfig):
        """Train the model in place on the pairs and report the loss before/after."""
        model = artifact.keras_model
        if model is None:
            raise StageError("paired-finetune needs a Keras model")
        shape = context.model_info.input_image_shape
        out_channels = int(model.outputs[0].shape[-1])
        inputs, targets = load_pairs(
            Path(config.inputs_dir), Path(config.targets_dir), shape, out_channels
        )
        before = float(np.mean((model.predict(inputs, verbose=0) - targets) ** 2))
        self_distill(
            model,
            inputs,
            targets,
            config.steps,
            config.batch_size,
            config.learning_rate,
            progress=context.progress,
            seed=context.seed,
        )
        after = float(np.mean((model.predict(inputs, verbose=0) - targets) ** 2))
        context.note(f"paired-finetune: MSE {before:.5f} -> {after:.5f} on {len(inputs)} pairs")
        return artifact.with_keras(model, train_mse_before=before, train_mse_after=after)


@hookimpl
def register_strategies(registry: StrategyRegistry) -> None:
    """Register the generic training strategy."""
    registry.add(PairedFineTune)
