"""How close a compressed model's outputs are to the float model's."""

from __future__ import annotations

import numpy as np


def psnr_db(reference: np.ndarray, test: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio over the whole batch, in dB (inf when identical)."""
    mse = float(np.mean((reference.astype(np.float64) - test.astype(np.float64)) ** 2))
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(data_range**2 / mse))


def ssim(reference: np.ndarray, test: np.ndarray, data_range: float = 1.0) -> float:
    """Mean SSIM over a batch of images (N, H, W, C), Gaussian window as Wang et al."""
    from skimage.metrics import structural_similarity

    scores = []
    for ref, out in zip(reference, test, strict=True):
        side = min(ref.shape[0], ref.shape[1])
        window = min(11, side if side % 2 else side - 1)
        scores.append(
            structural_similarity(
                ref,
                out,
                data_range=data_range,
                channel_axis=-1,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
                win_size=window,
            )
        )
    return float(np.mean(scores))


def _probabilities(scores: np.ndarray) -> np.ndarray:
    scores = scores.astype(np.float64)
    sums = scores.sum(axis=-1, keepdims=True)
    if np.all(scores >= 0) and np.allclose(sums, 1.0, atol=1e-3):
        return scores
    shifted = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def top1_agreement(reference: np.ndarray, test: np.ndarray) -> float:
    """Fraction of examples where both models pick the same class."""
    return float(np.mean(np.argmax(reference, -1) == np.argmax(test, -1)))


def kl_divergence(reference: np.ndarray, test: np.ndarray) -> float:
    """Mean KL(reference || test) of the class distributions (softmax applied to logits)."""
    p = np.clip(_probabilities(reference), 1e-12, 1.0)
    q = np.clip(_probabilities(test), 1e-12, 1.0)
    return float(np.mean(np.sum(p * np.log(p / q), axis=-1)))


def image_agreement(reference: np.ndarray, test: np.ndarray) -> dict[str, float]:
    """PSNR and SSIM of image outputs (N, H, W, C); the data range is [0, 1] unless the
    float outputs leave it.

    Non-finite outputs (a float16 overflow) count as maximally wrong pixels, never as NaN
    scores that would pass every threshold, and their share is reported."""
    low, high = float(reference.min()), float(reference.max())
    data_range = max(high - low, 1e-6) if (low < 0 or high > 1.0) else 1.0
    finite = np.isfinite(test)
    extra = {}
    if not finite.all():
        extra["non_finite_fraction"] = round(float(1.0 - finite.mean()), 6)
        test = np.where(finite, test, low - data_range)
    return {
        "psnr_db": round(psnr_db(reference, test, data_range), 3),
        "ssim": round(ssim(reference, test, data_range), 5),
        **extra,
    }


def class_agreement(reference: np.ndarray, test: np.ndarray) -> dict[str, float]:
    """Top-1 agreement and KL divergence of class scores (batch first, classes last). One
    score per example is a yes/no decision: above 0.5 for probabilities, above 0 for
    logits, and the KL is that of the two Bernoulli distributions."""
    reference = reference.reshape(len(reference), -1).astype(np.float64)
    test = np.nan_to_num(test.reshape(len(test), -1).astype(np.float64), nan=-np.inf)
    if reference.shape[1] == 1:
        probabilities = reference.min() >= 0 and reference.max() <= 1
        as_p = (
            (lambda v: v) if probabilities else (lambda v: 1 / (1 + np.exp(-np.clip(v, -60, 60))))
        )
        reference, test = as_p(reference), as_p(np.nan_to_num(test))
        reference = np.concatenate([1 - reference, reference], axis=1)
        test = np.concatenate([1 - test, test], axis=1)
    return {
        "top1_agreement": round(top1_agreement(reference, test), 5),
        "kl_divergence": round(kl_divergence(reference, np.nan_to_num(test)), 6),
    }


def output_match(reference: np.ndarray, test: np.ndarray) -> dict[str, float]:
    """For an output no task metric reads: ``output_match`` = 1 − RMSE / σ(reference),
    clipped to [0, 1] (1: identical; 0: off by as much as the output varies), with the
    raw errors beside it."""
    ref = reference.astype(np.float64)
    diff = np.abs(ref - np.nan_to_num(test.astype(np.float64), nan=np.inf))
    finite = np.isfinite(diff)
    rmse = float(np.sqrt(np.mean(diff**2))) if finite.all() else float("inf")
    spread = float(np.std(ref))
    match = (1.0 if rmse == 0.0 else 0.0) if spread == 0.0 else max(0.0, 1.0 - rmse / spread)
    return {
        "output_match": round(match, 5),
        "max_abs_error": float(diff.max()),
        "mean_abs_error": float(diff.mean()),
    }
