"""Input pipeline: images loaded once, kept on device, shuffled by seed and epoch.

Sources (`config.data.source`):
- 'shipped': the MNIST test split (10,000 digits) that ships inside the package,
  verified against its SHA-256 sums on every load. Works offline.
- 'idx': a folder holding the official MNIST idx .gz files (e.g. the 60,000-image
  training split, `train-images-idx3-ubyte.gz`), verified against the published
  MD5 sums.
- 'toy': 2-D mixtures of Gaussians (`ganjax.toy`), drawn from the seed.
- 'tfds': any prepared TFDS image dataset through `tfds.data_source` (array_record,
  no TensorFlow needed); `data.tfds_download=True` lets TFDS download it.

The whole dataset sits on device as uint8; a batch is gathered and scaled to
[-1, 1] by a jitted function, so the hot loop does no per-example Python work.
The order is a pure function of (seed, epoch): the position in the data is
derived from the step, which is what makes a resumed run see the same batches.
"""

import dataclasses
import functools
import gzip
import hashlib
import pathlib
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import jax_utils

from ganjax import choices, toy
from ganjax.errors import ConfigError, DataError

SHIPPED_DIR = pathlib.Path(__file__).parent / 'data' / 'mnist'

# MD5 sums published with the official MNIST files.
OFFICIAL_MD5 = {
  'train-images-idx3-ubyte.gz': 'f68b3c2dcbeaaa9fbdd348bbdeb94873',
  'train-labels-idx1-ubyte.gz': 'd53e105ee54ea40749a09fcbcd1e9432',
  't10k-images-idx3-ubyte.gz': '9fb629c4189551a2d022fa330f9573f3',
  't10k-labels-idx1-ubyte.gz': 'ec29112dd5afa0611ce80d1b7f02629c',
}
_SPLIT_PREFIX = {'train': 'train', 'test': 't10k'}
# The shipped digits' first half trains the evaluation classifier; the second half is its reference set.
CLASSIFIER_HALF = 5000


@dataclasses.dataclass(frozen=True)
class Dataset:
  """Images as uint8 (N, H, W, C) and integer labels (N,), on the host."""

  images: np.ndarray
  labels: np.ndarray
  name: str

  def __len__(self) -> int:
    return len(self.images)


def _digest(path: pathlib.Path, algorithm: str) -> str:
  return hashlib.new(algorithm, path.read_bytes()).hexdigest()


def _verify(path: pathlib.Path, expected: str, algorithm: str) -> None:
  if not path.is_file():
    raise DataError(f'missing data file {path}')
  actual = _digest(path, algorithm)
  if actual != expected:
    raise DataError(
      f'checksum mismatch for {path}: {algorithm} {actual}, expected {expected}; '
      'the file is corrupt or not the official one'
    )


def read_idx(path: pathlib.Path) -> np.ndarray:
  """Reads an idx file (optionally gzipped) into a numpy array."""
  opener = gzip.open if path.suffix == '.gz' else open
  try:
    with opener(path, 'rb') as f:
      data = f.read()
  except (OSError, EOFError) as e:
    raise DataError(f'cannot read idx file {path}: {e}') from e
  if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
    raise DataError(f'{path} is not an unsigned-byte idx file')
  ndim = data[3]
  shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], 'big') for i in range(ndim))
  body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
  if body.size != int(np.prod(shape)):
    raise DataError(f'{path}: header says shape {shape} but holds {body.size} bytes')
  return body.reshape(shape)


def _read_checksums(path: pathlib.Path) -> dict[str, str]:
  if not path.is_file():
    raise DataError(f'missing checksum file {path}')
  sums = {}
  for line in path.read_text().splitlines():
    if line.strip():
      digest, name = line.split()
      sums[name] = digest
  return sums


def _load_idx_pair(folder: pathlib.Path, prefix: str, sums: dict[str, str], algorithm: str, name: str) -> Dataset:
  images_file = folder / f'{prefix}-images-idx3-ubyte.gz'
  labels_file = folder / f'{prefix}-labels-idx1-ubyte.gz'
  for f in (images_file, labels_file):
    if f.name not in sums:
      raise DataError(f'no known checksum for {f}')
    _verify(f, sums[f.name], algorithm)
  images = read_idx(images_file)[..., None]
  labels = read_idx(labels_file).astype(np.int32)
  if len(images) != len(labels):
    raise DataError(f'{images_file} has {len(images)} images but {labels_file} has {len(labels)} labels')
  return Dataset(images, labels, name)


def load_shipped_mnist(folder: pathlib.Path = SHIPPED_DIR) -> Dataset:
  """The MNIST test split shipped with ganjax (10,000 images), checksum-verified."""
  return _load_idx_pair(folder, 't10k', _read_checksums(folder / 'SHA256SUMS'), 'sha256', 'mnist-test (shipped)')


def load_idx_dir(folder: str | pathlib.Path, split: str = 'train') -> Dataset:
  """Official MNIST idx .gz files from a local folder (split 'train' or 'test'), MD5-verified."""
  folder = pathlib.Path(folder)
  if split not in _SPLIT_PREFIX:
    raise DataError(f"data.split must be 'train' or 'test' for idx files, got {split!r}")
  if not folder.is_dir():
    raise DataError(f'data.dir {folder} is not a folder')
  return _load_idx_pair(folder, _SPLIT_PREFIX[split], OFFICIAL_MD5, 'md5', f'mnist-{split} ({folder})')


def load_tfds(name: str, split: str, data_dir: str | None = None, download: bool = False) -> Dataset:
  """All images of a TFDS dataset through `tfds.data_source` (array_record; no TensorFlow)."""
  import tensorflow_datasets as tfds  # Imported here: slow, and only this source needs it.

  try:
    source = tfds.data_source(name, split=split, data_dir=data_dir or None, download=download)
  except Exception as e:  # TFDS raises many types for "not prepared".
    raise DataError(
      f'TFDS dataset {name!r} split {split!r} is not available in {data_dir or "the default data_dir"}: {e}'
    ) from e
  records = [source[i] for i in range(len(source))]
  if not records:
    raise DataError(f'TFDS dataset {name!r} split {split!r} is empty')
  images = np.stack([np.asarray(r['image'], np.uint8) for r in records])
  if images.ndim == 3:
    images = images[..., None]
  labels = np.asarray([r.get('label', -1) for r in records], np.int32)
  return Dataset(images, labels, f'tfds:{name}/{split}')


# Data sources added at run time: `data.source` name -> a loader from the whole config.
SOURCES: dict[str, Callable[[ml_collections.ConfigDict], Dataset]] = {}


def register_source(name: str, load_fn: Callable[[ml_collections.ConfigDict], Dataset]) -> None:
  """Adds a data source that `data.source=name` selects in this process (docs/extending.md).

  `load_fn(config)` returns a `Dataset` of uint8 images (N, *data.image_shape) and int labels (N,).
  """
  if name in SOURCES or name in choices.SOURCES:
    raise ValueError(f'data source {name!r} exists already')
  SOURCES[name] = load_fn
  choices.add('data.source', name)


def load(config: ml_collections.ConfigDict) -> Dataset:
  """Loads the dataset named by `config.data` and checks it fits the config."""
  d = config.data
  if d.source in SOURCES:
    ds = SOURCES[d.source](config)
  elif d.source == 'shipped':
    ds = load_shipped_mnist()
    if d.clean_split:  # G never sees the evaluation's reference digits
      ds = Dataset(ds.images[:CLASSIFIER_HALF], ds.labels[:CLASSIFIER_HALF], 'mnist-test[:5000]')
  elif d.source == 'idx':
    ds = load_idx_dir(d.dir, d.split)
  elif d.source == 'toy':
    points, labels = toy.sample_data(d.toy_name, d.toy_size, seed=config.seed)
    ds = Dataset(points, labels, f'toy:{d.toy_name}')
  else:
    ds = load_tfds(d.tfds_name, d.split, d.dir, d.tfds_download)
  if d.limit:
    ds = Dataset(ds.images[: d.limit], ds.labels[: d.limit], ds.name)
  if tuple(ds.images.shape[1:]) != tuple(d.image_shape):
    raise DataError(
      f'{ds.name} has images of shape {ds.images.shape[1:]}, but data.image_shape is {tuple(d.image_shape)}'
    )
  per_step = config.train.batch_size * config.train.n_critic
  if per_step > len(ds):
    critics = f' x train.n_critic={config.train.n_critic}' if config.train.n_critic > 1 else ''
    raise DataError(
      f'train.batch_size={config.train.batch_size}{critics} is larger than the dataset ({ds.name}: {len(ds)} images)'
    )
  return ds


def to_unit_range(images_u8: jax.Array) -> jax.Array:
  """uint8 [0, 255] -> float32 [-1, 1], the tutorial's scaling."""
  # XLA turns the division into a multiply by 1/127.5, which maps 255 to 1.0000001.
  return jnp.clip(images_u8.astype(jnp.float32) / 127.5 - 1.0, -1.0, 1.0)


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


class DeviceSampler:
  """Yields batches of a device-resident dataset in a seeded per-epoch order, split across devices.

  Batch `step` is a pure function of (seed, step): epoch = step // steps_per_epoch
  and the position inside the epoch's permutation is step % steps_per_epoch.
  The last incomplete batch of each epoch is dropped so that one compiled step
  serves all. (The tutorial draws random indices with replacement each step;
  permutations see every image once per epoch.)

  The dataset is copied to every local device once; each step only the
  batch's indices travel. `batch(step)` has shape (local devices, B / devices,
  ...): this process' share of the global batch `batch_size`, consecutive
  slices per device, so the global batch is the same for any device count.
  With `rng` a stack of K keys (a sweep), every member has its own order and
  batches have shape (local devices, K, B / devices, ...). With `chunks` > 1
  (several D updates per step, `train.n_critic`) each step takes `chunks`
  consecutive batches: (local devices, [K,] chunks, B / devices, ...). With
  `labels`, every batch dict also holds 'label' in the same layout.
  """

  def __init__(
    self, images: np.ndarray, batch_size: int, rng: jax.Array, chunks: int = 1, labels: np.ndarray | None = None
  ):
    self.batch_size = batch_size
    self.chunks = chunks
    self.num_examples = len(images)
    self.steps_per_epoch = self.num_examples // (batch_size * chunks)
    self._rng = rng
    self._epoch = -1
    self._perm = None
    self._local = jax.local_device_count()
    # The dataset is an argument, never a closed-over constant (see STYLE.md).
    self.images = jax_utils.replicate(images)
    self.labels = None if labels is None else jax_utils.replicate(labels.astype(np.int32))
    # uint8 images are scaled to [-1, 1]; float data (toy points) is used as is.
    scale = to_unit_range if images.dtype == np.uint8 else (lambda x: x)
    self._gather = jax.pmap(lambda images, idx: scale(jnp.take(images, idx, axis=0)))
    self._gather_labels = jax.pmap(lambda labels, idx: jnp.take(labels, idx, axis=0))

  def position(self, step: int) -> tuple[int, int]:
    """(epoch, batch index within the epoch) of global step `step`."""
    return divmod(step, self.steps_per_epoch)

  def indices(self, step: int) -> np.ndarray:
    """Dataset indices of the global batch of `step`: ([K,] [chunks,] B) for K member keys and chunks > 1."""
    epoch, index = self.position(step)
    if epoch != self._epoch:
      permute = functools.partial(_permutation, epoch=epoch, n=self.num_examples)
      self._perm = np.asarray(jax.vmap(permute)(self._rng) if self._rng.ndim else permute(self._rng))
      self._epoch = epoch
    per_step = self.batch_size * self.chunks
    indices = self._perm[..., index * per_step : (index + 1) * per_step]
    if self.chunks > 1:
      indices = indices.reshape(*indices.shape[:-1], self.chunks, self.batch_size)
    return indices

  def batch(self, step: int) -> dict[str, jax.Array]:
    """The batch for global step `step` (0-based): {'image': float32 in [-1, 1] (toy points as they are)},
    with 'label' when the sampler holds labels."""
    local = host_slice(self.indices(step), jax.process_index(), jax.process_count())
    idx = device_split(local, self._local)
    batch = {'image': self._gather(self.images, idx)}
    if self.labels is not None:
      batch['label'] = self._gather_labels(self.labels, idx)
    return batch


def _permutation(rng: jax.Array, epoch: int, n: int) -> jax.Array:
  return jax.random.permutation(jax.random.fold_in(rng, epoch), n)


def make_sampler(config: ml_collections.ConfigDict, data: Dataset, rng: jax.Array) -> DeviceSampler:
  """The run's sampler: global batch `train.batch_size`, `train.n_critic` batches per step, labels for a cGAN.

  `rng`: the data stream's key, or the members' keys stacked (a sweep).
  """
  classes = config.model.num_classes
  if classes and (data.labels is None or data.labels.min() < 0 or data.labels.max() >= classes):
    raise ConfigError(f'model.num_classes={classes} needs labels in [0, {classes}) in the data ({data.name})')
  t = config.train
  return DeviceSampler(data.images, t.batch_size, rng, t.n_critic, data.labels if classes else None)
