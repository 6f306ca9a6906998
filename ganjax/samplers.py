"""Batches: which images each step trains on, and how they reach the devices.

Batch `step` is a pure function of (seed, step): epoch = step // steps_per_epoch and the position
inside the epoch's permutation is step % steps_per_epoch. The last incomplete batch of each epoch is
dropped so that one compiled step serves all. (The tutorial draws random indices with replacement
each step; permutations see every image once per epoch.) Nothing else is state, so a resumed run
sees the same batches with no iterator to save. `data.random_flip` mirrors each image of a batch
left to right with probability 1/2, drawn from the same key and the step.

- `DeviceSampler`: the dataset is copied to every local device once; each step only the batch's
  indices travel.
- `HostSampler`: a dataset over `data.device_cache_mb` stays on the host (memory-mapped, for a
  packed dataset); each step's batch is gathered there, in the same order, and a background thread
  gathers and sends the next steps' batches while the current step runs.

Both give the same batches, bit for bit. `batch(step)` has shape (local devices, B / devices, ...):
this process' share of the global batch `batch_size`, consecutive slices per device, so the global
batch is the same for any device count. With `rng` a stack of K keys (a sweep), every member has
its own order and batches have shape (local devices, K, B / devices, ...). With `chunks` > 1
(several D updates per step, `train.n_critic`) each step takes `chunks` consecutive batches:
(local devices, [K,] chunks, B / devices, ...). With `labels`, every batch dict also holds 'label'
in the same layout.
"""

import concurrent.futures
import functools
import threading

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import jax_utils

from ganjax.errors import ConfigError, DataError
from ganjax.input_pipeline import Dataset, to_unit_range

_FLIP_STREAM = 0x666C6970  # 'flip': the flips' stream, apart from anything else drawn from the data key


def host_slice(indices: np.ndarray, process_index: int, process_count: int) -> np.ndarray:
  """This process' contiguous share of the global batch (the last axis of `indices`).

  On several hosts each process feeds its own local devices; together the
  processes cover the global batch once, in order.
  """
  size = indices.shape[-1]
  if size % process_count:
    raise DataError(f'global batch {size} does not divide among {process_count} processes')
  share = size // process_count
  return indices[..., process_index * share : (process_index + 1) * share]


def device_split(indices: np.ndarray, num_devices: int) -> np.ndarray:
  """(..., B) -> (devices, ..., B / devices): consecutive slices, one per local device."""
  *lead, size = indices.shape
  if size % num_devices:
    raise DataError(f'batch {size} does not divide among {num_devices} local devices')
  split = indices.reshape(*lead, num_devices, size // num_devices)
  return np.moveaxis(split, -2, 0)


def _permutation(rng: jax.Array, epoch: int, n: int) -> jax.Array:
  return jax.random.permutation(jax.random.fold_in(rng, epoch), n)


def _flip(images: jax.Array, flips: jax.Array) -> jax.Array:
  """Mirrors images (..., H, W, C) left to right where `flips` (...) is True."""
  return jnp.where(flips[..., None, None, None], jnp.flip(images, axis=-2), images)


class Order:
  """The global batch indices of each step and their flips: pure functions of (key, step)."""

  def __init__(self, num_examples: int, batch_size: int, rng: jax.Array, chunks: int = 1, flip: bool = False):
    self.num_examples, self.batch_size, self.chunks, self.flip = num_examples, batch_size, chunks, flip
    self.steps_per_epoch = num_examples // (batch_size * chunks)
    self._rng = rng
    # Per member, the key's words seed NumPy's generator for the flips.
    words = np.asarray(jax.random.key_data(rng))
    self._words = words.reshape(-1, words.shape[-1])
    self._epoch, self._perm = -1, None
    self._lock = threading.Lock()  # a prefetching thread and the loop may both ask
    self._local = jax.local_device_count()

  def position(self, step: int) -> tuple[int, int]:
    """(epoch, batch index within the epoch) of global step `step`."""
    return divmod(step, self.steps_per_epoch)

  def indices(self, step: int) -> np.ndarray:
    """Dataset indices of the global batch of `step`: ([K,] [chunks,] B) for K member keys and chunks > 1."""
    epoch, index = self.position(step)
    with self._lock:
      if epoch != self._epoch:
        permute = functools.partial(_permutation, epoch=epoch, n=self.num_examples)
        self._perm = np.asarray(jax.vmap(permute)(self._rng) if self._rng.ndim else permute(self._rng))
        self._epoch = epoch
      perm = self._perm
    per_step = self.batch_size * self.chunks
    indices = perm[..., index * per_step : (index + 1) * per_step]
    if self.chunks > 1:
      indices = indices.reshape(*indices.shape[:-1], self.chunks, self.batch_size)
    return indices

  def flips(self, step: int) -> np.ndarray:
    """Whether each image of the global batch of `step` is mirrored: bool, shaped as `indices(step)`."""
    shape = (self.chunks, self.batch_size) if self.chunks > 1 else (self.batch_size,)
    draws = [np.random.default_rng([*map(int, w), step, _FLIP_STREAM]).random(shape) < 0.5 for w in self._words]
    return np.stack(draws) if self._rng.ndim else draws[0]

  def local(self, array: np.ndarray) -> np.ndarray:
    """This process' share of a global-batch array, split over its local devices."""
    return device_split(host_slice(array, jax.process_index(), jax.process_count()), self._local)


class DeviceSampler(Order):
  """Batches of a dataset copied to every local device once (see the module's docstring)."""

  def __init__(
    self,
    images: np.ndarray,
    batch_size: int,
    rng: jax.Array,
    chunks: int = 1,
    labels: np.ndarray | None = None,
    flip: bool = False,
  ):
    super().__init__(len(images), batch_size, rng, chunks, flip)
    # The dataset is an argument, never a closed-over constant (see STYLE.md).
    self.images = jax_utils.replicate(images)
    self.labels = None if labels is None else jax_utils.replicate(labels.astype(np.int32))
    # uint8 images are scaled to [-1, 1]; float data (toy points) is used as is.
    scale = to_unit_range if images.dtype == np.uint8 else (lambda x: x)
    self._gather = jax.pmap(lambda images, idx: scale(jnp.take(images, idx, axis=0)))
    self._gather_flipped = jax.pmap(lambda images, idx, f: _flip(scale(jnp.take(images, idx, axis=0)), f))
    self._gather_labels = jax.pmap(lambda labels, idx: jnp.take(labels, idx, axis=0))

  def batch(self, step: int) -> dict[str, jax.Array]:
    """The batch for global step `step` (0-based): {'image': float32 in [-1, 1] (toy points as they are)},
    with 'label' when the sampler holds labels."""
    idx = self.local(self.indices(step))
    if self.flip:
      batch = {'image': self._gather_flipped(self.images, idx, self.local(self.flips(step)))}
    else:
      batch = {'image': self._gather(self.images, idx)}
    if self.labels is not None:
      batch['label'] = self._gather_labels(self.labels, idx)
    return batch


class HostSampler(Order):
  """Batches of a dataset left on the host, gathered and sent `ahead` steps early by one thread."""

  def __init__(
    self,
    images: np.ndarray,
    batch_size: int,
    rng: jax.Array,
    chunks: int = 1,
    labels: np.ndarray | None = None,
    flip: bool = False,
    ahead: int = 2,
  ):
    super().__init__(len(images), batch_size, rng, chunks, flip)
    self.images, self.labels, self.ahead = images, labels, ahead
    self._scale = jax.pmap(to_unit_range)
    self._scale_flipped = jax.pmap(lambda x, f: _flip(to_unit_range(x), f))
    self._send_labels = jax.pmap(lambda y: y)
    self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix='ganjax-prefetch')
    self._pending: dict[int, concurrent.futures.Future] = {}

  def _prepare(self, step: int) -> dict[str, jax.Array]:
    idx = self.local(self.indices(step))
    images = self.images[idx]  # one fancy index into the memory map: the page cache serves repeats
    if self.flip:
      batch = {'image': self._scale_flipped(images, self.local(self.flips(step)))}
    else:
      batch = {'image': self._scale(images)}
    if self.labels is not None:
      batch['label'] = self._send_labels(np.asarray(self.labels[idx], np.int32))
    return batch

  def batch(self, step: int) -> dict[str, jax.Array]:
    """The batch for global step `step`, as `DeviceSampler.batch` gives it; starts the next steps' batches."""
    future = self._pending.pop(step, None) or self._pool.submit(self._prepare, step)
    self._pending = {s: f for s, f in self._pending.items() if s > step}  # a jump (resume) leaves stale ones
    for s in range(step + 1, step + 1 + self.ahead):
      if s not in self._pending:
        self._pending[s] = self._pool.submit(self._prepare, s)
    return future.result()


def make_sampler(config: ml_collections.ConfigDict, data: Dataset, rng: jax.Array) -> Order:
  """The run's sampler: global batch `train.batch_size`, `train.n_critic` batches per step, labels for a
  cGAN; on the devices unless the images exceed `data.device_cache_mb`.

  `rng`: the data stream's key, or the members' keys stacked (a sweep).
  """
  classes = config.model.num_classes
  if classes and (data.labels is None or data.labels.min() < 0 or data.labels.max() >= classes):
    raise ConfigError(f'model.num_classes={classes} needs labels in [0, {classes}) in the data ({data.name})')
  t = config.train
  labels = data.labels if classes else None
  if data.images.nbytes > config.data.device_cache_mb * 2**20:
    return HostSampler(data.images, t.batch_size, rng, t.n_critic, labels, config.data.random_flip)
  return DeviceSampler(np.asarray(data.images), t.batch_size, rng, t.n_critic, labels, config.data.random_flip)
