"""Fuse stage: exact rewrites of convs onto 2×2 blocks, where the CPU's GEMM tiles run
them faster (``compressor.layers.block_conv_layers``):

- a narrow, large-kernel conv at full resolution computed on space-to-depth blocks
  (the generator's 9×9 convs: 3× faster on x86);
- a nearest ×2 upsample followed by a conv computed as a conv at the input's size and a
  depth-to-space (the upsampled tensor is never written; the outputs fill 4× wider tiles);
- an instance norm right after such a conv computed on the conv's block² output phases
  (4× wider vectors; the depth-to-space moves after it), and, where the norm and its
  elementwise activations feed a space-to-depth conv, kept on blocks to that conv (the
  depth-to-space and space-to-depth between them cancel).

Which convs gain is predicted by the profile's conv channel tiles (the cost model's
``tile_padded_macs``) and proven by the search's measurement; the rewritten model is
checked numerically against the original before it moves on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
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
from compressor.core.block_conv_weights import BLOCK, block_kernel_size
from compressor.core.keras_objects import KerasObjectRegistry
from compressor.core.model_info import LayerInfo
from compressor.core.profiles import ConvTiles
from compressor.litert.frozen_graph import is_frozen
from compressor.planning.cost_model import tile_padded_macs
from compressor.planning.coverage import not_in_op_list
from compressor.strategies.fuse import checked_rewrite_error

MIN_GAIN = 1.2  # rewrite a conv onto blocks only where the tiles predict this speed-up
# Layers that act on each element alone, so they run on blocks unchanged.
_ELEMENTWISE_CLASSES = ("ReLU", "LeakyReLU", "Activation")
_NOT_ELEMENTWISE = ("softmax", "log_softmax")


def _odd_same_conv(layer: LayerInfo) -> bool:
    return (
        layer.class_name == "Conv2D"
        and layer.stride_one_same
        and bool(layer.kernel)
        and all(k % 2 == 1 for k in layer.kernel)
        and len(layer.output_shape) == 4
        and all(d is not None for d in layer.output_shape[1:3])
    )


def _on_block_grid(layer: LayerInfo, class_name: str, in_channels: int) -> LayerInfo:
    """``layer``'s conv computed at half its output size with the block kernel, reading
    ``in_channels`` and writing 4× its outputs (then depth-to-space)."""
    size_h, size_w = (block_kernel_size(k) for k in layer.kernel)
    cout = layer.out_channels * BLOCK**2
    pixels = layer.output_shape[1] * layer.output_shape[2] // BLOCK**2
    return replace(
        layer,
        class_name=class_name,
        macs=pixels * size_h * size_w * in_channels * cout,
        params=size_h * size_w * in_channels * cout + cout,
        kernel=[size_h, size_w],
        in_channels=in_channels,
        out_channels=cout,
        stride_one_same=False,
    )


def block_form(layer: LayerInfo) -> LayerInfo | None:
    """``layer`` as the block-grid conv that computes it, or None when it has none (not a
    plain stride-1 'same' conv with an odd kernel on a size divisible by the block)."""
    if not _odd_same_conv(layer) or any(d % BLOCK for d in layer.output_shape[1:3]):
        return None
    return _on_block_grid(layer, "SpaceToDepthConv2D", layer.in_channels * BLOCK**2)


def sub_pixel_form(layer: LayerInfo) -> LayerInfo:
    """An upsampled ``layer`` as the conv at the input's size + depth-to-space."""
    return _on_block_grid(layer, "SubPixelConv2D", layer.in_channels)


def gainful_layers(info: ModelInfo, tiles: ConvTiles) -> dict[str, float]:
    """Convs whose block form the tiles predict at least ``MIN_GAIN``× faster: name → gain."""
    gains = {}
    for layer in info.layers:
        rewritten = block_form(layer)
        if rewritten is None:
            continue
        gain = tile_padded_macs(layer, tiles) / tile_padded_macs(rewritten, tiles)
        if gain >= MIN_GAIN:
            gains[layer.name] = round(gain, 2)
    return gains


def upsampled_convs(info: ModelInfo) -> dict[str, str]:
    """Conv name → the nearest upsample listed right before it, at the conv's size (the
    planner's reading of ModelInfo; ``apply`` checks the real graph and the ×2 factor)."""
    pairs = {}
    for before, layer in zip(info.layers, info.layers[1:], strict=False):
        if (
            before.kind == "resize"
            and before.interpolation == "nearest"
            and _odd_same_conv(layer)
            and before.output_shape[1:3] == layer.output_shape[1:3]
            and all(d % BLOCK == 0 for d in layer.output_shape[1:3])
        ):
            pairs[layer.name] = before.name
    return pairs


@dataclass(frozen=True)
class BlockNormChain:
    """A rewritten conv whose block² output phases an instance norm normalises on blocks;
    when ``reader`` is set, the norm's output and the elementwise ``activations`` after
    it stay on blocks up to that space-to-depth conv, which reads them as its blocks."""

    conv: str
    norm: str
    activations: tuple[str, ...] = ()
    reader: str | None = None


def _on_blocks(shape: list[int | None]) -> list[int | None]:
    """An NHWC shape held as 2×2 space-to-depth blocks."""
    batch, height, width, channels = shape
    return [batch, height // BLOCK, width // BLOCK, channels * BLOCK**2]


def _elementwise(layer: LayerInfo) -> bool:
    return layer.class_name in _ELEMENTWISE_CLASSES and layer.activation not in _NOT_ELEMENTWISE


def block_norm_chains(
    info: ModelInfo, blocks: set[str], upsampled: set[str]
) -> list[BlockNormChain]:
    """The instance norms that follow a conv rewritten onto blocks (``blocks``: space-to-
    depth convs, ``upsampled``: sub-pixel convs), read from ``info``'s layer order as the
    planner sees it (``apply`` checks the real graph)."""
    chains = []
    layers = info.layers
    for i, conv in enumerate(layers[:-1]):
        norm = layers[i + 1]
        if (
            conv.name not in blocks | upsampled
            or norm.class_name != "InstanceNormalization"
            or norm.output_shape != conv.output_shape
        ):
            continue
        end = i + 2
        while end < len(layers) and _elementwise(layers[end]):
            end += 1
        reader = layers[end] if end < len(layers) else None
        if reader is not None and reader.name in blocks:
            activations = tuple(layer.name for layer in layers[i + 2 : end])
            chains.append(BlockNormChain(conv.name, norm.name, activations, reader.name))
        else:
            chains.append(BlockNormChain(conv.name, norm.name))
    return chains


def rewrite_model(
    model: Any,
    blocks: set[str],
    upsampled: dict[str, str] | None = None,
    chains: Sequence[BlockNormChain] = (),
) -> Any:
    """``model`` with the Conv2D layers in ``blocks`` computed on space-to-depth blocks and
    each (conv → its upsample) in ``upsampled`` computed as a sub-pixel conv (the upsample
    becomes a linear activation the converter drops), and the instance norm of each of
    ``chains`` computed on blocks; same function, weights rearranged."""
    import tf_keras as keras

    from compressor.core.block_conv_weights import block_weights, upsampled_weights
    from compressor.layers.block_conv_layers import (
        BlockInstanceNormalization,
        SpaceToDepthConv2D,
        SubPixelConv2D,
    )

    upsampled = upsampled or {}
    upsamples = set(upsampled.values())
    writers = {chain.conv for chain in chains}
    readers = {chain.reader for chain in chains if chain.reader}
    norms = {chain.norm: chain.reader is not None for chain in chains}

    def clone(layer: Any) -> Any:
        if layer.name in upsamples:
            return keras.layers.Activation("linear", name=layer.name)
        if layer.name in norms:
            return BlockInstanceNormalization(
                layer.epsilon, writes_blocks=norms[layer.name], name=layer.name
            )
        if layer.name in blocks or layer.name in upsampled:
            kind = SpaceToDepthConv2D if layer.name in blocks else SubPixelConv2D
            return kind(
                layer.filters,
                tuple(block_kernel_size(k) for k in layer.kernel_size),
                activation=keras.activations.serialize(layer.activation),
                reads_blocks=layer.name in readers,
                writes_blocks=layer.name in writers,
                name=layer.name,
            )
        return layer.__class__.from_config(layer.get_config())

    rewritten = keras.models.clone_model(model, clone_function=clone)
    for layer in rewritten.layers:
        original = model.get_layer(layer.name)
        if layer.name in blocks or layer.name in upsampled:
            kernel, *bias = original.get_weights()
            rearrange = block_weights if layer.name in blocks else upsampled_weights
            layer.set_weights(list(rearrange(kernel, bias[0] if bias else None)))
        elif original.weights:
            layer.set_weights(original.get_weights())
    return rewritten


def _feeds_only(layer: Any, consumer: Any) -> bool:
    """``layer`` feeds ``consumer`` alone, and ``consumer`` reads ``layer`` alone."""
    inbound = [node.inbound_layers for node in consumer._inbound_nodes]
    return len(layer._outbound_nodes) == 1 and inbound == [layer]


def _checked_chains(model: Any, chains: list[BlockNormChain]) -> list[BlockNormChain]:
    """The chains that hold in ``model``'s graph: each link feeds the next alone, the norm
    is ours (``InstanceNormalization``); a chain whose tail does not hold ends at its norm."""
    from compressor.layers.instance_norm import InstanceNormalization

    kept = []
    for chain in chains:
        conv, norm = model.get_layer(chain.conv), model.get_layer(chain.norm)
        if not isinstance(norm, InstanceNormalization) or not _feeds_only(conv, norm):
            continue
        tail = [model.get_layer(name) for name in (*chain.activations, chain.reader) if name]
        links = zip([norm, *tail], tail, strict=False)
        if chain.reader and all(_feeds_only(before, after) for before, after in links):
            kept.append(chain)
        else:
            kept.append(BlockNormChain(chain.conv, chain.norm))
    return kept


def _checked_upsampled(model: Any, pairs: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The pairs that hold in ``model``'s graph (a nearest ×2 upsample feeding only its
    conv), and the names of the convs that do not."""
    kept, dropped = {}, []
    for conv_name, upsample_name in pairs.items():
        upsample, conv = model.get_layer(upsample_name), model.get_layer(conv_name)
        if (
            upsample.__class__.__name__ == "UpSampling2D"
            and tuple(upsample.size) == (BLOCK, BLOCK)
            and upsample.interpolation == "nearest"
            and _feeds_only(upsample, conv)
        ):
            kept[conv_name] = upsample_name
        else:
            dropped.append(conv_name)
    return kept, dropped


class SpaceToDepthConfig(StrategyConfig):
    layers: list[str] = Field(
        default_factory=list,
        description="Conv layers to rewrite (empty: those the channel tiles predict to gain)",
    )
    tiles: list[int] | None = Field(
        default=None,
        min_length=2,
        max_length=2,
        description="Input and output channel tiles that decide which convs gain "
        "(None: the profile's conv_tiles)",
    )
    upsampled: bool = Field(
        default=True,
        description="Also compute each nearest x2 upsample + conv as a conv and a depth-to-space",
    )
    block_norms: bool = Field(
        default=True,
        description="Also compute each instance norm right after a rewritten conv on blocks",
    )
    tolerance: float = Field(
        default=1e-3, gt=0, description="Max abs output difference allowed vs the original"
    )


_BLOCK_OPS = ("SPACE_TO_DEPTH", "DEPTH_TO_SPACE")


class SpaceToDepth(Strategy):
    """Exact rewrites onto 2×2 blocks: narrow large-kernel convs on space-to-depth
    blocks, upsample + conv pairs as sub-pixel convs."""

    name = "space-to-depth"
    stage = "fuse"
    summary = "Narrow wide convs on 2x2 space-to-depth blocks, upsample+conv as sub-pixel convs"
    Config = SpaceToDepthConfig

    def candidate_params(self, profile, info: ModelInfo) -> list[dict[str, Any]]:
        tiles = profile.conv_tiles
        return [{"tiles": [tiles.input, tiles.output]} if tiles else {}]

    @staticmethod
    def chosen_convs(
        info: ModelInfo, config: SpaceToDepthConfig, profile_tiles: ConvTiles | None
    ) -> dict[str, float]:
        """The convs to put on space-to-depth blocks: name → predicted gain (0 where the
        plan names a conv the tiles do not pick)."""
        tiles = ConvTiles(input=config.tiles[0], output=config.tiles[1]) if config.tiles else None
        gains = gainful_layers(info, tiles or profile_tiles) if tiles or profile_tiles else {}
        if config.layers:
            return {name: gains.get(name, 0.0) for name in config.layers}
        return gains

    def supports(self, profile, info: ModelInfo, pipeline: PipelineView) -> Support:
        if is_frozen(info):
            return Support.no("rewrites Keras models (a frozen graph's convs are left as they are)")
        if profile.conv_tiles is None:
            return Support.not_needed(f"not needed: {profile.name} states no conv channel tiles")
        for op in _BLOCK_OPS:
            missing = not_in_op_list(op, profile)
            if missing:
                return Support.no(missing)
        if pipeline.has("qat"):
            return Support.no("QAT wraps the Keras convs; the rewrite would drop its quantizers")
        if not gainful_layers(info, profile.conv_tiles) and not upsampled_convs(info):
            return Support.not_needed(
                f"not needed: no conv gains {MIN_GAIN:g}x on {profile.name}'s channel tiles "
                "and no upsample + conv pair"
            )
        return Support.yes()

    @staticmethod
    def chains_of(
        info: ModelInfo, config: SpaceToDepthConfig, names: set[str], pairs: dict[str, str]
    ) -> list[BlockNormChain]:
        """The instance norms the config puts on blocks (none unless ``block_norms``)."""
        return block_norm_chains(info, names, set(pairs)) if config.block_norms else []

    def rewrite_info(self, info: ModelInfo, params: dict[str, Any]) -> ModelInfo:
        config = self.Config.model_validate(params)
        names = set(self.chosen_convs(info, config, None))
        pairs = upsampled_convs(info) if config.upsampled else {}
        upsamples = set(pairs.values())
        chains = self.chains_of(info, config, names, pairs)
        writers = {chain.conv for chain in chains}
        readers = {chain.reader for chain in chains if chain.reader}
        kept_on_blocks = {chain.norm for chain in chains if chain.reader}
        kept_on_blocks |= {name for chain in chains for name in chain.activations}
        block_norms = {chain.norm for chain in chains}
        layers = []
        for layer in info.layers:
            if layer.name in upsamples:  # written as a linear activation the converter drops
                batch, height, width, channels = layer.output_shape
                layer = replace(
                    layer,
                    class_name="Activation",
                    kind="activation",
                    activation="linear",
                    interpolation=None,
                    output_shape=[batch, height // BLOCK, width // BLOCK, channels],
                    output_elements=layer.output_elements // BLOCK**2,
                )
            elif layer.name in pairs:
                layer = sub_pixel_form(layer)
            elif layer.name in names:
                layer = block_form(layer) or layer
            if layer.name in block_norms:
                layer = replace(layer, class_name="BlockInstanceNormalization")
            if layer.name in kept_on_blocks or layer.name in writers:
                layer = replace(layer, output_shape=_on_blocks(layer.output_shape))
            if layer.name in kept_on_blocks & block_norms or layer.name in writers:
                layer = replace(layer, writes_blocks=True)
            if layer.name in readers:
                layer = replace(layer, reads_blocks=True)
            layers.append(layer)
        return replace(info, name=f"{info.name}_blocks", layers=layers, macs=0, params=0)

    def estimate(self, profile, info, params, pipeline) -> Estimate:
        config = self.Config.model_validate(params)
        chosen = self.chosen_convs(info, config, profile.conv_tiles)
        pairs = upsampled_convs(info) if config.upsampled else {}
        parts = [f"{name} on blocks ~{gain}x" for name, gain in chosen.items() if gain]
        parts += [f"{upsample}+{conv} sub-pixel" for conv, upsample in pairs.items()]
        chains = self.chains_of(info, config, set(chosen), pairs)
        parts += [f"{chain.norm} on blocks" for chain in chains]
        return Estimate(note="exact rewrite: " + ", ".join(parts))

    def apply(self, artifact: Artifact, context: RunContext, config: SpaceToDepthConfig):
        """Rewrite the chosen convs, then check the outputs against the original model's."""
        from compressor.core.model_info import model_info_from_keras

        model = artifact.keras_model
        if model is None:
            raise StageError(
                f"{self.name}: needs a Keras model (a frozen graph's convs are not rewritten)",
                "drop the fuse stage for .tflite and SavedModel inputs",
            )
        info = model_info_from_keras(model)
        names = set(self.chosen_convs(info, config, context.profile.conv_tiles))
        by_name = {layer.name: layer for layer in info.layers}
        unknown = sorted(n for n in names if n not in by_name or block_form(by_name[n]) is None)
        if unknown:
            raise StageError(
                f"{self.name}: layers.{unknown[0]} is not a stride-1 'same' Conv2D with an odd "
                "kernel on a size divisible by 2",
                "name only such convs in fuse.params.layers, or leave it empty",
            )
        pairs, dropped = _checked_upsampled(
            model, upsampled_convs(info) if config.upsampled else {}
        )
        for name in dropped:
            context.note(f"{self.name}: {name} is not fed by a nearest x2 upsample alone; kept")
        if not names and not pairs:
            context.note(f"{self.name}: no conv gains on this profile's tiles; model unchanged")
            return artifact
        chains = _checked_chains(model, self.chains_of(info, config, names, pairs))
        try:
            rewritten = rewrite_model(model, names, pairs, chains)
        except ValueError as exc:  # subclassed models cannot be cloned layer by layer
            raise StageError(f"{self.name}: cannot rebuild the model: {exc}") from exc
        error = checked_rewrite_error(
            self.name,
            model,
            rewritten,
            context,
            config.tolerance,
            "drop the fuse stage; report the model so the rewrite can be fixed",
        )
        context.model_info = model_info_from_keras(rewritten)
        context.note(
            f"{self.name}: on 2x2 blocks: {', '.join(sorted(names)) or 'none'}; sub-pixel: "
            f"{', '.join(sorted(pairs)) or 'none'}; norms on blocks: "
            f"{', '.join(chain.norm for chain in chains) or 'none'}; max abs diff {error:.1e}"
        )
        return artifact.with_keras(
            rewritten,
            space_to_depth_layers=sorted(names),
            sub_pixel_layers=sorted(pairs),
            block_norm_layers=sorted(chain.norm for chain in chains),
        )


@hookimpl
def register_strategies(registry: StrategyRegistry) -> None:
    """Register the block-conv rewrites."""
    registry.add(SpaceToDepth)


@hookimpl
def register_keras_objects(registry: KerasObjectRegistry) -> None:
    """Register the block-conv layers, so rewritten models load by name."""
    from compressor.layers.block_conv_layers import (
        BlockInstanceNormalization,
        SpaceToDepthConv2D,
        SubPixelConv2D,
    )

    for layer in (SpaceToDepthConv2D, SubPixelConv2D, BlockInstanceNormalization):
        registry.add(layer.__name__, layer)
        registry.add(f"compressor>{layer.__name__}", layer)
