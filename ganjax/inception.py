"""The FID Inception-v3 in Flax: pytorch-fid's `InceptionV3(use_fid_inception=True)`, layer for layer.

That network is torchvision's Inception3 with 1008 classes and no auxiliary head, ported from the TF
graph `inception-2015-12-05` (Heusel et al. 2017), with these blocks changed to match TF:
- Mixed_5b-d (A), Mixed_6b-e (C), Mixed_7b (E_1): their 3x3 average pools (stride 1, padding 1)
  do not count the padding;
- Mixed_7c (E_2): its pool branch takes a 3x3 max pool instead.
Input: RGB in [0, 1], resized to 299x299 bilinearly with half-pixel centres and no antialiasing
(torch's `F.interpolate(align_corners=False)`), then scaled to [-1, 1]. Output: the 2048-d pool
features (FID, KID, precision/recall) and the 1008 logits of the final layer (Inception Score).

Weights: pytorch-fid's `pt_inception-2015-12-05-6726825d.pth`, read without PyTorch
(`ganjax.torch_pickle`), its SHA-256 checked, converted once and cached as `.npz`.
"""

import functools
import hashlib
import os
import pathlib
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from ganjax import host, torch_pickle
from ganjax.errors import DataError

WEIGHTS_NAME = 'pt_inception-2015-12-05-6726825d.pth'
WEIGHTS_URL = f'https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{WEIGHTS_NAME}'
# The published file's SHA-256 (its name carries the first 8 hex digits, torch hub's convention).
WEIGHTS_SHA256 = '6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2'
WEIGHTS_ENV = 'GANJAX_INCEPTION_WEIGHTS'
SIZE = 299


class BasicConv(nn.Module):
  """torchvision's BasicConv2d: convolution without bias, BatchNorm (eps 1e-3, running statistics), ReLU."""

  features: int
  kernel: tuple[int, int]
  strides: int = 1
  padding: tuple[int, int] = (0, 0)

  @nn.compact
  def __call__(self, x):
    pad = [(p, p) for p in self.padding]
    x = nn.Conv(self.features, self.kernel, self.strides, pad, use_bias=False, name='conv')(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name='bn')(x)
    return nn.relu(x)


def _avg_pool(x):
  return nn.avg_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)), count_include_pad=False)


def _max_pool(x, strides=2, padding=0):
  return nn.max_pool(x, (3, 3), (strides, strides), ((padding, padding), (padding, padding)))


class BlockA(nn.Module):  # FIDInceptionA
  pool_features: int

  @nn.compact
  def __call__(self, x):
    b1 = BasicConv(64, (1, 1), name='branch1x1')(x)
    b5 = BasicConv(48, (1, 1), name='branch5x5_1')(x)
    b5 = BasicConv(64, (5, 5), padding=(2, 2), name='branch5x5_2')(b5)
    b3 = BasicConv(64, (1, 1), name='branch3x3dbl_1')(x)
    b3 = BasicConv(96, (3, 3), padding=(1, 1), name='branch3x3dbl_2')(b3)
    b3 = BasicConv(96, (3, 3), padding=(1, 1), name='branch3x3dbl_3')(b3)
    pool = BasicConv(self.pool_features, (1, 1), name='branch_pool')(_avg_pool(x))
    return jnp.concatenate([b1, b5, b3, pool], axis=-1)


class BlockB(nn.Module):  # InceptionB (Mixed_6a)
  @nn.compact
  def __call__(self, x):
    b3 = BasicConv(384, (3, 3), strides=2, name='branch3x3')(x)
    bd = BasicConv(64, (1, 1), name='branch3x3dbl_1')(x)
    bd = BasicConv(96, (3, 3), padding=(1, 1), name='branch3x3dbl_2')(bd)
    bd = BasicConv(96, (3, 3), strides=2, name='branch3x3dbl_3')(bd)
    return jnp.concatenate([b3, bd, _max_pool(x)], axis=-1)


class BlockC(nn.Module):  # FIDInceptionC
  channels_7x7: int

  @nn.compact
  def __call__(self, x):
    c = self.channels_7x7
    b1 = BasicConv(192, (1, 1), name='branch1x1')(x)
    b7 = BasicConv(c, (1, 1), name='branch7x7_1')(x)
    b7 = BasicConv(c, (1, 7), padding=(0, 3), name='branch7x7_2')(b7)
    b7 = BasicConv(192, (7, 1), padding=(3, 0), name='branch7x7_3')(b7)
    bd = BasicConv(c, (1, 1), name='branch7x7dbl_1')(x)
    bd = BasicConv(c, (7, 1), padding=(3, 0), name='branch7x7dbl_2')(bd)
    bd = BasicConv(c, (1, 7), padding=(0, 3), name='branch7x7dbl_3')(bd)
    bd = BasicConv(c, (7, 1), padding=(3, 0), name='branch7x7dbl_4')(bd)
    bd = BasicConv(192, (1, 7), padding=(0, 3), name='branch7x7dbl_5')(bd)
    pool = BasicConv(192, (1, 1), name='branch_pool')(_avg_pool(x))
    return jnp.concatenate([b1, b7, bd, pool], axis=-1)


class BlockD(nn.Module):  # InceptionD (Mixed_7a)
  @nn.compact
  def __call__(self, x):
    b3 = BasicConv(192, (1, 1), name='branch3x3_1')(x)
    b3 = BasicConv(320, (3, 3), strides=2, name='branch3x3_2')(b3)
    b7 = BasicConv(192, (1, 1), name='branch7x7x3_1')(x)
    b7 = BasicConv(192, (1, 7), padding=(0, 3), name='branch7x7x3_2')(b7)
    b7 = BasicConv(192, (7, 1), padding=(3, 0), name='branch7x7x3_3')(b7)
    b7 = BasicConv(192, (3, 3), strides=2, name='branch7x7x3_4')(b7)
    return jnp.concatenate([b3, b7, _max_pool(x)], axis=-1)


class BlockE(nn.Module):  # FIDInceptionE_1 (average pool) and FIDInceptionE_2 (`max_pool`)
  max_pool: bool = False

  @nn.compact
  def __call__(self, x):
    b1 = BasicConv(320, (1, 1), name='branch1x1')(x)
    b3 = BasicConv(384, (1, 1), name='branch3x3_1')(x)
    b3 = [
      BasicConv(384, (1, 3), padding=(0, 1), name='branch3x3_2a')(b3),
      BasicConv(384, (3, 1), padding=(1, 0), name='branch3x3_2b')(b3),
    ]
    bd = BasicConv(448, (1, 1), name='branch3x3dbl_1')(x)
    bd = BasicConv(384, (3, 3), padding=(1, 1), name='branch3x3dbl_2')(bd)
    bd = [
      BasicConv(384, (1, 3), padding=(0, 1), name='branch3x3dbl_3a')(bd),
      BasicConv(384, (3, 1), padding=(1, 0), name='branch3x3dbl_3b')(bd),
    ]
    pooled = _max_pool(x, strides=1, padding=1) if self.max_pool else _avg_pool(x)
    pool = BasicConv(192, (1, 1), name='branch_pool')(pooled)
    return jnp.concatenate([b1, *b3, *bd, pool], axis=-1)


def resize(images: jax.Array, size: int = SIZE) -> jax.Array:
  """Bilinear resize of (B, H, W, C) to size x size, as torch's `F.interpolate(mode='bilinear',
  align_corners=False)`: half-pixel centres, edge pixels repeated, no antialiasing when shrinking."""
  shape = (images.shape[0], size, size, images.shape[-1])
  return jax.image.resize(images, shape, 'bilinear', antialias=False)


class FIDInception(nn.Module):
  """Images (B, H, W, 1 or 3) in [0, 1] -> (pool features (B, 2048), logits (B, 1008))."""

  @nn.compact
  def __call__(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    if images.shape[-1] == 1:  # as PIL's convert('RGB') of a grey image
      images = jnp.repeat(images, 3, axis=-1)
    x = 2 * resize(images.astype(jnp.float32)) - 1
    x = BasicConv(32, (3, 3), strides=2, name='Conv2d_1a_3x3')(x)
    x = BasicConv(32, (3, 3), name='Conv2d_2a_3x3')(x)
    x = _max_pool(BasicConv(64, (3, 3), padding=(1, 1), name='Conv2d_2b_3x3')(x))
    x = BasicConv(80, (1, 1), name='Conv2d_3b_1x1')(x)
    x = _max_pool(BasicConv(192, (3, 3), name='Conv2d_4a_3x3')(x))
    for name, pool in (('Mixed_5b', 32), ('Mixed_5c', 64), ('Mixed_5d', 64)):
      x = BlockA(pool, name=name)(x)
    x = BlockB(name='Mixed_6a')(x)
    for name, c in (('Mixed_6b', 128), ('Mixed_6c', 160), ('Mixed_6d', 160), ('Mixed_6e', 192)):
      x = BlockC(c, name=name)(x)
    x = BlockD(name='Mixed_7a')(x)
    x = BlockE(name='Mixed_7b')(x)
    x = BlockE(max_pool=True, name='Mixed_7c')(x)
    pool = jnp.mean(x, axis=(1, 2))
    return pool, nn.Dense(1008, name='fc')(pool)


def find_weights(path: str | os.PathLike | None = None) -> pathlib.Path:
  """The weights file: `path` (`eval.inception_weights`, `--inception_weights`), else $GANJAX_INCEPTION_WEIGHTS."""
  path = path or os.environ.get(WEIGHTS_ENV)
  where = f'download {WEIGHTS_URL} and pass --inception_weights=FILE, set eval.inception_weights or {WEIGHTS_ENV}'
  if not path:
    raise DataError(f'the Inception metrics need the FID Inception weights: {where}')
  file = pathlib.Path(path).expanduser()
  if not file.is_file():
    raise DataError(f'the Inception weights {file} do not exist: {where}')
  return file


def sha256_of(path: pathlib.Path) -> str:
  with open(path, 'rb') as f:
    return hashlib.file_digest(f, 'sha256').hexdigest()


_BN = {'weight': ('params', 'scale'), 'bias': ('params', 'bias'), 'running_mean': ('batch_stats', 'mean')}
_BN['running_var'] = ('batch_stats', 'var')


def to_flax(state: dict[str, np.ndarray], source: str = 'the weights') -> dict:
  """pytorch-fid's state dict as FIDInception's variables ({'params', 'batch_stats'}), checked against
  the network's shapes; DataError naming the first key that is missing, unknown or of another shape."""
  variables: dict = {'params': {}, 'batch_stats': {}}
  for key, value in state.items():
    *path, leaf = key.split('.')
    if leaf == 'num_batches_tracked':
      continue
    if path and path[-1] == 'conv' and leaf == 'weight':
      collection, name, value = 'params', 'kernel', value.transpose(2, 3, 1, 0)  # OIHW -> HWIO
    elif path and path[-1] == 'bn' and leaf in _BN:
      collection, name = _BN[leaf]
    elif path == ['fc'] and leaf in ('weight', 'bias'):
      collection, name, value = 'params', 'kernel' if leaf == 'weight' else 'bias', value.T
    else:
      raise DataError(f'{source}: unexpected entry {key!r}: not the FID Inception network')
    node = variables[collection]
    for part in path:
      node = node.setdefault(part, {})
    node[name] = np.asarray(value, np.float32)
  want = jax.eval_shape(FIDInception().init, jax.random.key(0), jnp.zeros((1, SIZE, SIZE, 3)))
  want = {name: tuple(x.shape) for name, x in traverse_util.flatten_dict(want, sep='/').items()}
  got = {name: x.shape for name, x in traverse_util.flatten_dict(variables, sep='/').items()}
  for name in sorted(want.keys() - got.keys())[:1]:
    raise DataError(f'{source}: no weights for {name}: not the FID Inception network')
  for name, shape in got.items():
    if want.get(name) != shape:
      raise DataError(f'{source}: {name} is {shape}, the network wants {want.get(name)}')
  return variables


def cache_dir(environ=os.environ) -> pathlib.Path:
  return host.cache_root(environ) / 'inception'


def load_weights(path: str | os.PathLike | None = None, allow_other: bool = False) -> tuple[dict, str, bool]:
  """(variables, the file's SHA-256, whether it is the published file). Another file is a DataError unless
  `allow_other`. Converted once: the variables are cached as .npz under `cache_dir()`, keyed by SHA-256."""
  file = find_weights(path)
  sha = sha256_of(file)
  official = sha == WEIGHTS_SHA256
  if not official and not allow_other:
    raise DataError(
      f"{file} is not pytorch-fid's {WEIGHTS_NAME} (SHA-256 {sha[:12]}..., expected {WEIGHTS_SHA256[:12]}...): "
      'scores from other weights are not comparable with published ones; --allow_other_weights uses it anyway'
    )
  cached = cache_dir() / f'inception-{sha}.npz'
  if cached.is_file():
    try:
      with np.load(cached) as flat:
        return traverse_util.unflatten_dict(dict(flat), sep='/'), sha, official
    except (OSError, ValueError, KeyError):
      pass  # a damaged cache entry: convert again
  variables = to_flax(torch_pickle.load_state_dict(file), str(file))
  try:
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_name(f'.{cached.name}.partial-{os.getpid()}.npz')
    np.savez(partial, **traverse_util.flatten_dict(variables, sep='/'))
    partial.replace(cached)
  except OSError:
    pass  # an unwritable cache: converted again next time
  return variables, sha, official


@functools.cache
def _apply() -> Callable:
  return jax.jit(FIDInception().apply)


def extract(variables: dict, images: Sequence | np.ndarray, batch_size: int = 100, progress: bool = False):
  """(pool features (N, 2048), logits (N, 1008)) as float64 NumPy arrays, of N images (N, H, W, C) given as
  uint8 (0-255) or floats in [0, 1]; any indexable array (a memory map too), read `batch_size` at a time.
  The last batch is padded to `batch_size`, so one program serves every batch."""
  from tqdm import tqdm

  num = len(images)
  pools, logits = [], []
  for start in tqdm(range(0, num, batch_size), unit='batch', disable=not progress, desc='Inception features'):
    batch = np.asarray(images[start : start + batch_size])
    batch = batch.astype(np.float32) / 255.0 if batch.dtype == np.uint8 else batch.astype(np.float32)
    rows = len(batch)
    if rows < batch_size:
      batch = np.concatenate([batch, np.zeros((batch_size - rows, *batch.shape[1:]), np.float32)])
    pool, logit = _apply()(variables, batch)
    pools.append(np.asarray(pool, np.float64)[:rows])
    logits.append(np.asarray(logit, np.float64)[:rows])
  return np.concatenate(pools), np.concatenate(logits)
