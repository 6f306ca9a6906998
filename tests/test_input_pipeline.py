import gzip
import shutil

import jax
import numpy as np
import pytest

from ganjax import input_pipeline, samplers
from ganjax.errors import DataError


def test_shipped_mnist_loads_verified():
  ds = input_pipeline.load_shipped_mnist()
  assert ds.images.shape == (10_000, 28, 28, 1) and ds.images.dtype == np.uint8
  assert ds.labels.shape == (10_000,)
  assert set(np.unique(ds.labels)) == set(range(10))
  assert ds.images.max() == 255 and ds.images.min() == 0


def _copy_shipped(tmp_path):
  folder = tmp_path / 'mnist'
  shutil.copytree(input_pipeline.SHIPPED_DIR, folder)
  for f in folder.iterdir():
    f.chmod(0o644)
  return folder


def test_checksum_mismatch_is_reported(tmp_path):
  folder = _copy_shipped(tmp_path)
  path = folder / 't10k-images-idx3-ubyte.gz'
  data = bytearray(path.read_bytes())
  data[100] ^= 0xFF
  path.write_bytes(bytes(data))
  with pytest.raises(DataError, match='checksum mismatch for .*t10k-images'):
    input_pipeline.load_shipped_mnist(folder)


def test_missing_file_is_reported(tmp_path):
  folder = _copy_shipped(tmp_path)
  (folder / 't10k-labels-idx1-ubyte.gz').unlink()
  with pytest.raises(DataError, match='missing data file .*t10k-labels'):
    input_pipeline.load_shipped_mnist(folder)


def test_idx_dir_reads_official_files_and_checks_md5(tmp_path):
  folder = _copy_shipped(tmp_path)
  ds = input_pipeline.load_idx_dir(folder, 'test')
  assert ds.images.shape == (10_000, 28, 28, 1)
  with pytest.raises(DataError, match='missing data file .*train-images'):
    input_pipeline.load_idx_dir(folder, 'train')


def test_idx_dir_rejects_files_that_are_not_the_official_ones(tmp_path):
  folder = tmp_path / 'fake'
  folder.mkdir()
  header = bytes([0, 0, 8, 3]) + (2).to_bytes(4, 'big') + (28).to_bytes(4, 'big') * 2
  with gzip.open(folder / 'train-images-idx3-ubyte.gz', 'wb') as f:
    f.write(header + bytes(2 * 28 * 28))
  with gzip.open(folder / 'train-labels-idx1-ubyte.gz', 'wb') as f:
    f.write(bytes([0, 0, 8, 1]) + (2).to_bytes(4, 'big') + bytes(2))
  with pytest.raises(DataError, match='checksum mismatch'):
    input_pipeline.load_idx_dir(folder, 'train')


def test_read_idx_rejects_truncated_files(tmp_path):
  path = tmp_path / 'bad-idx3-ubyte'
  path.write_bytes(bytes([0, 0, 8, 3]) + (5).to_bytes(4, 'big') + (28).to_bytes(4, 'big') * 2 + bytes(10))
  with pytest.raises(DataError, match='header says shape'):
    input_pipeline.read_idx(path)


def test_batch_larger_than_dataset(tiny_config):
  tiny_config.data.limit = 10
  with pytest.raises(DataError, match='larger than the dataset'):
    input_pipeline.load(tiny_config)


def test_tfds_data_source_without_tensorflow(tiny_config):
  tfds = pytest.importorskip('tensorflow_datasets')
  tiny_config.data.source = 'tfds'
  tiny_config.data.limit = 0
  tiny_config.train.batch_size = 4
  with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
    ds = input_pipeline.load(tiny_config)
  assert ds.images.shape == (12, 28, 28, 1) and ds.images.dtype == np.uint8
  assert ds.labels.shape == (12,)


def test_tfds_missing_dataset_is_a_clear_error(tiny_config, tmp_path):
  pytest.importorskip('tensorflow_datasets')
  tiny_config.data.source = 'tfds'
  tiny_config.data.dir = str(tmp_path)
  with pytest.raises(DataError, match="TFDS dataset 'mnist' split 'train' is not available"):
    input_pipeline.load(tiny_config)


def test_sampler_is_deterministic_and_covers_each_epoch():
  images = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1) * 20
  sampler = samplers.DeviceSampler(images, 3, jax.random.key(0))
  assert sampler.steps_per_epoch == 3
  epoch0 = np.concatenate([np.asarray(sampler.batch(i)['image']).ravel() for i in range(3)])
  assert len(set(epoch0.tolist())) == 9  # no repeats within an epoch; one image left over
  again = samplers.DeviceSampler(images, 3, jax.random.key(0))
  # Any step can be asked for directly (as after a resume) and gives the same batch.
  np.testing.assert_array_equal(again.batch(4)['image'], sampler.batch(4)['image'])
  np.testing.assert_array_equal(again.batch(1)['image'], sampler.batch(1)['image'])
  other = samplers.DeviceSampler(images, 3, jax.random.key(1))
  assert not np.array_equal(other.batch(0)['image'], sampler.batch(0)['image'])


def test_batches_are_scaled_to_minus_one_one():
  images = np.array([0, 255], np.uint8).reshape(2, 1, 1, 1)
  batch = np.asarray(samplers.DeviceSampler(images, 2, jax.random.key(0)).batch(0)['image'])
  assert sorted(batch.ravel().tolist()) == [-1.0, 1.0]


def test_hosts_and_devices_share_the_global_batch_once_in_order():
  indices = np.arange(16)
  shares = [samplers.host_slice(indices, process, 2) for process in range(2)]
  np.testing.assert_array_equal(np.concatenate(shares), indices)
  per_device = samplers.device_split(shares[1], 4)  # host 1's share over its 4 devices
  assert per_device.shape == (4, 2)
  np.testing.assert_array_equal(per_device.ravel(), np.arange(8, 16))
  # Sweep members: (K, B) -> (devices, K, B / devices), each device a slice of every member's batch.
  members = samplers.device_split(np.arange(12).reshape(2, 6), 3)
  assert members.shape == (3, 2, 2)
  np.testing.assert_array_equal(members[1, 0], [2, 3])
  np.testing.assert_array_equal(members[2, 1], [10, 11])
  with pytest.raises(DataError, match='does not divide among 3 processes'):
    samplers.host_slice(np.arange(10), 0, 3)


def test_sweep_members_each_follow_their_own_seed():
  images = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1)
  keys = jax.random.split(jax.random.key(0), 2)
  stacked = samplers.DeviceSampler(images, 3, keys)
  for k in range(2):
    alone = samplers.DeviceSampler(images, 3, keys[k])
    for step in (0, 4):
      np.testing.assert_array_equal(stacked.indices(step)[k], alone.indices(step))
  assert stacked.batch(0)['image'].shape == (1, 2, 3, 1, 1, 1)
