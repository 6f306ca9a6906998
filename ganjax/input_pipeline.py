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
- 'stacked_mnist': three shipped digits as the R, G and B channels (`ganjax.stacked_mnist`).
- 'folder': your own images, packed by `python -m ganjax.dataset` (`ganjax.packed`) at
  `data.path`; memory-mapped, so a set larger than memory trains from disk (`ganjax.samplers`).

Images are uint8 on the host here; `ganjax.samplers` puts them on the devices (or streams them)
and scales them to [-1, 1].
"""

import dataclasses
import gzip
import hashlib
import pathlib
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from ganjax import choices, packed, toy
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
  elif d.source == 'folder':
    images, labels, _ = packed.open_packed(d.path)
    ds = Dataset(images, labels, f'packed dataset {d.path}')
  elif d.source == 'stacked_mnist':
    from ganjax import stacked_mnist  # it builds on this module

    ds = stacked_mnist.load(config)
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


def with_data_shapes(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The config with `data.image_shape` and, for `model.num_classes=-1`, the class count of a packed
  dataset (`data.source='folder'`), read from its metadata; the config itself for other sources.

  A config that names another shape or class count than the dataset's is a ConfigError naming both.
  """
  d = config.data
  if d.source != 'folder':
    return config
  if not d.path:
    raise ConfigError("data.source='folder' needs data.path, a dataset packed by python -m ganjax.dataset")
  meta = packed.read_meta(d.path)
  shape, classes = packed.image_shape(meta), packed.num_classes(meta)
  have = tuple(d.image_shape)
  if have and have != shape:
    raise ConfigError(
      f'data.image_shape={have} but {d.path} holds images of {shape}; set data.image_shape=() to take the '
      "dataset's, or repack it with python -m ganjax.dataset --resolution"
    )
  wanted = config.model.num_classes
  if wanted == -1 and not classes:
    raise ConfigError(f'model.num_classes=-1 takes the classes of {d.path}, but it was packed without labels')
  if wanted > 0 and wanted != classes:
    raise ConfigError(
      f'model.num_classes={wanted} but {d.path} has {classes} classes; set model.num_classes=-1 to take them'
    )
  config = config.copy_and_resolve_references()
  config.data.image_shape = shape
  if wanted == -1:
    config.model.num_classes = classes
  return config


def to_unit_range(images_u8: jax.Array) -> jax.Array:
  """uint8 [0, 255] -> float32 [-1, 1], the tutorial's scaling."""
  # XLA turns the division into a multiply by 1/127.5, which maps 255 to 1.0000001.
  return jnp.clip(images_u8.astype(jnp.float32) / 127.5 - 1.0, -1.0, 1.0)
