"""Pack your own images for training: a folder or a .zip of images -> a packed dataset.

  python -m ganjax.dataset --source ~/photos --dest data/photos32 --resolution 32
  python -m ganjax.main --config=images_dcgan --config.data.path=data/photos32 --workdir=runs/photos

SRC is a folder (searched recursively) or a .zip of PNG, JPEG, BMP, WebP or GIF files (a GIF's first
frame); other files are ignored and counted, as are hidden files and macOS' `__MACOSX/` folders.
With `--labels auto` the first level of subfolders are the classes, numbered in sorted name order
(their names are kept in the metadata); files outside a class folder are ignored and counted. In a
.zip whose files all sit under one top folder, the classes are that folder's subfolders.

Each image, in order: its EXIF orientation applied; transparency (an alpha channel, or a palette or
grey image with a transparent colour) composited onto white, as a viewer shows it on a page; 16-bit
grey scaled to 8 bits; converted to RGB (`--channels 3`, grey replicated) or to Pillow's 'L' luma
(`--channels 1`); centre-cropped to the output's aspect ratio and resized with Pillow's antialiasing
Lanczos filter to `--resolution` R (R x R) or HxW. Decoding runs in `--workers` processes.

DEST is written under a temporary name beside it and renamed when complete, so an interrupted or
failed pack leaves nothing at DEST (`ganjax.packed` describes the format). A bad input is one line
(`ganjax: error: ...`) and exit status 1: `--skip_bad` skips unreadable or truncated images and counts
them instead of stopping at the first.
"""

import concurrent.futures
import datetime
import io
import multiprocessing
import os
import pathlib
import re
import shutil
import sys
import zipfile
from collections.abc import Iterator

import numpy as np
from absl import app, flags
from PIL import Image, ImageOps, UnidentifiedImageError

from ganjax import packed, provenance
from ganjax.errors import DataError

EXTENSIONS = ('.bmp', '.gif', '.jpeg', '.jpg', '.png', '.webp')
MIN_SIDE = 8

_SOURCE = flags.DEFINE_string('source', None, 'A folder of images (searched recursively) or a .zip of them.')
_DEST = flags.DEFINE_string('dest', None, 'The packed dataset to write (a folder; must not exist).')
_RESOLUTION = flags.DEFINE_string('resolution', None, 'Output size: R (R x R) or HxW, each side >= 8.')
_CHANNELS = flags.DEFINE_enum('channels', '3', ['1', '3'], '3: RGB; 1: grey.')
_LABELS = flags.DEFINE_enum('labels', 'none', ['auto', 'none'], 'auto: first-level subfolders are the classes.')
_SKIP_BAD = flags.DEFINE_bool('skip_bad', False, 'Skip unreadable images (and count them) instead of stopping.')
_OVERWRITE = flags.DEFINE_bool('overwrite', False, 'Replace DEST if it exists.')
_WORKERS = flags.DEFINE_integer('workers', None, 'Decoding processes (default: the CPU cores this process may use).')


def parse_resolution(text: str) -> tuple[int, int]:
  """'32' -> (32, 32); '48x64' -> (48, 64) as (height, width); DataError for anything else or a side < 8."""
  match = re.fullmatch(r'\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?', text or '')
  if not match:
    raise DataError(f'--resolution must be a positive integer R or HxW, got {text!r}')
  height = int(match.group(1))
  width = int(match.group(2) or height)
  if min(height, width) < MIN_SIDE:
    raise DataError(f'--resolution must be at least {MIN_SIDE} on each side, got {text!r}')
  return height, width


def _flatten(image: Image.Image, channels: int) -> Image.Image:
  """Any Pillow mode -> 'RGB' or 'L': transparency onto white, 16-bit and float grey to 8 bits."""
  if image.mode in ('I', 'I;16', 'I;16B', 'I;16L', 'I;16N'):  # 16-bit grey (Pillow reads PNGs as 'I' or 'I;16')
    image = Image.fromarray(np.clip(np.asarray(image, np.float64) / 257.0 + 0.5, 0, 255).astype(np.uint8), 'L')
  elif image.mode == 'F':
    image = Image.fromarray(np.clip(np.asarray(image, np.float64) + 0.5, 0, 255).astype(np.uint8), 'L')
  if image.mode in ('RGBA', 'LA', 'PA', 'RGBa', 'La') or 'transparency' in image.info:
    rgba = image.convert('RGBA')
    image = Image.alpha_composite(Image.new('RGBA', rgba.size, (255, 255, 255, 255)), rgba)
  return image.convert('RGB' if channels == 3 else 'L')


def to_array(image: Image.Image, height: int, width: int, channels: int) -> np.ndarray:
  """One decoded image as packed: uint8 (height, width, channels), oriented, centre-cropped, resized."""
  image = ImageOps.exif_transpose(image)
  image = _flatten(image, channels)
  image = ImageOps.fit(image, (width, height), method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))
  array = np.asarray(image, np.uint8)
  return array[..., None] if array.ndim == 2 else array


class Reader:
  """Reads one listed file's bytes from the folder or the .zip (one open archive per process)."""

  def __init__(self, source: pathlib.Path):
    self.source = source
    self.archive = zipfile.ZipFile(source) if source.is_file() else None

  def read(self, name: str) -> bytes:
    if self.archive is not None:
      return self.archive.read(name)
    return (self.source / name).read_bytes()


_WORKER: dict = {}  # per decoding process: its Reader and the output size


def _start_worker(source: pathlib.Path, height: int, width: int, channels: int) -> None:
  _WORKER.update(reader=Reader(source), size=(height, width, channels))


def _decode(name: str) -> tuple[np.ndarray | None, str]:
  """(image, '') or (None, why) for one file, in a worker."""
  try:
    with Image.open(io.BytesIO(_WORKER['reader'].read(name))) as image:
      image.seek(0)  # a GIF's first frame
      image.load()  # decodes now: a truncated file fails here, not later
      return to_array(image, *_WORKER['size']), ''
  except UnidentifiedImageError:
    return None, 'not an image file Pillow can read'
  except Exception as e:  # Pillow raises many types for bad files; each becomes one line
    return None, f'{type(e).__name__}: {" ".join(str(e).split())}'


def list_images(source: pathlib.Path, labels: str) -> tuple[list[str], list[int], list[str], int]:
  """(image names relative to SRC, their labels, the label names, how many files were ignored)."""
  if not source.exists():
    raise DataError(f'--source {source} does not exist')
  if source.is_file():
    if not zipfile.is_zipfile(source):
      raise DataError(f'--source {source} is neither a folder nor a .zip archive')
    with zipfile.ZipFile(source) as archive:
      names = [i.filename for i in archive.infolist() if not i.is_dir()]
  elif source.is_dir():
    names = [p.relative_to(source).as_posix() for p in source.rglob('*') if p.is_file()]
  else:
    raise DataError(f'--source {source} is neither a folder nor a .zip archive')
  names.sort()
  hidden = {n for n in names if any(part.startswith('.') or part == '__MACOSX' for part in n.split('/'))}
  kept = [n for n in names if n not in hidden and n.lower().endswith(EXTENSIONS)]
  ignored = len(names) - len(kept)
  if not kept:
    raise DataError(
      f'no image files ({", ".join(EXTENSIONS)}) in {source}' + (f' ({ignored} other files ignored)' if ignored else '')
    )
  if labels == 'none':
    return kept, [0] * len(kept), [], ignored
  parts = [n.split('/') for n in kept]
  strip = 0
  if source.is_file() and len({p[0] for p in parts}) == 1 and all(len(p) > 2 for p in parts):
    strip = 1  # a .zip of one folder: its subfolders are the classes
  classed = [(n, p[strip]) for n, p in zip(kept, parts, strict=True) if len(p) > strip + 1]
  if not classed:
    raise DataError(f'--labels auto needs class subfolders in {source}, but it has none holding images')
  label_names = sorted({c for _, c in classed})
  index = {c: i for i, c in enumerate(label_names)}
  return [n for n, _ in classed], [index[c] for _, c in classed], label_names, ignored + len(kept) - len(classed)


def _decoded(
  source: pathlib.Path, names: list[str], size: tuple[int, int, int], workers: int
) -> Iterator[tuple[np.ndarray | None, str]]:
  """Each name's (image, why-not) in order, decoded in `workers` processes (here for 1)."""
  if workers <= 1:
    _start_worker(source, *size)
    yield from map(_decode, names)
    return
  # Fresh worker processes: forking a process that runs JAX's threads (an API call) can deadlock.
  context = multiprocessing.get_context(
    'forkserver' if 'forkserver' in multiprocessing.get_all_start_methods() else 'spawn'
  )
  with concurrent.futures.ProcessPoolExecutor(
    workers, mp_context=context, initializer=_start_worker, initargs=(source, *size)
  ) as pool:
    yield from pool.map(_decode, names, chunksize=max(1, min(256, len(names) // (8 * workers))))


def _write_arrays(
  partial: pathlib.Path,
  source: pathlib.Path,
  names: list[str],
  label_ids: list[int],
  shape: tuple[int, int, int],
  workers: int,
  skip_bad: bool,
  progress: bool,
) -> tuple[np.ndarray, list[str]]:
  """Decodes every image into `partial`'s images.npy and labels.npy; returns (labels, skipped names)."""
  from tqdm import tqdm  # a progress bar for the command line

  images = np.lib.format.open_memmap(partial / 'all.npy', 'w+', np.uint8, (len(names), *shape))
  kept, bad = [], []
  bar = tqdm(total=len(names), unit='img', desc=f'packing {source.name}', disable=not progress, file=sys.stderr)
  with bar:  # closed before an error's line is printed
    for i, (image, why) in enumerate(_decoded(source, names, shape, workers)):
      bar.update()
      if image is None:
        if not skip_bad:
          raise DataError(f'cannot read image {source / names[i]}: {why} (--skip_bad skips such files)')
        bad.append(names[i])
        continue
      images[len(kept)] = image
      kept.append(i)
  if not kept:
    raise DataError(f'no readable image in {source}: all {len(bad)} failed, e.g. {names[0]}')
  final = np.lib.format.open_memmap(partial / packed.IMAGES, 'w+', np.uint8, (len(kept), *shape))
  for start in range(0, len(kept), 4096):  # in chunks: the set may not fit in memory
    end = min(start + 4096, len(kept))
    final[start:end] = images[start:end]
  final.flush()
  del images, final
  (partial / 'all.npy').unlink()
  labels = np.asarray([label_ids[i] for i in kept], np.int32)
  np.save(partial / packed.LABELS, labels)
  return labels, bad


def pack(
  source: str | pathlib.Path,
  dest: str | pathlib.Path,
  resolution: str,
  channels: int = 3,
  labels: str = 'none',
  skip_bad: bool = False,
  overwrite: bool = False,
  workers: int | None = None,
  progress: bool = True,
) -> dict:
  """Packs SRC into DEST (see the module's docstring); returns the metadata written."""
  source, dest = pathlib.Path(source).expanduser(), pathlib.Path(dest).expanduser()
  height, width = parse_resolution(resolution)
  if dest.exists() and not overwrite:
    raise DataError(f'--dest {dest} exists; pass --overwrite to replace it')
  names, label_ids, label_names, ignored = list_images(source, labels)
  workers = workers or provenance.cpu_cores()
  dest.parent.mkdir(parents=True, exist_ok=True)
  partial = dest.with_name(f'.{dest.name}.partial-{os.getpid()}')
  shutil.rmtree(partial, ignore_errors=True)
  partial.mkdir()
  try:
    shape = (height, width, channels)
    labels_out, bad = _write_arrays(partial, source, names, label_ids, shape, workers, skip_bad, progress)
    meta = {
      'count': len(labels_out),
      'shape': list(shape),
      'label_names': label_names,
      'class_counts': np.bincount(labels_out, minlength=max(1, len(label_names))).tolist(),
      'sha256': packed.content_sha256(np.load(partial / packed.IMAGES, mmap_mode='r'), labels_out),
      'skipped': bad,
      'ignored_files': ignored,
      'source': str(source.absolute()),
      'args': {'resolution': f'{height}x{width}', 'channels': channels, 'labels': labels, 'skip_bad': skip_bad},
      'created': datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds'),
    }
    packed.write_meta(partial, meta)
    _replace(partial, dest)
  finally:
    shutil.rmtree(partial, ignore_errors=True)
  return meta


def _replace(partial: pathlib.Path, dest: pathlib.Path) -> None:
  """Moves the complete `partial` to `dest`; an old `dest` is moved aside first and removed last."""
  old = dest.with_name(f'.{dest.name}.old-{os.getpid()}')
  if dest.exists():
    dest.rename(old)
  partial.rename(dest)
  if old.is_dir():
    shutil.rmtree(old)
  elif old.exists():
    old.unlink()


def _parse_flags(argv: list[str]) -> list[str]:
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    sys.exit(f'ganjax: error: {e}')


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    sys.exit(f'ganjax: error: unexpected arguments: {argv[1:]}')
  for flag in (_SOURCE, _DEST, _RESOLUTION):
    if not flag.value:
      sys.exit(f'ganjax: error: --{flag.name} is required')
  try:
    meta = pack(
      _SOURCE.value,
      _DEST.value,
      _RESOLUTION.value,
      int(_CHANNELS.value),
      _LABELS.value,
      _SKIP_BAD.value,
      _OVERWRITE.value,
      _WORKERS.value,
    )
  except DataError as e:
    sys.exit(f'ganjax: error: {" ".join(str(e).split())}')
  except KeyboardInterrupt:
    sys.exit('ganjax: error: interrupted; nothing was written to --dest')
  h, w, c = meta['shape']
  classes = f', {len(meta["label_names"])} classes' if meta['label_names'] else ''
  print(
    f'packed {meta["count"]} images of {h}x{w}x{c}{classes} to {_DEST.value}; skipped {len(meta["skipped"])} '
    f'unreadable, ignored {meta["ignored_files"]} other files'
  )


if __name__ == '__main__':
  app.run(main, flags_parser=_parse_flags)
