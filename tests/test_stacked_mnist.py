"""Stacked MNIST (ganjax.stacked_mnist): the stacks, the mode metrics; PacGAN's packs (ganjax.pacgan)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import evaluate, input_pipeline, models, pacgan, stacked_mnist, states, train_step
from ganjax.config import load_experiment
from ganjax.errors import ConfigError
from ganjax.validate import validate
from tests.conftest import EXPERIMENTS


def _config(name='stacked_mnist', size=256, **data):
  config = load_experiment(EXPERIMENTS / f'{name}.py')
  config.data.stacked_size = size
  for key, value in data.items():
    config.data[key] = value
  return config


def test_each_stack_is_three_shipped_digits_drawn_by_seed_index_and_channel():
  mnist = input_pipeline.load_shipped_mnist()
  index = stacked_mnist.digit_indices(0, 300, len(mnist.images))
  np.testing.assert_array_equal(index[:100], stacked_mnist.digit_indices(0, 100, len(mnist.images)))  # count-free
  assert not np.array_equal(index, stacked_mnist.digit_indices(1, 300, len(mnist.images)))
  ds = input_pipeline.load(_config(size=300))
  assert ds.images.shape == (300, 28, 28, 3) and ds.images.dtype == np.uint8
  for k in range(3):
    np.testing.assert_array_equal(ds.images[..., k], mnist.images[index[:, k], :, :, 0])
  np.testing.assert_array_equal(ds.labels, mnist.labels[index] @ [100, 10, 1])
  assert len(np.unique(ds.labels)) > 200  # digits drawn independently per channel
  padded = input_pipeline.load(_config(size=300, image_shape=(32, 32, 3)))
  np.testing.assert_array_equal(padded.images[:, 2:30, 2:30], ds.images)
  assert padded.images.sum() == ds.images.sum()  # the border is zero
  clean = stacked_mnist.digit_indices(0, 300, input_pipeline.CLASSIFIER_HALF)
  np.testing.assert_array_equal(
    input_pipeline.load(_config(size=300, clean_split=True)).labels, mnist.labels[clean] @ [100, 10, 1]
  )
  assert stacked_mnist.channels(padded.images.astype(np.float32)).shape == (900, 28, 28, 1)


def test_real_stacks_cover_the_modes_and_one_repeated_stack_covers_one():
  ds = input_pipeline.load(_config(size=26_000))
  counter = stacked_mnist.ModeCounter()
  real = evaluate.to_unit(ds.images)
  modes = counter.modes(real)
  assert np.mean(modes == ds.labels) > 0.95  # three reads per stack, each about 99% right
  stats = counter(real)
  # 26,000 draws of 1,000 equally likely modes: all covered, KL about 0.02 nats from sampling noise alone.
  assert stats['modes'] >= 995 and stats['kl_modes'] < 0.05, stats
  one = counter(np.repeat(real[:1], 500, axis=0))
  assert one['modes'] == 1 and one['kl_modes'] == pytest.approx(np.log(1000), rel=1e-6)
  assert one['kl_digits'] == pytest.approx(np.log(1000), rel=1e-6)  # every channel one digit
  assert 0 <= stats['kl_digits'] <= stats['kl_modes']
  score, what = evaluate.make_scorer(_config(), None)
  assert 'Stacked MNIST modes' in what
  assert set(score(real[:100])) == {'modes', 'kl_modes', 'kl_digits', 'pixel_std'}


def test_kl_digits_is_the_part_of_the_kl_that_the_channels_digit_frequencies_explain():
  # The same digit in all three channels: each channel's digits are even, only 10 of 1,000 combinations.
  same = np.repeat(np.arange(10) * 111, 50)
  stats = stacked_mnist.mode_stats(same)
  assert stats['modes'] == 10 and stats['kl_digits'] == pytest.approx(0.0, abs=1e-12)
  assert stats['kl_modes'] == pytest.approx(np.log(100), rel=1e-9)
  # Independent channels, R drawn from a skewed histogram: the KL is all in R's digit frequencies.
  r = np.array([0.3, 0.3, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.025, 0.025])
  modes = np.array([100 * a + 10 * b + c for a in range(10) for b in range(10) for c in range(10)])
  weights = np.rint(r[modes // 100] * 4000).astype(int)  # exact counts: R's histogram is r, G and B even
  stats = stacked_mnist.mode_stats(np.repeat(modes, weights))
  want = float(np.sum(r * np.log(r * 10)))
  assert stats['kl_digits'] == pytest.approx(want, rel=1e-9) and stats['kl_modes'] == pytest.approx(want, rel=1e-9)


def test_a_pack_of_one_is_the_plain_d_and_a_packs_logit_depends_on_all_its_members():
  config = _config()
  config.model.d_pack = 1
  config.model.d_minibatch_std = False  # its feature mixes the batch's packs on purpose
  g, d = models.build_models(config.model, config.data.image_shape)
  assert not isinstance(d, pacgan.Packed)  # no wrapper: the step is the unpacked one
  x = jax.random.uniform(jax.random.key(0), (6, 28, 28, 3), minval=-1, maxval=1)
  variables = d.init(jax.random.key(1), x, train=False)
  one = pacgan.Packed(d, 1)
  wrapped = {collection: {'inner': tree} for collection, tree in variables.items()}
  np.testing.assert_array_equal(d.apply(variables, x, train=False), one.apply(wrapped, x, train=False))
  config.model.d_pack = 3
  _, packed = models.build_models(config.model, config.data.image_shape)
  variables = packed.init(jax.random.key(1), x[:3], train=False)
  logits = packed.apply(variables, x, train=False)
  assert logits.shape[0] == 2  # six samples, two packs
  jac = jax.jacobian(lambda x: packed.apply(variables, x, train=False)[0])(x)
  touched = [bool(jnp.any(jac[i] != 0)) for i in range(6)]
  assert touched == [True, True, True, False, False, False]
  # The pack is the members side by side along channels: the inner D on that input gives the same logit.
  stacked = jnp.concatenate([x[0], x[1], x[2]], axis=-1)[None]
  inner = {k: v['inner'] for k, v in variables.items()}
  np.testing.assert_allclose(packed.inner.apply(inner, stacked, train=False)[0], logits[0], rtol=1e-5)


class _Pack(nn.Module):
  """An inner 'D' that returns the packs it is given, to look at what the wrapper feeds it."""

  @nn.compact
  def __call__(self, x, train=True):
    return x


def test_a_packed_d_augments_each_sample_on_its_own_before_packing():
  config = _config('stacked_mnist_pac')
  config.model.d_augment = 'translation'
  _, d = models.build_models(config.model, config.data.image_shape)
  assert d.augment == ('translation',) and not d.inner.augment  # the inner D sees packs: no policy of its own
  digit = evaluate.to_unit(input_pipeline.load(_config(size=64)).images)[0]
  x = jnp.stack([digit] * 16)  # eight packs, each the same stack twice
  probe = pacgan.Packed(_Pack(), 2, ('translation',))
  packs = probe.apply({}, x, rngs={'augment': jax.random.key(0)})
  assert packs.shape == (8, 28, 28, 6)
  np.testing.assert_array_equal(probe.apply({}, x, train=False), jnp.concatenate([x[0::2], x[1::2]], axis=-1))
  # Every member is the stack shifted by up to 3 px (the border repeated), each by its own draw.
  padded = np.pad(np.asarray(digit), ((3, 3), (3, 3), (0, 0)), mode='edge')
  shifts = [padded[i : i + 28, j : j + 28] for i in range(7) for j in range(7)]
  members = np.asarray(packs).reshape(8, 28, 28, 2, 3).transpose(0, 3, 1, 2, 4).reshape(16, 28, 28, 3)
  found = [next(k for k, s in enumerate(shifts) if np.array_equal(s, m)) for m in members]
  assert len(set(found)) > 4 and sum(a != b for a, b in zip(found[0::2], found[1::2], strict=True)) >= 4


@pytest.mark.parametrize(
  'overrides',
  [
    {'loss.name': 'hinge', 'model.d_spectral_norm': True},
    {'loss.name': 'wgan', 'loss.gp_weight': 10.0, 'train.d_update': 'joint', 'model.d_norm': 'none'},
    {'loss.r1_weight': 1.0, 'model.d_minibatch_std': True},
    {'model.d_augment': 'translation,cutout'},
  ],
)
def test_packed_d_trains_with_losses_penalties_spectral_norm_minibatch_std_and_diffaugment(overrides):
  config = _config('stacked_mnist_pac')
  config.model.g_features, config.model.d_features = (16, 8), (8, 16)
  config.train.batch_size = 8
  for key, value in overrides.items():
    section, name = key.split('.')
    config[section][name] = value
  validate(config)
  g_state, d_state = states.create_states(config, jax.random.key(0))
  batch = {'image': jax.random.uniform(jax.random.key(2), (1, 8, 28, 28, 3), minval=-1, maxval=1)}
  step = train_step.make_train_step(config)
  g_rep, d_rep = train_step.replicate((g_state, d_state))
  for i in range(2):
    g_rep, d_rep, metrics = step(g_rep, d_rep, batch, jax.random.key(i))
  assert all(np.isfinite(v).all() for v in jax.tree.leaves(metrics))
  assert not np.array_equal(jax.tree.leaves(d_rep.params)[0][0], jax.tree.leaves(d_state.params)[0])


def test_packs_refuse_what_they_cannot_judge_in_one_line():
  config = _config('stacked_mnist_pac')
  config.train.batch_size = 63
  with pytest.raises(ConfigError, match='train.batch_size=63 must divide by model.d_pack=2'):
    validate(config)
  config.train.batch_size, config.model.num_classes = 64, 10
  with pytest.raises(ConfigError, match='model.d_pack does not take class labels'):
    validate(config)
  config.model.num_classes, config.data.image_shape = 0, (28, 28, 1)
  with pytest.raises(ConfigError, match="'stacked_mnist' makes"):
    validate(config)
