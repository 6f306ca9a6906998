"""python -m ganjax.dataset: packing folders and .zip files of odd images, and every bad input in one line."""

import io
import json
import pathlib
import zipfile

import numpy as np
import pytest
from PIL import Image

from ganjax import dataset, packed
from ganjax.errors import DataError
from tests.conftest import run_cli

CLASSES = ('apple', 'bird', 'cloud')


def _image(rng: np.random.Generator, kind: int) -> Image.Image:
  """Images of every mode and an odd size: RGB, RGBA, palette with transparency, grey, 16-bit grey."""
  h, w = int(rng.integers(20, 60)), int(rng.integers(20, 60))
  pixels = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
  return [
    Image.fromarray(pixels[..., :3], 'RGB'),
    Image.fromarray(pixels, 'RGBA'),
    Image.fromarray(pixels[..., :3], 'RGB').convert('P', palette=Image.Palette.ADAPTIVE, colors=16),
    Image.fromarray(pixels[..., 0], 'L'),
    Image.fromarray(pixels[..., 0].astype(np.uint16) * 257).convert('I;16'),
  ][kind % 5]


def make_folder(root: pathlib.Path, per_class: int = 40) -> pathlib.Path:
  """Class folders of PNG, JPEG, BMP, WebP and GIF files of every mode and size, and some non-images."""
  rng = np.random.default_rng(0)
  for c, name in enumerate(CLASSES):
    folder = root / name / 'nested' if c == 2 else root / name  # searched recursively
    folder.mkdir(parents=True)
    for i in range(per_class):
      image = _image(rng, i)
      ext = ('png', 'jpg', 'bmp', 'webp', 'gif')[i % 5] if image.mode in ('RGB', 'L', 'P') else 'png'
      if ext == 'jpg' and image.mode == 'P':
        image = image.convert('RGB')
      image.save(folder / f'{i:03d}.{ext}')
  (root / 'apple' / 'notes.txt').write_text('not an image')
  (root / 'bird' / '.DS_Store').write_bytes(b'\0')
  return root


@pytest.fixture(scope='module')
def images(tmp_path_factory) -> pathlib.Path:
  return make_folder(tmp_path_factory.mktemp('images') / 'src')


def _zip(folder: pathlib.Path, out: pathlib.Path, root: str = '') -> pathlib.Path:
  with zipfile.ZipFile(out, 'w') as z:
    for path in sorted(folder.rglob('*')):
      if path.is_file():
        z.write(path, root + path.relative_to(folder).as_posix())
  return out


def test_a_folder_and_its_zip_pack_to_the_same_labelled_dataset(images, tmp_path):
  meta = dataset.pack(images, tmp_path / 'a', '32', labels='auto', progress=False)
  zipped = _zip(images, tmp_path / 'src.zip', root='photos/')  # one top folder, as `zip -r` makes
  meta_zip = dataset.pack(zipped, tmp_path / 'b', '32', labels='auto', progress=False)
  assert meta['sha256'] == meta_zip['sha256'] and meta['count'] == meta_zip['count'] == 120
  assert meta['label_names'] == list(CLASSES) and meta['class_counts'] == [40, 40, 40]
  assert meta['ignored_files'] == 2 and meta['skipped'] == []  # notes.txt and .DS_Store
  imgs, labels, read = packed.open_packed(tmp_path / 'a')
  assert imgs.shape == (120, 32, 32, 3) and imgs.dtype == np.uint8 and read['shape'] == [32, 32, 3]
  assert np.bincount(labels).tolist() == [40, 40, 40]
  assert packed.content_sha256(imgs, labels) == meta['sha256']
  assert read['args'] == {'resolution': '32x32', 'channels': 3, 'labels': 'auto', 'skip_bad': False}
  # Unlabelled, grey, non-square, in one process: the same files, other shapes.
  grey = dataset.pack(images, tmp_path / 'c', '16x24', channels=1, workers=1, progress=False)
  assert grey['shape'] == [16, 24, 1] and grey['label_names'] == [] and grey['class_counts'] == [120]
  assert not list(tmp_path.glob('.*partial*'))


def test_each_image_is_oriented_flattened_onto_white_cropped_and_resized():
  # Transparent pixels become white; an opaque red stays red.
  rgba = np.zeros((10, 10, 4), np.uint8)
  rgba[:, :5] = (255, 0, 0, 255)
  out = dataset.to_array(Image.fromarray(rgba, 'RGBA'), 10, 10, 3)
  assert out[0, 0].tolist() == [255, 0, 0] and out[0, 9].tolist() == [255, 255, 255]
  # A palette image with a transparent index, and grey replicated to RGB.
  pal = Image.fromarray(np.zeros((8, 8), np.uint8), 'L').convert('P')
  pal.info['transparency'] = 0
  assert dataset.to_array(pal, 8, 8, 3).min() == 255
  assert dataset.to_array(Image.new('L', (8, 8), 77), 8, 8, 3).reshape(-1, 3).tolist() == [[77, 77, 77]] * 64
  # 16-bit grey is scaled, not clipped.
  sixteen = Image.fromarray(np.full((8, 8), 65535, np.uint16)).convert('I;16')
  assert dataset.to_array(sixteen, 8, 8, 1).min() == 255
  # EXIF orientation 6 (rotate 90 degrees clockwise to view): a wide photo is stored as a tall one.
  tall = np.zeros((40, 20, 3), np.uint8)
  tall[:, :10] = 255  # the stored left half is white
  buffer = io.BytesIO()
  exif = Image.Exif()
  exif[0x0112] = 6
  Image.fromarray(tall).save(buffer, 'JPEG', exif=exif, quality=95)
  shown = dataset.to_array(Image.open(buffer), 20, 40, 3)
  assert shown.shape == (20, 40, 3) and shown[:8].mean() > 200 and shown[-8:].mean() < 50
  # Centre crop: a 30x10 strip keeps its middle 10x10.
  strip = np.zeros((10, 30), np.uint8)
  strip[:, 10:20] = 200
  assert dataset.to_array(Image.fromarray(strip, 'L'), 10, 10, 1).min() > 190


def _cli(*args):
  proc = run_cli('ganjax.dataset', *map(str, args))
  lines = proc.stderr.strip().splitlines()
  return proc, lines[-1] if lines else ''


def test_every_bad_input_is_one_line_and_leaves_nothing_at_dest(images, tmp_path):
  dest = tmp_path / 'out'
  (tmp_path / 'empty').mkdir()
  (tmp_path / 'empty' / 'a.txt').write_text('x')
  flat = tmp_path / 'flat'
  flat.mkdir()
  Image.new('RGB', (9, 9)).save(flat / 'a.png')
  cases = [
    (['--source', tmp_path / 'missing', '--resolution', 32], 'does not exist'),
    (['--source', tmp_path / 'empty', '--resolution', 32], 'no image files (.bmp, .gif, .jpeg, .jpg, .png, .webp)'),
    (['--source', images, '--resolution', 'big'], 'must be a positive integer R or HxW'),
    (['--source', images, '--resolution', 4], 'at least 8 on each side'),
    (['--source', images, '--resolution', '0x32'], 'at least 8 on each side'),
    (['--source', flat, '--resolution', 32, '--labels', 'auto'], '--labels auto needs class subfolders'),
  ]
  for args, message in cases:
    proc, last = _cli(*args, '--dest', dest)
    assert proc.returncode == 1 and message in last and last.startswith('ganjax: error:'), proc.stderr
    assert 'Traceback' not in proc.stderr and not dest.exists()
  # DEST exists: refused without --overwrite, replaced with it.
  dest.mkdir()
  proc, last = _cli('--source', flat, '--resolution', 8, '--dest', dest)
  assert proc.returncode == 1 and 'pass --overwrite' in last
  proc, _ = _cli('--source', flat, '--resolution', 8, '--dest', dest, '--overwrite')
  assert proc.returncode == 0 and packed.read_meta(dest)['count'] == 1, proc.stderr
  assert not list(tmp_path.glob('.out.*'))


def test_a_truncated_image_is_named_or_skipped_and_counted(images, tmp_path):
  src = tmp_path / 'src'
  src.mkdir()
  for i in range(3):
    Image.new('RGB', (12, 12), (i * 80, 0, 0)).save(src / f'{i}.png')
  good = (src / '1.png').read_bytes()
  (src / '1.png').write_bytes(good[: len(good) // 2])  # cut mid-file
  (src / 'fake.jpg').write_bytes(b'not a jpeg at all')
  dest = tmp_path / 'out'
  proc, last = _cli('--source', src, '--resolution', 8, '--dest', dest)
  assert proc.returncode == 1 and 'cannot read image' in last and '1.png' in last and '--skip_bad' in last
  assert not dest.exists() and not list(tmp_path.glob('.out.partial*'))
  proc, _ = _cli('--source', src, '--resolution', 8, '--dest', dest, '--skip_bad')
  out = proc.stdout.strip().splitlines()[-1]
  assert proc.returncode == 0 and out.startswith('packed 2 images of 8x8x3') and 'skipped 2 unreadable' in out
  assert sorted(packed.read_meta(dest)['skipped']) == ['1.png', 'fake.jpg']


def test_the_reader_refuses_what_is_not_a_packed_dataset_of_this_version(tmp_path):
  with pytest.raises(DataError, match='does not exist'):
    packed.read_meta(tmp_path / 'nope')
  with pytest.raises(DataError, match='is not a packed dataset'):
    packed.read_meta(tmp_path)
  src = tmp_path / 'src'
  src.mkdir()
  Image.new('RGB', (9, 9)).save(src / 'a.png')
  dataset.pack(src, tmp_path / 'p', '8', progress=False)
  meta_file = tmp_path / 'p' / packed.META
  meta = json.loads(meta_file.read_text())
  meta_file.write_text(json.dumps({**meta, 'version': packed.VERSION + 1}))
  with pytest.raises(DataError, match=f'format version {packed.VERSION + 1}'):
    packed.read_meta(tmp_path / 'p')
  meta_file.write_text(json.dumps(meta))
  images_file = tmp_path / 'p' / packed.IMAGES
  images_file.write_bytes(images_file.read_bytes()[:-10])  # truncated
  with pytest.raises(DataError, match='images.npy is unreadable or truncated'):
    packed.open_packed(tmp_path / 'p')
