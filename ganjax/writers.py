"""What a run leaves in its workdir: metrics.jsonl, TensorBoard events, PNG grids.

TensorBoard files are written with tensorboardX, which needs no TensorFlow.
"""

import json
import math
import pathlib
from collections.abc import Mapping

import numpy as np
from PIL import Image
from tensorboardX import SummaryWriter

from ganjax import toy


def image_grid(images: np.ndarray, pad: int = 2, cols: int | None = None) -> np.ndarray:
  """Tiles images (N, H, W, C) in [-1, 1] into one uint8 image, `cols` wide or as square as possible."""
  n, h, w, c = images.shape
  cols = cols or math.ceil(math.sqrt(n))
  rows = math.ceil(n / cols)
  grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), 255, np.uint8)
  pixels = np.clip(np.rint((np.asarray(images) + 1.0) * 127.5), 0, 255).astype(np.uint8)
  for i in range(n):
    r, col = divmod(i, cols)
    y, x = pad + r * (h + pad), pad + col * (w + pad)
    grid[y : y + h, x : x + w] = pixels[i]
  return grid


def save_png(grid: np.ndarray, path: pathlib.Path) -> None:
  """Writes a uint8 (H, W, C) image; grayscale when C == 1. Written atomically."""
  path.parent.mkdir(parents=True, exist_ok=True)
  image = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
  tmp = path.with_suffix('.tmp.png')
  image.save(tmp)
  tmp.replace(path)


def write_text(path: pathlib.Path, text: str) -> None:
  """Writes a text file atomically: a crash leaves the old file or the new one, never half of one."""
  tmp = path.with_name(f'.{path.name}.tmp')
  tmp.write_text(text)
  tmp.replace(path)


class RunWriter:
  """Appends metrics to `metrics.jsonl` and TensorBoard; draws samples as PNG (image grids, or toy scatters)."""

  def __init__(self, workdir: pathlib.Path, start_step: int = 0, toy_name: str = ''):
    """Opens the run's logs; on a resume from `start_step`, records after it are dropped.

    `toy_name`: samples are 2-D points of that toy mixture, drawn as a scatter plot over its modes.
    """
    self.workdir, self.toy_name = workdir, toy_name
    path = workdir / 'metrics.jsonl'
    # Steps after the checkpoint are trained again; keep one record per step.
    kept = (
      []
      if not start_step or not path.exists()
      else [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)['step'] <= start_step]
    )
    path.write_text(''.join(line + '\n' for line in kept))
    self._jsonl = open(path, 'a')  # noqa: SIM115 (closed in close())
    self._tb = SummaryWriter(str(workdir / 'tensorboard'), purge_step=start_step or None)

  def scalars(self, step: int, metrics: Mapping[str, float]) -> None:
    record = {'step': step, **{k: float(v) for k, v in metrics.items()}}
    self._jsonl.write(json.dumps(record) + '\n')
    self._jsonl.flush()  # a crash loses at most the line being written
    for key, value in record.items():
      if key != 'step':
        self._tb.add_scalar(key, value, step)

  def samples(self, step: int, images: np.ndarray, cols: int | None = None, title: str = '') -> pathlib.Path:
    """Writes samples/step_N.png: a grid `cols` wide, or for toy points a scatter titled `title`."""
    path = self.workdir / 'samples' / f'step_{step:06d}.png'
    if self.toy_name:
      return toy.scatter_png(images, self.toy_name, path, f'{title}step {step}')
    grid = image_grid(images, cols=cols)
    save_png(grid, path)
    self._tb.add_image('samples', grid, step, dataformats='HWC')
    return path

  def close(self) -> None:
    self._jsonl.close()
    self._tb.close()


class NullWriter:
  """A RunWriter that writes nothing: for processes other than the first on several hosts."""

  def scalars(self, step: int, metrics: Mapping[str, float]) -> None:
    pass

  def samples(self, step: int, images: np.ndarray, cols: int | None = None, title: str = '') -> None:
    pass

  def close(self) -> None:
    pass


_PANELS = (
  ('losses', ('d_loss', 'g_loss')),
  ('D accuracy', ('d_acc', 'd_acc_real', 'd_acc_fake')),
  ('D(x) probability', ('d_real_prob', 'd_fake_prob')),
  ('sample quality', ('eval/precision', 'eval/recall', 'eval/coverage', 'eval/high_quality')),
  ('classes / modes covered', ('eval/classes_covered', 'eval/modes_covered')),
  ('gradient norms', ('d_grad_norm', 'g_grad_norm')),
)


def plot_metrics(workdir: pathlib.Path) -> pathlib.Path | None:
  """Draws the run's metrics.jsonl against steps into `metrics.png`; returns its path."""
  # A bare Figure draws to files without pyplot, so a notebook's display backend is left alone.
  from matplotlib.figure import Figure

  path = workdir / 'metrics.jsonl'
  if not path.exists():
    return None
  records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
  fig = Figure(figsize=(13, 7))
  axes = fig.subplots(2, 3)
  for ax, (title, keys) in zip(axes.ravel(), _PANELS, strict=True):
    for key in keys:
      points = [(r['step'], r[key]) for r in records if key in r]
      if points:
        ax.plot(*zip(*points, strict=True), label=key, marker='.' if len(points) < 30 else None)
    ax.set_title(title)
    ax.set_xlabel('step')
    if ax.lines:
      ax.legend(fontsize=8)
  fig.tight_layout()
  out = workdir / 'metrics.png'
  fig.savefig(out, dpi=90)
  return out
