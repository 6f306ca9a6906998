import json

import jax
import numpy as np
import pytest

import ganjax
from ganjax import config as config_lib
from ganjax import members, sampling, toy, train
from ganjax.errors import ConfigError
from ganjax.validate import validate
from tests.conftest import EXPERIMENTS


@pytest.mark.parametrize('name, num_modes', [('ring8', 8), ('grid25', 25)])
def test_data_from_every_mode_covers_every_mode(name, num_modes):
  points, labels = toy.sample_data(name, 10_000, seed=0)
  assert points.shape == (10_000, 2) and points.dtype == np.float32
  assert set(np.unique(labels)) == set(range(num_modes))
  stats = toy.mode_stats(points, name)
  assert stats['modes_covered'] == stats['num_modes'] == num_modes
  # A 2-D Gaussian puts 1 - exp(-9/2) = 98.89% of its mass within 3 std.
  assert stats['high_quality'] == pytest.approx(1 - np.exp(-4.5), abs=0.005)


def test_collapsed_and_off_mode_samples_are_counted_as_such():
  centres, std = toy.modes('ring8')
  one_mode = centres[3] + std * np.random.default_rng(0).standard_normal((5000, 2))
  assert toy.mode_stats(one_mode, 'ring8')['modes_covered'] == 1
  between = (centres[:1] + centres[1:2]) / 2 + np.zeros((5000, 2))
  stats = toy.mode_stats(between, 'ring8')
  assert stats['modes_covered'] == 0 and stats['high_quality'] == 0.0


def test_toy_config_trains_and_writes_mode_metrics_and_scatter(tmp_path):
  config = config_lib.load_experiment(EXPERIMENTS / 'toy_ring8.py')
  config.data.toy_size = 1000
  config.train.num_steps = 20
  config.train.batch_size = 32
  config.train.log_every_steps = 10
  config.train.sample_every_steps = 20
  config.eval.every_steps = 10
  config.eval.num_samples = 200
  config.checkpoint.every_steps = 0  # one checkpoint, at the end
  train.train_and_evaluate(config, tmp_path)
  records = [json.loads(line) for line in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  evals = [r for r in records if 'eval/modes_covered' in r]
  assert [r['step'] for r in evals] == [10, 20]
  assert all(r['eval/num_modes'] == 8 for r in evals)
  # The logged mode metrics are toy.mode_stats of the very samples the loop drew: the final generator
  # on the run's fixed eval latents.
  run = ganjax.restore(tmp_path)
  z = jax.random.normal(members.streams(config.seed)['eval'], (config.eval.num_samples, config.model.latent_dim))
  expected = toy.mode_stats(np.asarray(sampling.images(run.g_state, z)), 'ring8')
  assert {k: evals[-1][f'eval/{k}'] for k in expected} == pytest.approx(expected)
  assert (tmp_path / 'samples' / 'step_000020.png').is_file()


def test_toy_needs_two_dimensional_points_and_an_mlp_discriminator():
  config = config_lib.load_experiment(EXPERIMENTS / 'toy_ring8.py')
  config.data.image_shape = (28, 28, 1)
  with pytest.raises(ConfigError, match=r'needs data.image_shape=\(2,\)'):
    validate(config)
  config = config_lib.load_experiment(EXPERIMENTS / 'toy_ring8.py')
  config.model.d_arch = 'conv'
  with pytest.raises(ConfigError, match="d_arch='conv' needs images"):
    validate(config)
