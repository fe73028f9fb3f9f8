"""Feeding images to the CNN: a dataset of files, augmentation in the workers, and a batch sampler
that splits each *global* batch across data-parallel processes.

Two choices make a run reproducible whatever the number of processes or loader workers:

- the sampler shuffles all samples once per epoch with (seed, epoch) and hands process r the
  items r, r + N, r + 2N ... of each global batch, so N processes see, together, exactly the batches
  one process sees, and DDP's gradient average equals the one-process gradient;
- augmentation draws from a generator seeded by (seed, epoch, sample index), not from a worker's
  global state, so the same sample gets the same augmentation in any worker of any process.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from image.preprocess import load_pixels, to_model_input

AUGMENTATIONS = ("none", "light", "flip")
EVAL_EPOCH = -1  # the epoch key of samples that must not be augmented
Key = tuple[int, int]  # (sample index, epoch)


def list_labelled(root: Path, classes: Sequence[str] | None = None) -> tuple[list[str], list[tuple[Path, int]]]:
    """Classes (sorted sub-folder names unless given) and (file, class index) pairs under `root`."""
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder of <label>/<image> files")
    found = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if classes is None:
        classes = found
    elif unknown := sorted(set(found) - set(classes)):
        raise ValueError(f"{root}: labels {unknown} are not among the training labels {list(classes)}")
    files = [
        (f, i)
        for i, c in enumerate(classes)
        if (root / c).is_dir()
        for f in sorted((root / c).rglob("*"))
        if f.is_file() and not f.name.startswith(".")
    ]
    return list(classes), files


def augment(x: np.ndarray, rng: np.random.Generator, mode: str) -> np.ndarray:
    """Augment one normalized (C, H, W) image. "light": a shift of up to 2 pixels and a brightness
    and contrast jitter, safe for any image; "flip": also flips and quarter turns, for images with no
    natural orientation (surfaces, not digits)."""
    if mode == "none":
        return x
    if mode not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {mode!r}; expected one of {AUGMENTATIONS}")
    dy, dx = rng.integers(-2, 3, 2)
    h, w = x.shape[1:]
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2)), mode="edge")
    x = padded[:, 2 + dy : 2 + dy + h, 2 + dx : 2 + dx + w]
    x = x * rng.uniform(0.9, 1.1) + rng.uniform(-0.1, 0.1)
    if mode == "flip":
        if rng.random() < 0.5:
            x = x[:, :, ::-1]
        x = np.rot90(x, int(rng.integers(4)), axes=(1, 2))
    return np.ascontiguousarray(x, dtype=np.float32)


class ImageFiles(Dataset[tuple[torch.Tensor, int]]):
    """Images decoded lazily, in the loader's workers; indexed by (sample index, epoch) keys."""

    def __init__(self, files: Sequence[tuple[Path, int]], size: int, channels: int,
                 augmentation: str = "none", seed: int = 0) -> None:
        if augmentation not in AUGMENTATIONS:
            raise ValueError(f"unknown augmentation {augmentation!r}; expected one of {AUGMENTATIONS}")
        self.files = list(files)
        self.size, self.channels = size, channels
        self.augmentation, self.seed = augmentation, seed

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, key: Key) -> tuple[torch.Tensor, int]:
        index, epoch = key
        path, label = self.files[index]
        x = to_model_input(load_pixels(path, self.size, self.channels))
        if epoch != EVAL_EPOCH:
            x = augment(x, np.random.default_rng((self.seed, epoch, index)), self.augmentation)
        return torch.from_numpy(x), label


class GlobalBatchSampler(Sampler[list[Key]]):
    """This process's share of each global batch of `batch_size` samples.

    Training (`shuffle`): a fresh permutation each epoch from (seed, epoch), the last incomplete
    global batch dropped so every process gets the same number of samples per step. Evaluation:
    every sample once, in order, process r taking samples r, r + N, ...
    """

    def __init__(self, n: int, batch_size: int, rank: int = 0, world: int = 1,
                 shuffle: bool = True, seed: int = 0) -> None:
        if batch_size % world:
            raise ValueError(f"global batch size {batch_size} is not a multiple of {world} processes")
        if shuffle and n < batch_size:
            raise ValueError(f"{n} training samples cannot fill one batch of {batch_size}")
        self.n, self.batch_size, self.rank, self.world = n, batch_size, rank, world
        self.shuffle, self.seed, self.epoch = shuffle, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        if self.shuffle:
            return self.n // self.batch_size
        mine = len(range(self.rank, self.n, self.world))
        return -(-mine // (self.batch_size // self.world))

    def __iter__(self) -> Iterator[list[Key]]:
        if self.shuffle:
            order = np.random.default_rng((self.seed, self.epoch)).permutation(self.n)
            for b in range(len(self)):
                batch = order[b * self.batch_size : (b + 1) * self.batch_size]
                yield [(int(i), self.epoch) for i in batch[self.rank :: self.world]]
        else:
            mine = list(range(self.rank, self.n, self.world))
            step = self.batch_size // self.world
            for b in range(0, len(mine), step):
                yield [(i, EVAL_EPOCH) for i in mine[b : b + step]]


def make_loader(dataset: ImageFiles, sampler: GlobalBatchSampler, workers: int,
                pin_memory: bool) -> DataLoader[tuple[torch.Tensor, int]]:
    """A loader that decodes and augments in `workers` processes, prefetching two batches each."""
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=workers,
        pin_memory=pin_memory,  # page-locked host memory: asynchronous copies to a GPU
        prefetch_factor=2 if workers > 0 else None,
        persistent_workers=workers > 0,  # no re-fork of workers every epoch
    )
