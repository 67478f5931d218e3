"""In-batch parallelism on a batch of images, with each of the four targets.

The pipeline is the usual shape of image preprocessing:

1. ``load``       read each image file           threads  (I/O; np.load releases the GIL)
2. ``normalize``  scale each image to [0, 1]      nogil    (a numba @njit(nogil=True) kernel)
3. ``annotate``   ask a labelling service         async    (one coroutine per image)
4. ``describe``   compute a feature vector        mpc      (worker processes)

Every step is an action: ``post`` collects the per-image results into the batch
and returns it, so the steps chain. Run it with::

    python examples/inbatch.py
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from numba import njit

from incgraph.parallel import Batch, action, any_action_failed, inbatch_parallel


@njit(nogil=True)
def normalize_image(images: Any, index: int, low: float, high: float) -> Any:
    """Clip one image to [low, high] and scale it to [0, 1]; runs without the GIL."""
    image = images[index]
    out = np.empty(image.shape, dtype=np.float64)
    span = high - low
    for i in range(image.shape[0]):
        for j in range(image.shape[1]):
            value = min(max(float(image[i, j]), low), high)
            out[i, j] = (value - low) / span
    return out


def histogram_features(image: np.ndarray, bins: int) -> np.ndarray:
    """Return a normalized intensity histogram; runs in a worker process."""
    counts, _ = np.histogram(image, bins=bins, range=(0.0, 1.0))
    return counts / counts.sum()


async def labelling_service(mean: float) -> str:
    """Stand-in for an HTTP call to a labelling service."""
    await asyncio.sleep(0.01)
    return "bright" if mean > 0.4 else "dark"


class Images(Batch):
    """A batch of grayscale images, labelled by file name."""

    def _per_image(self, *args: Any, **kwargs: Any) -> Any:
        return self.indices

    def _image_and_position(self, *args: Any, **kwargs: Any) -> Any:
        stacked = np.stack(list(self.data))  # one 3-D array numba can type
        return [[stacked, pos] for pos in range(len(self))]

    def _images(self, *args: Any, **kwargs: Any) -> Any:
        return [[image] for image in self.data]  # a bare array entry would be unpacked

    def _collect(self, results: list[Any], *args: Any, into: str = "data", **kwargs: Any) -> Images:
        if any_action_failed(results):
            failed = {
                label: r
                for label, r in zip(self.indices, results, strict=True)
                if isinstance(r, Exception)
            }
            first = next(iter(failed.values()))
            raise RuntimeError(f"{len(failed)} images failed: {list(failed)}") from first
        if into == "data":
            self.data = results
        else:
            setattr(self, into, dict(zip(self.indices, results, strict=True)))
        return self

    @action
    @inbatch_parallel(init="_per_image", post="_collect", target="threads")
    def load(self, path: str) -> np.ndarray:
        return np.load(self.folder / path)

    @action
    @inbatch_parallel(init="_image_and_position", post="_collect", target="nogil")
    def normalize(self, low: float, high: float) -> Any:
        return normalize_image

    @action
    @inbatch_parallel(init="_images", post="_collect", target="async", into="labels")
    async def annotate(self, image: np.ndarray) -> str:
        return await labelling_service(float(image.mean()))

    @action
    @inbatch_parallel(init="_images", post="_collect", target="mpc", n_workers=2, into="features")
    def describe(self, bins: int) -> Any:
        return histogram_features


def write_images(folder: Path, count: int) -> list[str]:
    """Write ``count`` random 64x64 images as .npy files; return their file names."""
    rng = np.random.default_rng(0)
    names = []
    for i in range(count):
        name = f"img{i:03d}.npy"
        np.save(folder / name, rng.integers(0, 256, size=(64, 64), dtype=np.uint8) // (1 + i % 3))
        names.append(name)
    return names


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        names = write_images(folder, 12)
        batch = Images(names, index=names)
        batch.folder = folder
        batch.load().normalize(0.0, 255.0).annotate().describe(bins=8)
    for name in batch.indices[:4]:
        features = np.round(batch.features[name][:3], 3)
        print(f"{name}: mean={batch[name].mean():.3f} label={batch.labels[name]} hist={features}")
    print(f"{len(batch)} images processed")


if __name__ == "__main__":
    main()
