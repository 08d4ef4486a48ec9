"""Input-size choice for fully convolutional models under a latency budget."""

from __future__ import annotations

import pytest

from compressor.core.constraints import Constraints
from compressor.models.generator_config import GeneratorConfig
from compressor.models.generator_spec import generator_info
from compressor.planning.resolution import choose_resolution
from tests.conftest import invoke_cli

TINY = GeneratorConfig(width=0.25, residual_blocks=1, norm="batch", depthwise=False)


def _info_at(size):
    return generator_info(GeneratorConfig(**{**vars(TINY), "input_size": size}))


def test_a_tight_budget_picks_a_smaller_input(host):
    profile = host.profiles.resolve("x86-cpu")
    loose = choose_resolution(profile, _info_at, host.strategies, 1e6)
    latencies = {o.size: o.latency_ms for o in loose.options}
    assert loose.size == 512 and latencies[96] < latencies[192] < latencies[256] < latencies[512]
    budget = (latencies[256] + latencies[320]) / 2
    tight = choose_resolution(profile, _info_at, host.strategies, budget)
    assert tight.size == 256
    assert "256x256 chosen" in tight.why() and "320x320 would take" in tight.why()
    none_fits = choose_resolution(profile, _info_at, host.strategies, latencies[96] / 2)
    assert none_fits.size == 96 and "no size meets every budget" in none_fits.why()
    # with a fidelity floor, a pipeline far from the model does not buy a larger input
    floor = profile.constrained(Constraints(min_fidelity=0.999, max_latency_ms=budget))
    held = choose_resolution(floor, _info_at, host.strategies, budget)
    assert held.size <= tight.size
    chosen = next(o for o in held.options if o.size == held.size)
    assert not chosen.fits or "prune" not in chosen.pipeline


@pytest.fixture
def free_size_model(tmp_path):
    """A fully convolutional Keras model saved with None height and width."""
    import tf_keras as keras

    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    outputs = keras.layers.Conv2D(3, 3, padding="same", activation="sigmoid")(x)
    path = tmp_path / "free.keras"
    keras.Model(inputs, outputs).save(path)
    return path


def test_plan_chooses_the_size_of_a_free_size_model_and_input_size_forces_one(
    free_size_model,
):
    chosen = invoke_cli(
        "plan", "-p", "x86-cpu", "-m", str(free_size_model), "--max-latency-ms", "1000"
    )
    assert chosen.returncode == 0, chosen.stdout + chosen.stderr
    assert "input 512x512 chosen from 96–512" in chosen.stdout
    forced = invoke_cli(
        "plan",
        "-p",
        "x86-cpu",
        "-m",
        str(free_size_model),
        "--max-latency-ms",
        "1000",
        "--input-size",
        "64",
    )
    assert forced.returncode == 0 and "chosen from" not in forced.stdout
    no_budget = invoke_cli("plan", "-p", "x86-cpu", "-m", str(free_size_model))
    assert no_budget.returncode != 0 and "--input-size" in no_budget.stdout + no_budget.stderr
