"""Distill stage: a smaller student generator, or the same generator with batch norm
instead of instance norm (the norm swap), trained on the teacher's outputs."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pydantic import Field

from compressor.api import (
    Artifact,
    Estimate,
    ModelInfo,
    PipelineView,
    RunContext,
    StageError,
    Strategy,
    StrategyConfig,
    StrategyRegistry,
    Support,
    hookimpl,
)
from compressor.models.generator_config import GeneratorConfig
from compressor.models.generator_spec import (
    cut_config,
    generator_config_from_info,
    generator_info,
    student_of,
)
from compressor.planning.measured_constants import is_measured, measured, measured_curve

# Students (300 distillation steps): the one shape measured (width x0.5, 5 blocks, plain
# convs) reached SSIM 0.569 vs the teacher at 256x256 (benchmarks/style_transfer.py,
# x86-cpu-rt row; docs/measurements.md). Other shapes are not measured: they get the
# same loss (the planner cannot tell them apart on fidelity).
STUDENT_LOSS = 0.431


class DistillConfig(StrategyConfig):
    steps: int = Field(default=300, ge=1, le=1_000_000, description="Distillation steps")
    batch_size: int = Field(default=4, ge=1, le=512, description="Images per step")
    learning_rate: float = Field(default=1e-3, gt=0, le=1, description="Adam learning rate")
    vgg_weights: str = Field(
        default="auto",
        description="Loss network for the feature term: auto (ImageNet if cached, else "
        "pixel loss only), none, random, imagenet, or a weights file",
    )
    feature_weight: float = Field(default=1e-3, ge=0, description="Weight of the VGG term")
    crop_size: int = Field(
        default=128, ge=0, le=4096, description="Train on random crops this size (0: whole)"
    )


class StudentConfig(DistillConfig):
    width: float = Field(default=0.5, gt=0, le=2, description="Student width multiplier")
    residual_blocks: int = Field(default=3, ge=0, le=16, description="Student residual blocks")
    depthwise: bool = Field(default=True, description="Depthwise-separable residual blocks")
    norm: str = Field(default="batch", pattern="^(batch|instance)$", description="Student norm")


def _loss_network(choice: str, context: RunContext) -> Any:
    from compressor.style.loss_network import (
        LossNetworkError,
        build_loss_network,
        keras_cache_path,
    )

    if choice == "none":
        return None
    if choice == "auto":
        if not keras_cache_path().is_file():
            context.note("distill: no cached ImageNet VGG19, pixel loss only (vgg_weights=auto)")
            return None
        choice = "imagenet"
    try:
        return build_loss_network(choice, seed=context.seed)
    except LossNetworkError as exc:
        raise StageError(f"distill: {exc.message}", exc.hint) from exc


def _distill_into(
    artifact: Artifact,
    context: RunContext,
    student_config: GeneratorConfig,
    config: DistillConfig,
    label: str,
) -> Artifact:
    from compressor.core.model_info import model_info_from_keras
    from compressor.models.generator import build_generator
    from compressor.style.distill import copy_matching_weights, distill, recalibrate_batch_norm

    teacher = artifact.keras_model
    size = student_config.input_size
    crop = min(size, config.crop_size) if config.crop_size else size
    trainee = build_generator(replace(student_config, input_size=crop), seed=context.seed)
    copied = copy_matching_weights(teacher, trainee)
    network = _loss_network(config.vgg_weights, context)
    losses = distill(
        teacher,
        trainee,
        context.images.train,
        config.steps,
        config.batch_size,
        config.learning_rate,
        network,
        config.feature_weight,
        context.progress,
        context.seed,
    )
    student = trainee
    if crop != size:  # same layers at full size; batch-norm statistics from whole images
        student = build_generator(student_config, seed=context.seed)
        student.set_weights(trainee.get_weights())
        recalibrate_batch_norm(student, context.images.train)
    context.model_info = model_info_from_keras(student)
    context.note(
        f"{label}: student {student.name} ({student.count_params():,} params), "
        f"{copied} layers initialised from the teacher, loss {losses[0]:.5f} -> {losses[-1]:.5f}"
        f", VGG term: {network.weights if network else 'none'}"
    )
    return artifact.with_keras(
        student,
        distilled=True,
        student=student.name,
        distill_final_loss=losses[-1],
        distill_loss_network=network.weights if network else "none",
    )


def _under_latency_budget(profile) -> Support:
    """Students trade fidelity for speed: offered only where a latency budget asks."""
    if profile.budgets.max_latency_ms is None:
        return Support.not_needed(f"not needed: {profile.name} sets no latency budget")
    return Support.yes()


def _teacher_config(info: ModelInfo) -> GeneratorConfig | None:
    return generator_config_from_info(info)


class NormSwapConfig(DistillConfig):
    # The student starts from the teacher's convolutions: a low rate keeps them.
    learning_rate: float = Field(default=1e-4, gt=0, le=1, description="Adam learning rate")


class NormSwap(Strategy):
    """Instance norm → batch norm (foldable, int8- and EdgeTPU-friendly), distilled.

    The planner offers it when the target needs full int8 and the generator has
    instance norm (whose int8 mean/variance math costs quality, docs/measurements.md).
    """

    name = "norm-swap"
    stage = "distill"
    summary = "Swap instance norm for batch norm and distill from the original generator"
    Config = NormSwapConfig

    def supports(self, profile, info: ModelInfo, pipeline: PipelineView) -> Support:
        config = _teacher_config(info)
        if config is None:
            return Support.no("only compressor generators can be rebuilt (norm swap)")
        if config.norm != "instance":
            return Support.no("the generator has no instance norm")
        if not profile.requires_full_integer:
            return Support.not_needed(
                f"not needed: {profile.name} can keep instance norm out of int8"
            )
        return Support.yes()

    def rewrite_info(self, info: ModelInfo, params: dict[str, Any]) -> ModelInfo:
        config = _teacher_config(info)
        return generator_info(student_of(config, norm="batch")) if config else info

    def estimate(self, profile, info, params, pipeline) -> Estimate:
        return Estimate(
            ssim_loss=measured("ssim_loss.norm_swap"),
            fine_tunes=True,
            note="instance norm breaks full int8: batch norm folds into convs",
        )

    def apply(self, artifact: Artifact, context: RunContext, config: NormSwapConfig) -> Artifact:
        """Build the batch-norm twin, start from the teacher's convs, distill."""
        teacher_config = _teacher_config(context.model_info)
        if teacher_config is None or teacher_config.norm != "instance":
            raise StageError("norm-swap needs a compressor generator with instance norm")
        return _distill_into(
            artifact, context, student_of(teacher_config, norm="batch"), config, self.name
        )


# Student shapes relative to the teacher: (width scale, residual blocks, depthwise).
_STUDENT_SHAPES = ((0.5, 3, True), (0.5, 5, False), (0.75, 3, True))


class StudentDistill(Strategy):
    """A smaller generator (width, blocks, depthwise) trained on the teacher's outputs."""

    name = "distill-student"
    stage = "distill"
    summary = "Distill the generator into a smaller student (width/blocks/depthwise)"
    Config = StudentConfig

    def candidate_params(self, profile, info) -> list[dict[str, Any]]:
        teacher = _teacher_config(info)
        teacher_width = teacher.width if teacher else 1.0
        return [
            {
                "width": round(teacher_width * scale, 4),
                "residual_blocks": blocks,
                "depthwise": depthwise,
            }
            for scale, blocks, depthwise in _STUDENT_SHAPES
        ]

    def supports(self, profile, info: ModelInfo, pipeline: PipelineView) -> Support:
        if _teacher_config(info) is None:
            return Support.no("only compressor generators have a student family")
        return _under_latency_budget(profile)

    def _student(self, info: ModelInfo, params: dict[str, Any]) -> GeneratorConfig:
        config = self.Config.model_validate(params)
        return student_of(
            _teacher_config(info),
            width=config.width,
            residual_blocks=config.residual_blocks,
            depthwise=config.depthwise,
            norm=config.norm,
        )

    def rewrite_info(self, info: ModelInfo, params: dict[str, Any]) -> ModelInfo:
        if _teacher_config(info) is None:
            return info
        return generator_info(self._student(info, params))

    def estimate(self, profile, info, params, pipeline) -> Estimate:
        config = self.Config.model_validate(params)
        return Estimate(
            ssim_loss=STUDENT_LOSS,
            fine_tunes=True,
            note=f"student width {config.width:g}, {config.residual_blocks} blocks"
            + (", depthwise" if config.depthwise else ""),
        )

    def apply(self, artifact: Artifact, context: RunContext, config: StudentConfig) -> Artifact:
        """Build the student and distill it from the teacher."""
        if _teacher_config(context.model_info) is None:
            raise StageError("distill-student needs a compressor generator as teacher")
        student = self._student(context.model_info, config.model_dump())
        return _distill_into(artifact, context, student, config, self.name)


class CutStudentConfig(StrategyConfig):
    keep: float = Field(
        default=0.5, gt=0, le=1, description="Width kept (x the teacher's) outside the trunk"
    )
    trunk_keep: float = Field(
        default=1.0, gt=0, le=1, description="Width of the residual trunk kept (x the teacher's)"
    )
    residual_blocks: int = Field(
        default=2, ge=0, le=16, description="Residual blocks kept (the most active ones)"
    )
    edge_kernel: int = Field(
        default=9, ge=1, le=15, description="Kernel of the first/last conv (teacher's centre)"
    )
    steps: int = Field(default=5000, ge=0, le=1_000_000, description="Distillation steps")
    batch_size: int = Field(default=4, ge=1, le=512, description="Crops per step")
    learning_rate: float = Field(
        default=1e-3, gt=0, le=1, description="Adam learning rate (cosine decay to 2 %)"
    )
    crop_size: int = Field(default=128, ge=0, le=4096, description="Crop side (0: whole)")
    feature_weight: float = Field(
        default=1.0, ge=0, description="Weight of the trunk feature-map term"
    )
    ssim_weight: float = Field(
        default=3.0, ge=0, description="Weight of the (1 - SSIM) output term"
    )


class CutStudent(Strategy):
    """A student cut from the teacher (most active blocks, strongest filters in every
    layer), distilled on the teacher's outputs and trunk feature maps
    (``compressor.style.student_cut``)."""

    name = "cut-student"
    stage = "distill"
    summary = "Student cut from the teacher's own blocks and filters, feature-distilled"
    Config = CutStudentConfig

    def candidate_params(self, profile, info) -> list[dict[str, Any]]:
        return [
            {"keep": keep, "trunk_keep": trunk, "residual_blocks": blocks, "edge_kernel": kernel}
            for keep, trunk, blocks, kernel in CUT_SHAPES
        ]

    def supports(self, profile, info: ModelInfo, pipeline: PipelineView) -> Support:
        teacher = _teacher_config(info)
        if teacher is None or teacher.depthwise:
            return Support.no("only generators with plain residual convs can be cut")
        return _under_latency_budget(profile)

    def _student(self, teacher: GeneratorConfig, params: dict[str, Any]) -> GeneratorConfig:
        config = self.Config.model_validate(params)
        return cut_config(
            teacher, config.keep, config.residual_blocks, config.edge_kernel, config.trunk_keep
        )

    def rewrite_info(self, info: ModelInfo, params: dict[str, Any]) -> ModelInfo:
        teacher = _teacher_config(info)
        return generator_info(self._student(teacher, params)) if teacher else info

    def estimate(self, profile, info, params, pipeline) -> Estimate:
        config = self.Config.model_validate(params)
        return Estimate(
            ssim_loss=cut_student_loss(
                config.keep, config.residual_blocks, config.edge_kernel, config.trunk_keep
            ),
            fine_tunes=True,
            note=f"teacher's {config.residual_blocks} most active blocks and strongest "
            f"filters, {config.keep:g}x width (trunk {config.trunk_keep:g}x), "
            f"{config.edge_kernel}x{config.edge_kernel} edge convs",
        )

    def apply(self, artifact: Artifact, context: RunContext, config: CutStudentConfig):
        """Cut the student from the teacher, then distill it on outputs and features."""
        from compressor.core.model_info import model_info_from_keras
        from compressor.style.student_cut import TRUNK_ENTRY, cut_student, distill_on_crops

        teacher_config = _teacher_config(context.model_info)
        if teacher_config is None or teacher_config.depthwise:
            raise StageError("cut-student needs a compressor generator with plain residual convs")
        teacher = artifact.keras_model
        student, cut = cut_student(
            teacher,
            teacher_config,
            config.keep,
            config.residual_blocks,
            context.images.train,
            context.seed,
            config.edge_kernel,
            config.trunk_keep,
        )
        blocks, trunk = len(cut["kept_blocks"]), cut["trunk_channels"]
        pairs = [(TRUNK_ENTRY, TRUNK_ENTRY, trunk)]
        if blocks:
            pairs.append((f"res{teacher_config.residual_blocks}_add", f"res{blocks}_add", trunk))
        losses = distill_on_crops(
            teacher,
            student,
            context.images.train,
            pairs,
            config.steps,
            config.batch_size,
            config.learning_rate,
            config.crop_size,
            config.feature_weight,
            context.progress,
            context.seed,
            config.ssim_weight,
        )
        before, after = context.model_info, model_info_from_keras(student)
        context.model_info = after
        context.note(
            f"{self.name}: blocks {cut['kept_blocks']} of {teacher_config.residual_blocks} "
            f"kept, {config.keep:g}x width, trunk {config.trunk_keep:g}x; "
            f"MACs {before.macs / 1e6:.0f}M -> "
            f"{after.macs / 1e6:.0f}M"
            + (f"; {len(losses)} steps, loss {losses[0]:.5f} -> {losses[-1]:.5f}" if losses else "")
        )
        return artifact.with_keras(
            student,
            distilled=True,
            student=student.name,
            kept_blocks=cut["kept_blocks"],
            distill_final_loss=losses[-1] if losses else None,
            distill_steps=config.steps,
        )


def cut_shape_constant(
    keep: float, blocks: int, edge_kernel: int, trunk_keep: float | None = None
) -> str:
    """Name of the measured SSIM loss of one cut shape (default distillation)."""
    trunk = "" if trunk_keep is None or trunk_keep == keep else f"_{trunk_keep:g}t"
    return f"ssim_loss.cut_student_shape.{keep:g}x{trunk}_{blocks}b_{edge_kernel}e"


def cut_student_loss(
    keep: float, blocks: int, edge_kernel: int, trunk_keep: float | None = None
) -> float:
    """Expected SSIM loss of a cut student: the shape's own measurement when there is one
    (trunk width, blocks and edge kernels differ in what distillation can repair), else
    the width curve ``ssim_loss.cut_student@keep``."""
    name = cut_shape_constant(keep, blocks, edge_kernel, trunk_keep)
    if is_measured(name):
        return measured(name)
    return measured_curve("ssim_loss.cut_student", keep, (1.0, 0.0))


# Cut shapes (width kept, trunk width kept, residual blocks kept, edge kernel), measured
# at 256x256 on the x86 host, 2 threads, float32, after the space-to-depth rewrites
# (docs/style-transfer.md): the trunk's width is what fidelity needs (the demo cut to
# half width everywhere plateaus near SSIM 0.85; with its trunk whole it passes 0.88 in
# 600 steps), the trunk's blocks are what costs time (full trunk: 2 blocks 3.3x faster
# than the teacher, 3 blocks 2.7x). The trunk at 0.75x with 3 blocks ran as fast as the
# whole trunk with 2 and reached less (0.879 vs 0.886 at 800 steps): not offered.
CUT_SHAPES = ((0.5, 1.0, 2, 9), (0.5, 0.5, 5, 9))


@hookimpl
def register_strategies(registry: StrategyRegistry) -> None:
    """Register the distillation strategies."""
    registry.add(NormSwap)
    registry.add(StudentDistill)
    registry.add(CutStudent)
