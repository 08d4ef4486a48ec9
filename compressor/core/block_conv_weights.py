"""A stride-1 convolution computed on space-to-depth blocks: exactly the same function,
different work shape.

A k×k convolution with few output channels at full resolution wastes most of a CPU's
GEMM tile: XNNPACK on AVX-512 computes output channels 16 at a time, so a 9×9 conv to
3 channels runs at a fifth of the rate of a wide one (docs/measurements.md). Rearranged
as space_to_depth(b) → a ⌈k/b⌉-ish conv from b²·Cin to b²·Cout channels at 1/b of the
resolution → depth_to_space(b), the same outputs come from a GEMM whose tile is full:
the 9×9 16→3 conv of the demo generator runs 3× faster at 256².

Output pixel (b·i + a) reads input pixels b·i + a + d for taps d ∈ [−p, p] (p = k//2).
Writing a + d = b·P + q (q ∈ [0, b)) puts tap d at block offset P and phase q of the
space-to-depth input, so the block kernel has taps P ∈ [⌊−p/b⌋, ⌊(b−1+p)/b⌋]. For
b = 2 and odd k that range is symmetric, so 'same' padding on the block grid equals the
original's zero padding (an input block is either wholly inside or wholly outside).
"""

from __future__ import annotations

import numpy as np

BLOCK = 2  # the block size the rewrites use (symmetric 'same' padding for odd kernels)


def block_kernel_size(kernel: int, block: int = BLOCK) -> int:
    """Taps of the block-grid kernel that reproduces an odd ``kernel`` × ``kernel`` conv."""
    half = kernel // 2
    low, high = (-half) // block, (block - 1 + half) // block
    if -low != high:
        raise ValueError(f"a {kernel}x{kernel} kernel has no symmetric {block}x{block} form")
    return high - low + 1


def block_weights(
    kernel: np.ndarray, bias: np.ndarray | None, block: int = BLOCK
) -> tuple[np.ndarray, np.ndarray]:
    """The block-grid kernel (K, K, b²·Cin, b²·Cout) and bias (b²·Cout) of a stride-1,
    'same', odd-sized ``kernel`` (kh, kw, Cin, Cout), in TF's space_to_depth /
    depth_to_space channel order ((row phase · b + column phase) · C + c)."""
    kh, kw, cin, cout = kernel.shape
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(f"only odd kernels have an exact block form, not {kh}x{kw}")
    size_h, size_w = block_kernel_size(kh, block), block_kernel_size(kw, block)
    out = np.zeros((size_h, size_w, block * block * cin, block * block * cout), kernel.dtype)
    for a_y in range(block):
        for a_x in range(block):
            out_slice = slice((a_y * block + a_x) * cout, (a_y * block + a_x + 1) * cout)
            for ky in range(kh):
                shift_y = a_y + ky - kh // 2
                p_y, q_y = shift_y // block, shift_y % block
                for kx in range(kw):
                    shift_x = a_x + kx - kw // 2
                    p_x, q_x = shift_x // block, shift_x % block
                    in_start = (q_y * block + q_x) * cin
                    out[
                        p_y + size_h // 2, p_x + size_w // 2, in_start : in_start + cin, out_slice
                    ] = kernel[ky, kx]
    tiled_bias = np.tile(np.zeros(cout, kernel.dtype) if bias is None else bias, block * block)
    return out, tiled_bias


def upsampled_weights(
    kernel: np.ndarray, bias: np.ndarray | None, block: int = BLOCK
) -> tuple[np.ndarray, np.ndarray]:
    """The low-resolution kernel (K, K, Cin, b²·Cout) and bias (b²·Cout) that compute
    nearest-upsample(×``block``) → stride-1 'same' odd ``kernel`` conv, as a conv on the
    input followed by depth_to_space: output pixel b·i + a reads upsampled pixel
    b·i + a + d, i.e. input pixel i + ⌊(a + d)/b⌋, so each phase a sums the taps that
    land on the same input pixel."""
    kh, kw, cin, cout = kernel.shape
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(f"only odd kernels have an exact upsampled form, not {kh}x{kw}")
    size_h, size_w = block_kernel_size(kh, block), block_kernel_size(kw, block)
    out = np.zeros((size_h, size_w, cin, block * block * cout), kernel.dtype)
    for a_y in range(block):
        for a_x in range(block):
            phase = slice((a_y * block + a_x) * cout, (a_y * block + a_x + 1) * cout)
            for ky in range(kh):
                p_y = (a_y + ky - kh // 2) // block
                for kx in range(kw):
                    p_x = (a_x + kx - kw // 2) // block
                    out[p_y + size_h // 2, p_x + size_w // 2, :, phase] += kernel[ky, kx]
    tiled_bias = np.tile(np.zeros(cout, kernel.dtype) if bias is None else bias, block * block)
    return out, tiled_bias
