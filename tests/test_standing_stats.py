"""Standing statistics (BigGAN): G's BatchNorm statistics recomputed from fresh samples for inference."""

import json

import jax
import numpy as np
import pytest

from ganjax import checkpoint, objectives, sampling, states, train, train_step
from ganjax.errors import ConfigError
from ganjax.validate import validate


def _latents(config, batches: int, size: int = 32, seed: int = 1) -> jax.Array:
  return jax.random.normal(jax.random.key(seed), (batches, size, config.model.latent_dim))


def _close(a, b) -> bool:
  pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
  return all(np.allclose(x, y, rtol=1e-5, atol=1e-5) for x, y in pairs)


def test_one_batch_of_standing_statistics_normalises_as_train_mode_does(tiny_config):
  g, _ = states.create_states(tiny_config, jax.random.key(0))
  z = _latents(tiny_config, 1)
  standing = states.standing_stats(g, z)
  in_train_mode, _ = states.generate(g, z[0], train=True)
  np.testing.assert_allclose(states.generate(standing, z[0])[0], in_train_mode, rtol=1e-5, atol=1e-5)
  # ... which the running averages (still at their initial 0 and 1) do not
  assert not np.allclose(states.generate(g, z[0])[0], in_train_mode, atol=1e-3)


def test_the_statistics_are_the_mean_over_the_batches(tiny_config):
  g, _ = states.create_states(tiny_config, jax.random.key(0))
  z = _latents(tiny_config, 2)
  both = states.standing_stats(g, z).batch_stats
  each = [states.standing_stats(g, z[k : k + 1]).batch_stats for k in range(2)]
  assert _close(both, jax.tree.map(lambda a, b: (a + b) / 2, *each))
  assert not _close(*each)


def test_with_an_ema_the_ema_generator_gets_them_and_the_live_one_keeps_its_own(tiny_config):
  tiny_config.train.g_ema_decay = 0.9
  g, _ = states.create_states(tiny_config, jax.random.key(0))
  g = g.replace(ema_params=jax.tree.map(lambda p: 1.1 * p, g.ema_params))  # an EMA unlike the live G
  z = _latents(tiny_config, 1)
  standing = states.standing_stats(g, z)
  assert _close(standing.batch_stats, g.batch_stats)
  in_train_mode, _ = states.generate(g, z[0], params=g.ema_params, train=True)
  np.testing.assert_allclose(states.generate(standing, z[0])[0], in_train_mode, rtol=1e-5, atol=1e-5)


def test_with_standing_statistics_the_step_leaves_the_ema_statistics_to_them(tiny_config):
  tiny_config.train.g_ema_decay = 0.9
  g, d = states.create_states(tiny_config, jax.random.key(0))
  batch = {
    'image': jax.random.uniform(jax.random.key(5), (tiny_config.train.batch_size, *tiny_config.data.image_shape))
  }
  advanced, d_adv, _ = train_step.train_step(
    g, d, batch, jax.random.key(3), objectives.StepConfig.from_config(tiny_config)
  )
  tiny_config.eval.standing_stats = 64
  cfg = objectives.StepConfig.from_config(tiny_config)
  assert not cfg.ema_batch_stats
  kept, d_kept, _ = train_step.train_step(g, d, batch, jax.random.key(3), cfg)
  # The game is the same step: only the EMA generator's statistics were not advanced.
  for a, b in [(advanced.params, kept.params), (advanced.ema_params, kept.ema_params), (d_adv.params, d_kept.params)]:
    assert all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))
  assert _close(kept.ema_batch_stats, g.ema_batch_stats) and not _close(advanced.ema_batch_stats, g.ema_batch_stats)
  # ... which samples never see: standing statistics replace both.
  key, z = jax.random.key(7), _latents(tiny_config, 1)[0]
  from_kept = sampling.images(sampling.standing(kept, tiny_config, key), z)
  np.testing.assert_allclose(from_kept, sampling.images(sampling.standing(advanced, tiny_config, key), z), atol=1e-5)


def test_a_generator_without_batchnorm_is_unchanged(tiny_config):
  tiny_config.model.g_norm = 'none'
  g, _ = states.create_states(tiny_config, jax.random.key(0))
  assert not g.batch_stats
  out = states.standing_stats(g, _latents(tiny_config, 2))
  assert _close(out.params, g.params) and not out.batch_stats
  tiny_config.eval.standing_stats = 100
  assert sampling.standing(g, tiny_config, jax.random.key(0)) is g


def test_training_evaluates_with_them_and_samples_of_the_run_use_its_setting(tiny_config, tmp_path, monkeypatch):
  tiny_config.eval.standing_stats = 40  # one batch of eval.batch_size 100
  asked, standing = [], sampling.standing
  monkeypatch.setattr(sampling, 'standing', lambda g, config, key: asked.append(key) or standing(g, config, key))
  train.train_and_evaluate(tiny_config, tmp_path)
  assert len(asked) == 2  # grids and evaluation at steps 10 and 20
  rows = [json.loads(line) for line in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  assert [r['step'] for r in rows if any(k.startswith('eval/') for k in r)] == [10, 20]
  run = checkpoint.restore(tmp_path)
  assert run.config.eval.standing_stats == 40
  with_them = sampling.sample(run, 8, seed=3)
  key = jax.random.fold_in(jax.random.key(3), sampling.STANDING_FOLD)
  z = jax.random.normal(key, (1, 100, tiny_config.model.latent_dim))
  by_hand = states.standing_stats(run.g_state, z)
  first = jax.random.normal(jax.random.fold_in(jax.random.key(3), 0), (1000, tiny_config.model.latent_dim))
  expected = sampling.images(by_hand, first[:8])
  np.testing.assert_allclose(with_them, expected, rtol=1e-5, atol=1e-5)
  run.config.eval.standing_stats = 0
  assert not np.allclose(sampling.sample(run, 8, seed=3), with_them, atol=1e-4)


def test_a_negative_count_is_refused_in_one_line(tiny_config):
  tiny_config.eval.standing_stats = -1
  with pytest.raises(ConfigError, match='eval.standing_stats must be >= 0, got -1'):
    validate(tiny_config)
