"""Packed image datasets: the folder `python -m ganjax.dataset` writes and `data.source='folder'` reads.

A packed dataset is a folder of three files:

- `images.npy`: uint8 (N, H, W, C), C = 1 or 3, in NumPy's own `.npy` format;
- `labels.npy`: int32 (N,), class ids (all 0 for an unlabelled set);
- `dataset.json`: the format and its version, count, shape, label names and per-class counts, the
  SHA-256 of the content, and the arguments of the tool that packed it.

Why `.npy`: `np.load(mmap_mode='r')` maps the file without reading it, so any image is one slice
away and a batch is one fancy index into the page cache; a set larger than memory trains from disk,
and nothing is decoded per step. ArrayRecord and grain store encoded records (a decode per image per
step, and another dependency) to serve what a memory map already does for fixed-size images.
Nothing here imports JAX: the dataset tool's worker processes start fast and fork safely.
"""

import hashlib
import json
import pathlib
from typing import Any

import numpy as np

from ganjax.errors import DataError

FORMAT = 'ganjax-packed-images'
VERSION = 1
META = 'dataset.json'
IMAGES = 'images.npy'
LABELS = 'labels.npy'


def content_sha256(images: np.ndarray, labels: np.ndarray | None = None, chunk: int = 4096) -> str:
  """SHA-256 of the images' bytes (C order) then the labels' (int32 little-endian; none: images alone),
  read in chunks, so a memory-mapped set is never loaded whole."""
  digest = hashlib.sha256()
  for start in range(0, len(images), chunk):
    digest.update(np.ascontiguousarray(images[start : start + chunk]).tobytes())
  if labels is not None:
    digest.update(np.asarray(labels, '<i4').tobytes())
  return digest.hexdigest()


def write_meta(folder: pathlib.Path, meta: dict[str, Any]) -> None:
  (folder / META).write_text(json.dumps({'format': FORMAT, 'version': VERSION, **meta}, indent=2) + '\n')


def read_meta(path: str | pathlib.Path) -> dict[str, Any]:
  """The metadata of the packed dataset at `path`, checked; DataError in one line otherwise."""
  folder = pathlib.Path(path)
  if not folder.exists():
    raise DataError(f'data.path {folder} does not exist (pack images with python -m ganjax.dataset)')
  meta_file = folder / META
  if not meta_file.is_file():
    raise DataError(f'data.path {folder} is not a packed dataset: no {META} (pack it with python -m ganjax.dataset)')
  try:
    meta = json.loads(meta_file.read_text())
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
    raise DataError(f'{meta_file} is unreadable: {e}') from e
  if not isinstance(meta, dict) or meta.get('format') != FORMAT:
    raise DataError(f'{meta_file} is not the metadata of a ganjax packed dataset')
  if meta.get('version') != VERSION:
    raise DataError(
      f'{folder} was packed in format version {meta.get("version")}, this ganjax reads version {VERSION} '
      '(repack it with this version of python -m ganjax.dataset)'
    )
  return meta


def image_shape(meta: dict[str, Any]) -> tuple[int, int, int]:
  return tuple(int(s) for s in meta['shape'])


def num_classes(meta: dict[str, Any]) -> int:
  """How many classes the labels take: the label folders' count, 0 for an unlabelled set."""
  return len(meta.get('label_names') or ())


def open_packed(path: str | pathlib.Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
  """(images memory-mapped uint8 (N, H, W, C), labels int32 (N,), metadata) of a packed dataset."""
  folder = pathlib.Path(path)
  meta = read_meta(folder)
  arrays = []
  for name, dtype in ((IMAGES, np.uint8), (LABELS, np.int32)):
    file = folder / name
    try:
      array = np.load(file, mmap_mode='r')
    except (OSError, ValueError, EOFError) as e:  # missing, truncated, or not .npy
      raise DataError(f'{file} is unreadable or truncated: {e}') from e
    if array.dtype != dtype:
      raise DataError(f'{file} holds {array.dtype}, expected {np.dtype(dtype)}')
    arrays.append(array)
  images, labels = arrays
  want = (int(meta['count']), *image_shape(meta))
  if images.shape != want or labels.shape != want[:1]:
    raise DataError(f'{folder}: {IMAGES} is {images.shape} and {LABELS} {labels.shape}, but {META} says {want}')
  return images, labels, meta
