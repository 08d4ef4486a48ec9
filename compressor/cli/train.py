"""`compressor train`: two-stage VGG19 perceptual training of a style generator."""

from __future__ import annotations

import contextlib
import json
import shlex
import sys
import time
from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from compressor.cli.render import console
from compressor.core.errors import CompressorError


def train(
    style: Path = typer.Option(..., "--style", "-s", help="Style image."),
    data: Path = typer.Option(..., "--data", "-d", help="Folder of content photos."),
    output: Path = typer.Option(
        ..., "--output", "-o", help="Where to save the generator (.keras)."
    ),
    size: int = typer.Option(128, "--size", min=16, help="Training image size (square)."),
    width: float = typer.Option(1.0, "--width", min=0.1, help="Generator width multiplier."),
    blocks: int = typer.Option(5, "--blocks", min=0, help="Residual blocks."),
    norm: str = typer.Option("instance", "--norm", help="instance or batch."),
    depthwise: bool = typer.Option(False, "--depthwise", help="Depthwise-separable blocks."),
    warmup_steps: int = typer.Option(
        0, "--warmup-steps", min=0, help="Identity warm-up steps first (pixel loss, no VGG)."
    ),
    steps: int = typer.Option(200, "--steps", min=1, help="Stage 1 steps (VGG frozen)."),
    stage2_steps: int = typer.Option(50, "--stage2-steps", min=0, help="Stage 2 steps."),
    batch_size: int = typer.Option(4, "--batch-size", min=1),
    learning_rate: float = typer.Option(1e-3, "--lr", help="Generator learning rate."),
    vgg_learning_rate: float = typer.Option(1e-5, "--vgg-lr", help="Stage 2 VGG learning rate."),
    vgg_weights: str = typer.Option(
        "imagenet", "--vgg-weights", help="imagenet (Keras cache), random, or a weights file."
    ),
    content_weight: float = typer.Option(1e4, "--content-weight"),
    style_weight: float = typer.Option(1e6, "--style-weight"),
    tv_weight: float = typer.Option(1.0, "--tv-weight"),
    checkpoint_every: int = typer.Option(50, "--checkpoint-every", min=1),
    seed: int = typer.Option(0, "--seed"),
    search_weights: bool = typer.Option(
        False,
        "--search-weights",
        help="Grid over content:style weights first, pick by held-out losses.",
    ),
    search_steps: int = typer.Option(20, "--search-steps", min=1, help="Steps per grid point."),
    devices: int = typer.Option(
        1,
        "--devices",
        min=1,
        help="Train data-parallel on N devices (tf.distribute "
        "MirroredStrategy; GPUs if there are N, else N logical CPUs).",
    ),
) -> None:
    """Train a style-transfer generator; re-running the same command resumes it."""
    from compressor.litert.native_logs import import_tensorflow_quietly

    import_tensorflow_quietly()
    from compressor.core.datasets import load_image_folder
    from compressor.models.generator import GeneratorConfig, build_generator
    from compressor.style.images import load_rgb, to_array
    from compressor.style.loss_network import build_loss_network
    from compressor.style.losses import LossWeights
    from compressor.style.training import StyleTrainConfig, StyleTrainer

    if output.suffix != ".keras":
        raise CompressorError(f"--output {output}: expected a .keras file name")
    if output.exists():
        raise CompressorError(f"--output {output} already exists", "choose a new file name")
    if norm not in ("instance", "batch"):
        raise CompressorError(f"--norm {norm}: expected instance or batch")
    style_image = to_array(load_rgb(style, "style image"), (size, size))
    distribution = _mirrored(devices) if devices > 1 else None
    images = load_image_folder(
        data, (size, size, 3), crops_per_image=4, seed=seed, held_out_fraction=0
    )
    content = images.train

    def scope():
        return distribution.scope() if distribution else contextlib.nullcontext()

    with scope():
        loss_network = build_loss_network(vgg_weights, seed=seed)
    config = GeneratorConfig(width, blocks, norm, depthwise, size)  # type: ignore[arg-type]
    weights = LossWeights(content_weight, style_weight, tv_weight)
    search = None
    if search_weights:
        search = _search(
            config,
            loss_network,
            style_image,
            images,
            weights,
            batch_size,
            learning_rate,
            search_steps,
            seed,
        )
        weights = search["chosen"]
    with scope():
        generator = build_generator(config, seed=seed)
    train_config = StyleTrainConfig(
        stage1_steps=steps,
        warmup_steps=warmup_steps,
        stage2_steps=stage2_steps,
        batch_size=batch_size,
        learning_rate=learning_rate,
        vgg_learning_rate=vgg_learning_rate,
        weights=weights,
        checkpoint_every=checkpoint_every,
        seed=seed,
    )
    checkpoints = output.with_name(output.name + ".ckpt")
    logs = output.with_name(output.name + ".logs")
    console.print(
        f"loss network: {loss_network.weights}; {len(content)} training images at {size}x{size}"
    )
    start = time.perf_counter()
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        task = progress.add_task("training", total=1.0)
        trainer = StyleTrainer(
            generator,
            loss_network,
            style_image,
            train_config,
            checkpoints,
            progress=lambda message, fraction: progress.update(
                task, completed=fraction, description=message
            ),
            log_dir=logs,
            distribution=distribution,
        )
        result = trainer.train(content)
    seconds = time.perf_counter() - start
    output.parent.mkdir(parents=True, exist_ok=True)
    generator.save(output)
    last = result.history[-1] if result.history else {}
    summary = {
        "command": _command_line(),
        "loss_network": loss_network.weights,
        "generator": vars(config),
        "train": {k: v for k, v in vars(train_config).items() if k != "weights"},
        "loss_weights": vars(train_config.weights),
        "resumed_from_step": result.resumed_from_step,
        "stage2_ran": result.stage2_ran,
        "final_losses": last,
        "seconds": round(seconds, 1),
        "replicas": trainer.replicas,
        "devices": list(distribution.extended.worker_devices) if distribution else None,
        "weight_search": search and {"grid": search["grid"], "chosen": vars(search["chosen"])},
    }
    output.with_name(output.name + ".json").write_text(json.dumps(summary, indent=2))
    if not result.stage2_ran and stage2_steps:
        console.print("[yellow]stage 2 skipped: the loss network is random[/yellow]")
    console.print(
        f"saved [bold]{output}[/bold] in {seconds:.0f} s — losses {last}; "
        f"TensorBoard logs in {logs}"
    )


def _command_line() -> str | None:
    """The `compressor train ...` command as typed (None when not run from a shell)."""
    if len(sys.argv) < 2 or sys.argv[1] != "train":
        return None
    return "compressor " + shlex.join(sys.argv[1:])


def _search(
    config, loss_network, style_image, images, base_weights, batch_size, learning_rate, steps, seed
) -> dict:
    """Run the grid on all photos but one, judge on the held-out photo, print the table."""
    from compressor.cli.render import Table
    from compressor.models.generator import build_generator
    from compressor.style.training import StyleTrainConfig
    from compressor.style.weight_search import default_grid, search_loss_weights

    per_image = len(images.train) // len(images.evaluation)
    if len(images.evaluation) < 2:
        raise CompressorError(
            "--search-weights needs at least 2 photos in --data",
            "one photo is held out to judge the grid",
        )
    train = images.train[: per_image * (len(images.evaluation) - 1)]
    heldout = images.evaluation[-1:]
    base = StyleTrainConfig(
        stage1_steps=steps, batch_size=batch_size, learning_rate=learning_rate, seed=seed
    )
    with console.status("searching content:style weights"):
        points, chosen = search_loss_weights(
            lambda: build_generator(config, seed=seed),
            loss_network,
            style_image,
            train,
            heldout,
            default_grid(base_weights),
            base,
        )
    table = Table(
        title=f"Weight search ({steps} steps each, judged on 1 held-out photo)",
        title_justify="left",
    )
    for column in ("content weight", "style weight", "content loss", "style loss", "score", ""):
        table.add_column(column)
    for point in points:
        table.add_row(
            f"{point.weights.content:g}",
            f"{point.weights.style:g}",
            f"{point.content:.4g}",
            f"{point.style:.4g}",
            f"{point.score:.3f}",
            "[green]chosen[/green]" if point is chosen else "",
        )
    console.print(table)
    return {
        "grid": [
            {
                "content_weight": p.weights.content,
                "style_weight": p.weights.style,
                "content_loss": p.content,
                "style_loss": p.style,
                "score": p.score,
            }
            for p in points
        ],
        "chosen": chosen.weights,
    }


def _mirrored(devices: int):
    """MirroredStrategy over ``devices`` GPUs, or over as many logical CPUs."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) >= devices:
        return tf.distribute.MirroredStrategy([f"/gpu:{i}" for i in range(devices)])
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(devices)]
    )
    return tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(devices)])
