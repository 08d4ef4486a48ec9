"""Two-stage training on tiny sizes: loss goes down, checkpoints resume, NaN stops."""

from __future__ import annotations

import numpy as np
import pytest

from compressor.models.generator import GeneratorConfig, build_generator
from compressor.style.loss_network import build_loss_network
from compressor.style.losses import LossWeights
from compressor.style.training import StyleTrainConfig, StyleTrainer, TrainingError

SIZE = 32


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    content = np.stack([np.stack([xx * a, yy, (xx + yy) / 2], -1) for a in (0.3, 0.6, 0.9, 1.0)])
    content = np.clip(content + rng.normal(0, 0.05, content.shape), 0, 1).astype("float32")
    stripes = (np.sin(xx * 20) > 0).astype("float32")
    style = np.stack([stripes, 1 - stripes, stripes * 0.5], -1).astype("float32")
    return content, style


def _generator():
    return build_generator(GeneratorConfig(width=0.25, residual_blocks=1, input_size=SIZE))


@pytest.fixture(scope="module")
def loss_network():
    return build_loss_network("random", seed=0)


def test_a_few_steps_lower_the_total_loss(loss_network):
    content, style = _data()
    config = StyleTrainConfig(
        stage1_steps=25,
        stage2_steps=0,
        batch_size=2,
        learning_rate=5e-3,
        weights=LossWeights(content=1.0, style=10.0, total_variation=1.0),
    )
    result = StyleTrainer(_generator(), loss_network, style, config).train(content)
    totals = [h["total"] for h in result.history]
    assert np.mean(totals[-5:]) < 0.8 * np.mean(totals[:5])
    assert result.loss_network == "VGG19 random (seed 0, He-normal)"


def test_identity_warm_up_runs_first_and_learns_to_reproduce_the_input(loss_network):
    content, style = _data()
    config = StyleTrainConfig(
        warmup_steps=30, stage1_steps=2, stage2_steps=0, batch_size=2, learning_rate=5e-3
    )
    result = StyleTrainer(_generator(), loss_network, style, config).train(content)
    stages = [h["stage"] for h in result.history]
    assert stages == [0] * 30 + [1] * 2
    warm = [h["reconstruction"] for h in result.history[:30]]
    assert np.mean(warm[-5:]) < 0.5 * np.mean(warm[:5])
    assert "content" in result.history[-1] and "reconstruction" not in result.history[-1]


def test_stage_two_is_skipped_with_a_random_loss_network(loss_network):
    content, style = _data()
    config = StyleTrainConfig(stage1_steps=2, stage2_steps=3, batch_size=2)
    trainer = StyleTrainer(_generator(), loss_network, style, config)
    result = trainer.train(content)
    assert not result.stage2_ran and len(result.history) == 2


def test_stage_two_trains_only_shallow_vgg_blocks(tmp_path, loss_network):
    path = tmp_path / "vgg.h5"
    loss_network.vgg.save_weights(path)
    trained_net = build_loss_network(str(path))  # a "trained" (file) network runs stage 2
    before = {w.name: w.numpy().copy() for w in trained_net.vgg.weights}
    content, style = _data()
    config = StyleTrainConfig(stage1_steps=1, stage2_steps=2, batch_size=2, vgg_learning_rate=1e-3)
    result = StyleTrainer(_generator(), trained_net, style, config).train(content)
    assert result.stage2_ran and [h["stage"] for h in result.history] == [1, 2, 2]
    changed = {
        name.split("/")[0]
        for name, value in before.items()
        if not np.array_equal(
            value,
            trained_net.vgg.get_layer(name.split("/")[0])
            .weights[0 if "kernel" in name else 1]
            .numpy(),
        )
    }
    assert changed and all(name.startswith(("block1", "block2")) for name in changed)


def test_interrupted_training_resumes_from_the_checkpoint(tmp_path, loss_network):
    content, style = _data()
    config = StyleTrainConfig(stage1_steps=4, stage2_steps=0, batch_size=2, checkpoint_every=2)
    first = StyleTrainer(
        _generator(),
        loss_network,
        style,
        StyleTrainConfig(stage1_steps=2, stage2_steps=0, batch_size=2),
        checkpoint_dir=tmp_path / "ckpt",
    )
    first.train(content)
    resumed = StyleTrainer(_generator(), loss_network, style, config, tmp_path / "ckpt")
    result = resumed.train(content)
    assert result.resumed_from_step == 2 and [h["step"] for h in result.history] == [3, 4]


def test_nan_loss_stops_with_a_message_and_keeps_the_checkpoint(tmp_path, loss_network):
    content, style = _data()
    ckpt = tmp_path / "ckpt"
    StyleTrainer(
        _generator(),
        loss_network,
        style,
        StyleTrainConfig(stage1_steps=1, stage2_steps=0, batch_size=2),
        ckpt,
    ).train(content)
    bad = content.copy()
    bad[:] = np.nan
    trainer = StyleTrainer(
        _generator(),
        loss_network,
        style,
        StyleTrainConfig(stage1_steps=3, stage2_steps=0, batch_size=2),
        ckpt,
    )
    with pytest.raises(TrainingError, match="non-finite at step 2") as error:
        trainer.train(bad)
    assert "ckpt-1" in error.value.hint


def test_weight_search_picks_by_heldout_losses(loss_network):
    from compressor.style.weight_search import default_grid, search_loss_weights

    content, style = _data()
    base = StyleTrainConfig(stage1_steps=3, batch_size=2, learning_rate=5e-3)
    grid = default_grid(LossWeights(content=1.0, style=1.0))
    points, chosen = search_loss_weights(
        _generator, loss_network, style, content[:3], content[3:], grid, base
    )
    assert [p.weights.style for p in points] == [0.01, 1.0, 100.0]
    assert chosen is min(points, key=lambda p: p.score)
    best_c, best_s = min(p.content for p in points), min(p.style for p in points)
    for point in points:
        assert point.score == pytest.approx(point.content / best_c + point.style / best_s)


def test_mirrored_strategy_trains_on_two_logical_cpus():
    import subprocess
    import sys

    script = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
import compressor, numpy as np
from compressor.models.generator import GeneratorConfig, build_generator
from compressor.style.loss_network import build_loss_network
from compressor.style.training import StyleTrainConfig, StyleTrainer
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    generator = build_generator(GeneratorConfig(width=0.25, residual_blocks=1, input_size=32))
    network = build_loss_network("random", seed=0)
rng = np.random.default_rng(0)
content = rng.random((4, 32, 32, 3)).astype("float32")
style = rng.random((32, 32, 3)).astype("float32")
config = StyleTrainConfig(stage1_steps=3, stage2_steps=0, batch_size=4, learning_rate=5e-3)
trainer = StyleTrainer(generator, network, style, config, distribution=strategy)
result = trainer.train(content)
assert trainer.replicas == 2, trainer.replicas
assert len(result.history) == 3 and all(np.isfinite(h["total"]) for h in result.history)
print("replicas", trainer.replicas)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "replicas 2" in result.stdout
