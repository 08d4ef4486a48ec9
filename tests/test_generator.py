"""The generator family: analytic facts match Keras, config round-trips, layers save/load."""

from __future__ import annotations

import numpy as np
import pytest

from compressor.core.model_info import model_info_from_keras
from compressor.models.generator import GeneratorConfig, InstanceNormalization, build_generator
from compressor.models.generator_spec import generator_config_from_info, generator_info

CONFIGS = [
    GeneratorConfig(width=0.25, residual_blocks=1, norm="instance", input_size=32),
    GeneratorConfig(width=0.5, residual_blocks=2, norm="batch", depthwise=True, input_size=24),
    GeneratorConfig(input_size=16),
    GeneratorConfig(width=0.25, residual_blocks=2, input_size=32, edge_kernel=5),  # a cut student
    # a cut student whose residual trunk keeps twice the width of its other layers
    GeneratorConfig(width=0.125, residual_blocks=1, input_size=32, trunk_width=0.25),
]


@pytest.mark.parametrize("config", CONFIGS)
def test_analytic_info_equals_keras_and_config_round_trips(config):
    real = model_info_from_keras(build_generator(config))
    assert generator_info(config).to_dict() == real.to_dict()
    assert generator_config_from_info(real) == config


def test_non_generators_have_no_config():
    from tests.conftest import build_tiny_cnn

    assert generator_config_from_info(model_info_from_keras(build_tiny_cnn())) is None


@pytest.mark.parametrize("config", CONFIGS[:2])
def test_save_load_round_trips_custom_layers(tmp_path, config):
    import tf_keras as keras

    model = build_generator(config, seed=1)
    path = tmp_path / "gen.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # registered serializable: no custom_objects
    image = np.random.default_rng(0).random((1, config.input_size, config.input_size, 3))
    np.testing.assert_allclose(
        model.predict(image, verbose=0), loaded.predict(image, verbose=0), atol=1e-6
    )
    if config.norm == "instance":
        assert any(isinstance(layer, InstanceNormalization) for layer in loaded.layers)
    out = model.predict(image, verbose=0)
    assert out.min() >= 0.0 and out.max() <= 1.0
