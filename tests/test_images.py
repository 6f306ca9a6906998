"""Training on your own images: a packed folder, streamed or on the devices, the DCGAN and the SNGAN ResNet."""

import json

import jax
import numpy as np
import pytest
from PIL import Image

import ganjax
from ganjax import dataset, input_pipeline, packed, samplers, train
from ganjax.config import load_experiment
from ganjax.errors import ConfigError, DataError
from ganjax.validate import validate
from tests.conftest import EXPERIMENTS, run_cli
from tests.test_dataset import CLASSES, make_folder


@pytest.fixture(scope='module')
def packed32(tmp_path_factory):
  """The test's own folder of odd images (3 classes) packed at 32x32 RGB with labels."""
  root = tmp_path_factory.mktemp('packed')
  dataset.pack(make_folder(root / 'src', per_class=30), root / 'p32', '32', labels='auto', progress=False)
  return root / 'p32'


def _tiny(name: str, path, steps: int = 20):
  config = load_experiment(EXPERIMENTS / f'{name}.py')
  config.data.path = str(path)
  config.train.batch_size = 8
  config.train.num_steps = steps
  config.train.log_every_steps = 5
  config.train.sample_every_steps = steps
  config.train.num_sample_images = 9
  config.eval.every_steps = steps
  config.eval.num_samples = 16
  config.checkpoint.every_steps = 10
  if name == 'images_sngan':
    config.model.g_features, config.model.d_features = (16, 16, 16), (16, 16, 16, 16)
    config.train.n_critic = 2
  else:
    config.model.g_features, config.model.d_features = (32, 16, 8), (8, 16)
  return config


def test_host_and_device_samplers_give_the_same_batches_with_flips_sweeps_and_critics():
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (40, 6, 5, 3), dtype=np.uint8)
  labels = rng.integers(0, 3, 40).astype(np.int32)
  keys = jax.random.split(jax.random.key(3), 2)
  for key, chunks in ((jax.random.key(1), 1), (keys, 2)):
    on_device = samplers.DeviceSampler(images, 4, key, chunks, labels, flip=True)
    streamed = samplers.HostSampler(images, 4, key, chunks, labels, flip=True)
    for step in (0, 1, 7, 3, 4):  # a jump back and forth, as a resume does
      a, b = on_device.batch(step), streamed.batch(step)
      np.testing.assert_array_equal(np.asarray(a['image']), np.asarray(b['image']))
      np.testing.assert_array_equal(np.asarray(a['label']), np.asarray(b['label']))
  # Flips are a pure function of (key, step), about half of the images, left-right mirrors.
  order = samplers.Order(1000, 500, jax.random.key(1), flip=True)
  assert 200 < order.flips(0).sum() < 300 and (order.flips(0) == order.flips(0)).all()
  assert (order.flips(0) != order.flips(1)).any()
  plain = samplers.DeviceSampler(images, 4, jax.random.key(1))
  flipped = samplers.DeviceSampler(images, 4, jax.random.key(1), flip=True)
  mask = flipped.local(flipped.flips(2))[0]
  x, y = np.asarray(plain.batch(2)['image'])[0], np.asarray(flipped.batch(2)['image'])[0]
  np.testing.assert_array_equal(y[mask], x[mask][:, :, ::-1])
  np.testing.assert_array_equal(y[~mask], x[~mask])


def test_the_config_takes_shape_and_classes_from_the_packed_dataset_or_names_both(packed32, tmp_path):
  config = _tiny('images_dcgan', packed32)
  config.model.num_classes = -1
  resolved = input_pipeline.with_data_shapes(config)
  assert tuple(resolved.data.image_shape) == (32, 32, 3) and resolved.model.num_classes == len(CLASSES)
  validate(resolved)
  cases = [
    (dict(image_shape=(28, 28, 1)), r'data.image_shape=\(28, 28, 1\) but .* holds images of \(32, 32, 3\)'),
    (dict(num_classes=5), 'model.num_classes=5 but .* has 3 classes'),
    (dict(path=str(tmp_path / 'missing')), 'does not exist'),
    (dict(path=str(tmp_path)), 'is not a packed dataset'),
  ]
  for change, message in cases:
    c = _tiny('images_dcgan', packed32)
    for key, value in change.items():
      (c.model if key == 'num_classes' else c.data)[key] = value
    with pytest.raises((ConfigError, DataError), match=message):
      input_pipeline.with_data_shapes(c)
  # The ResNet at a size it cannot build, and options its D lacks.
  c = resolved.copy_and_resolve_references()
  c.model.g_arch = c.model.d_arch = 'resnet'
  c.model.g_features = c.model.d_features = ()
  c.data.image_shape = (8, 8, 3)
  with pytest.raises(ConfigError, match="'resnet' needs sides of at least 16"):
    validate(c)
  c.data.image_shape, c.model.d_minibatch_std = (32, 32, 3), True
  with pytest.raises(ConfigError, match="'resnet' does not implement model.d_minibatch_std"):
    validate(c)


def test_images_dcgan_streams_flips_and_resumes_bitwise(packed32, tmp_path):
  config = _tiny('images_dcgan', packed32)
  config.data.device_cache_mb = 0  # streamed from the host
  straight = train.train_and_evaluate(config, tmp_path / 'straight')
  # The same run stopped at 10 and resumed: copy the workdir without its last checkpoint.
  half = tmp_path / 'half'
  config10 = _tiny('images_dcgan', packed32, steps=10)
  config10.data.device_cache_mb = 0
  train.train_and_evaluate(config10, half)
  resumed = train.train_and_evaluate(config, half)
  for name in ('g_state', 'd_state'):
    for a, b in zip(jax.tree.leaves(straight[name]), jax.tree.leaves(resumed[name]), strict=True):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  grid = np.asarray(Image.open(tmp_path / 'straight' / 'samples' / 'step_000020.png'))
  assert grid.ndim == 3 and grid.shape[-1] == 3  # RGB
  run = ganjax.restore(tmp_path / 'straight')
  assert tuple(run.config.data.image_shape) == (32, 32, 3)  # saved resolved: no dataset needed to restore
  assert ganjax.sample(run, 4, seed=0).shape == (4, 32, 32, 3)
  rows = [json.loads(line) for line in (tmp_path / 'straight' / 'metrics.jsonl').read_text().splitlines()]
  assert any('eval/pixel_std' in row for row in rows)


def test_a_conditional_sngan_trains_on_the_packed_classes_through_the_cli(packed32, tmp_path):
  proc = run_cli(
    'ganjax.main',
    '--config=images_sngan',
    f'--config.data.path={packed32}',
    f'--workdir={tmp_path / "run"}',
    '--config.model.num_classes=-1',
    '--config.model.g_features=(16, 16, 16)',
    '--config.model.d_features=(16, 16, 16, 16)',
    '--config.train.n_critic=2',
    '--config.train.batch_size=8',
    '--config.train.num_steps=4',
    '--config.train.sample_every_steps=4',
    '--config.eval.every_steps=0',
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  grid = np.asarray(Image.open(tmp_path / 'run' / 'samples' / 'step_000004.png'))
  assert grid.shape[-1] == 3 and grid.shape[0] > grid.shape[1] / 4  # one row per class
  run = ganjax.restore(tmp_path / 'run')
  assert run.config.model.num_classes == 3
  assert ganjax.sample(run, 3, seed=0, labels=2).shape == (3, 32, 32, 3)
  # A config that disagrees with the data: one line naming both.
  proc = run_cli(
    'ganjax.main',
    '--config=images_sngan',
    f'--config.data.path={packed32}',
    f'--workdir={tmp_path / "bad"}',
    '--config.model.num_classes=7',
  )
  last = proc.stderr.strip().splitlines()[-1]
  assert proc.returncode == 1 and last.startswith('ganjax: error: model.num_classes=7 but') and '3 classes' in last


def test_the_resnet_trains_at_64x64(tmp_path):
  src = tmp_path / 'src'
  src.mkdir()
  rng = np.random.default_rng(0)
  for i in range(16):
    Image.fromarray(rng.integers(0, 256, (70, 80, 3), dtype=np.uint8)).save(src / f'{i}.png')
  dataset.pack(src, tmp_path / 'p64', '64', progress=False)
  config = _tiny('images_sngan', tmp_path / 'p64', steps=2)
  config.model.g_features, config.model.d_features = (8, 8, 8, 8), (8, 8, 8, 8, 8)
  config.train.n_critic = 1
  out = train.train_and_evaluate(config, tmp_path / 'run')
  assert out['step'] == 2 and np.isfinite(out['metrics']['d_loss'])
  assert packed.read_meta(tmp_path / 'p64')['shape'] == [64, 64, 3]
  assert ganjax.sample(ganjax.restore(tmp_path / 'run'), 2, seed=0).shape == (2, 64, 64, 3)
