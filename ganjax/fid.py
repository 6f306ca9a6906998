"""FID, KID and the Inception Score of any two image sets, on the FID Inception network (ganjax.inception).

  python -m ganjax.fid A B [--inception_weights W] [--allow_other_weights] [--num N] [--batch_size N]
                           [--kid] [--isc] [--prdc]
  python -m ganjax.fid --save_stats A OUT.npz

A and B: a folder of images (searched recursively; PNG, JPEG, BMP, WebP, GIF), a `.zip` of them, a
dataset packed by `python -m ganjax.dataset`, an `.npz` of samples (`python -m ganjax.sample --out
x.npz`: floats in [-1, 1], or uint8), or an `.npz` of statistics (`mu`, `sigma`, as pytorch-fid's
`--save-stats` writes and `--save_stats` here). Images are converted to RGB as pytorch-fid does (PIL's
`convert('RGB')`) and must share one size. The last line is `FID: <float>`, as `python -m pytorch_fid`.
`--prdc` adds precision, recall, density and coverage (Kynkaanniemi et al. 2019, Naeem et al. 2020;
k = 5 for all four, as the prdc package) on the pool features, with A as the real set and B as the
generated one.
"""

import io
import pathlib
import sys
import zipfile

import numpy as np
import scipy.linalg
import scipy.special
from absl import app, flags
from PIL import Image

from ganjax import dataset, host, inception, metrics, packed
from ganjax.errors import DataError


def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(mean, covariance) of features (N, D), in float64."""
  features = np.asarray(features, np.float64)
  return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
  """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)), as pytorch-fid computes it: an offset of `eps`
  on the diagonals when the product is singular, the real part of a numerically complex root."""
  diff = mu1 - mu2
  covmean = scipy.linalg.sqrtm(sigma1.dot(sigma2))
  if not np.isfinite(covmean).all():
    offset = np.eye(sigma1.shape[0]) * eps
    covmean = scipy.linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
  if np.iscomplexobj(covmean):
    if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
      raise ValueError(f'the square root of the covariance product is complex: {np.max(np.abs(covmean.imag))}')
    covmean = covmean.real
  return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def kernel_inception_distance(f1, f2, subsets: int = 100, subset_size: int = 1000, seed: int = 0):
  """(mean, std) over `subsets` random subsets of the unbiased MMD^2 with the kernel (x.y / d + 1)^3."""
  rng = np.random.default_rng(seed)
  size = min(subset_size, len(f1), len(f2))
  d = f1.shape[1]
  values = []
  for _ in range(subsets):
    x = f1[rng.choice(len(f1), size, replace=False)]
    y = f2[rng.choice(len(f2), size, replace=False)]
    kxx, kyy, kxy = ((a @ b.T / d + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
    off = size * (size - 1)
    values.append((kxx.sum() - np.trace(kxx)) / off + (kyy.sum() - np.trace(kyy)) / off - 2 * kxy.mean())
  return float(np.mean(values)), float(np.std(values))


def inception_score(logits: np.ndarray, splits: int = 10) -> tuple[float, float]:
  """(mean, std) over `splits` of exp(E_x KL(p(y|x) || p(y))), p(y|x) the softmax of the logits."""
  logits = np.asarray(logits, np.float64)
  log_p = logits - scipy.special.logsumexp(logits, axis=1, keepdims=True)
  scores = []
  for part in np.array_split(log_p, splits):
    log_marginal = np.log(np.exp(part).mean(axis=0))
    scores.append(np.exp(np.mean(np.sum(np.exp(part) * (part - log_marginal), axis=1))))
  return float(np.mean(scores)), float(np.std(scores))


def _decode_all(source: pathlib.Path, num: int | None) -> np.ndarray:
  names, _, _, _ = dataset.list_images(source, 'none')
  names = names[:num] if num else names
  reader = dataset.Reader(source)
  images = []
  for name in names:
    try:
      with Image.open(io.BytesIO(reader.read(name))) as image:
        image.seek(0)
        array = np.asarray(image.convert('RGB'))
    except Exception as e:  # Pillow raises many types for bad files; each becomes one line
      raise DataError(f'cannot read image {source / name}: {type(e).__name__}: {e}') from e
    if images and array.shape != images[0].shape:
      raise DataError(f'{source / name} is {array.shape}, {source / names[0]} {images[0].shape}: one size per set')
    images.append(array)
  return np.stack(images)


def load_set(path: str | pathlib.Path, num: int | None = None):
  """('stats', (mu, sigma)) or ('images', uint8 or float (N, H, W, C) in [0, 1] or 0-255)."""
  path = pathlib.Path(path)
  if not path.exists():
    raise DataError(f'{path} does not exist')
  if path.suffix == '.npz':
    try:
      with np.load(path) as data:
        arrays = {name: data[name] for name in ('mu', 'sigma', 'images') if name in data}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:  # truncated, not an .npz
      raise DataError(f'{path} is not a readable .npz: {e}') from e
    if 'mu' in arrays and 'sigma' in arrays:
      return 'stats', (arrays['mu'].astype(np.float64), arrays['sigma'].astype(np.float64))
    if 'images' not in arrays:
      raise DataError(f'{path} holds neither statistics (mu, sigma) nor samples (images)')
    images = arrays['images']
    if images.dtype != np.uint8:
      images = (np.clip(images, -1, 1) + 1) / 2  # ganjax's samples are in [-1, 1]
  elif path.is_dir() and (path / packed.META).is_file():
    images, _, _ = packed.open_packed(path)
  else:
    images = _decode_all(path, num)
  if num is not None and num > len(images):
    raise DataError(f'--num {num} is more than the {len(images)} images of {path}')
  images = images[:num] if num else images
  if images.ndim != 4 or images.shape[-1] not in (1, 3):
    raise DataError(f'{path}: images of shape {images.shape}, expected (N, H, W, 1 or 3)')
  return 'images', images


def _scores(paths, variables, num, batch_size, kid: bool, isc: bool, prdc: bool = False) -> list[str]:
  stats, features, lines = [], [], []
  for path in paths:
    kind, value = load_set(path, num)
    if kind == 'stats':
      stats.append(value)
      features.append(None)
      continue
    pool, logits = inception.extract(variables, value, batch_size, progress=sys.stderr.isatty())
    stats.append(statistics(pool))
    features.append(pool)
    if isc:
      mean, std = inception_score(logits)
      lines.append(f'IS {path}: {mean:.4f} +- {std:.4f}')
  if (kid or prdc) and any(f is None for f in features):
    raise DataError(f'--{"kid" if kid else "prdc"} needs images (or samples) on both sides, not statistics')
  if kid:
    mean, std = kernel_inception_distance(*features)
    lines.append(f'KID: {mean:.6f} +- {std:.6f}')
  if prdc:
    real, fake = (f.astype(np.float32) for f in features)
    precision, recall = metrics.precision_recall(real, fake, k=5)
    density, coverage = metrics.density_coverage(real, fake, k=5)
    lines.append(f'precision: {precision:.4f} recall: {recall:.4f} density: {density:.4f} coverage: {coverage:.4f}')
  lines.append(f'FID: {frechet_distance(*stats[0], *stats[1])}')
  return lines


def _save_stats(out: pathlib.Path, mu: np.ndarray, sigma: np.ndarray) -> pathlib.Path:
  """Writes mu and sigma to `out` under a temporary name, renamed when complete."""
  partial = out.with_name(f'.{out.name}.partial.npz')
  try:
    np.savez_compressed(partial, mu=mu, sigma=sigma)
    partial.replace(out)
  except OSError as e:
    partial.unlink(missing_ok=True)
    raise DataError(f'cannot write {out}: {e}') from e
  return out


def main(argv: list[str]) -> None:
  args = argv[1:]
  if len(args) != 2:
    sys.exit('ganjax: error: give two paths: A B (or --save_stats A OUT.npz)')
  host.prepare()  # before JAX starts its threads or compiles
  host.prefer_eigen_convolutions(inception=True)  # twice as fast as YNNPACK's (benchmarks/inception_speed.py)
  try:
    variables, _, official = inception.load_weights(_WEIGHTS.value, _ALLOW.value)
    if _SAVE.value:
      kind, value = load_set(args[0], _NUM.value)
      if kind == 'images':
        value = statistics(inception.extract(variables, value, _BATCH.value, progress=sys.stderr.isatty())[0])
      mu, sigma = value
      out = _save_stats(pathlib.Path(args[1]), mu, sigma)
      print(f'wrote the statistics of {args[0]} to {out}')
      return
    lines = _scores(args, variables, _NUM.value, _BATCH.value, _KID.value, _ISC.value, _PRDC.value)
  except DataError as e:
    sys.exit(f'ganjax: error: {" ".join(str(e).split())}')
  if not official:
    print('(other weights: --allow_other_weights; not comparable with published scores)')
  print('\n'.join(lines))


if __name__ == '__main__':
  # Flags are defined only when run as a program: ganjax.evaluate and the training loop import this module.
  _WEIGHTS = flags.DEFINE_string('inception_weights', None, f'pytorch-fid weights ({inception.WEIGHTS_NAME}).')
  _ALLOW = flags.DEFINE_bool('allow_other_weights', False, 'Use weights other than the published file.')
  _NUM = flags.DEFINE_integer('num', None, 'Use the first N images of each set (sorted names; all by default).')
  _BATCH = flags.DEFINE_integer('batch_size', 50, 'Images per Inception batch.')
  _KID = flags.DEFINE_bool('kid', False, 'Also print KID (Binkowski et al. 2018).')
  _ISC = flags.DEFINE_bool('isc', False, 'Also print the Inception Score of each image set.')
  _PRDC = flags.DEFINE_bool('prdc', False, 'Also print precision, recall, density and coverage (k = 5; A is real).')
  _SAVE = flags.DEFINE_bool('save_stats', False, 'Write the statistics of A to B (an .npz of mu and sigma).')
  app.run(main)
