import pytest

from ganjax import config as config_lib
from ganjax.errors import ConfigError
from ganjax.validate import validate
from tests.conftest import EXPERIMENTS


@pytest.mark.parametrize('name', sorted(p.stem for p in EXPERIMENTS.glob('*.py')))
def test_experiments_are_valid_and_have_the_keys_tools_use(name):
  config = config_lib.load_experiment(EXPERIMENTS / f'{name}.py')
  if config.data.source == 'folder':  # as with_data_shapes resolves it from a packed dataset
    assert tuple(config.data.image_shape) == ()
    for shape in ((32, 32, 3), (64, 64, 3), (28, 28, 1)):
      config.data.image_shape = shape
      validate(config)
  validate(config)
  for key in ('seed', 'train.num_steps', 'train.batch_size', 'train.log_every_steps'):
    section, _, field = key.rpartition('.')
    assert field in (config[section] if section else config)
  for section in ('data', 'model', 'opt', 'loss', 'train', 'checkpoint', 'eval'):
    assert section in config


def test_tutorial_config_is_the_tutorial():
  c = config_lib.load_experiment(EXPERIMENTS / 'tutorial_gan.py')
  assert c.model.latent_dim == 100 and tuple(c.model.g_features) == (256, 512, 1024)
  assert tuple(c.model.d_features) == (64, 128) and c.model.d_leaky_slope == 0.2
  assert c.model.g_norm == 'none' and c.model.d_dropout == 0
  assert c.opt.g_lr == c.opt.d_lr == 2e-4 and c.opt.b1 == 0.5
  assert c.train.batch_size == 64 and c.train.d_update == 'separate' and c.loss.real_label == 1.0


def test_unknown_key_is_named(tiny_config):
  with tiny_config.unlocked():
    tiny_config.train.num_stepz = 3
  with pytest.raises(ConfigError, match="unknown config key 'train.num_stepz'"):
    validate(tiny_config)


def test_wrong_type_is_named(tiny_config):
  tiny_config.unlock()
  del tiny_config.train['batch_size']
  tiny_config.train.batch_size = 'sixty-four'
  with pytest.raises(ConfigError, match='train.batch_size must be an int'):
    validate(tiny_config)


@pytest.mark.parametrize(
  'field, value, message',
  [
    ('train.d_update', 'both', 'train.d_update must be one of'),
    ('train.num_steps', 0, 'train.num_steps must be > 0'),
    ('model.d_dropout', 1.5, r'model.d_dropout must be in \[0, 1\)'),
    ('loss.real_label', 0.0, r'loss.real_label must be in \(0, 1\]'),
    ('data.source', 'web', 'data.source must be one of'),
    ('eval.features', 'clip', 'eval.features must be one of'),
    ('eval.reference_num', -1, 'eval.reference_num must be >= 0'),
    ('checkpoint.init_member', -2, 'checkpoint.init_member must be a member index >= 0'),
    ('checkpoint.init_member', 1, 'checkpoint.init_member needs checkpoint.init_from'),
  ],
)
def test_bad_values_are_named(tiny_config, field, value, message):
  section, key = field.split('.')
  tiny_config[section][key] = value
  with pytest.raises(ConfigError, match=message):
    validate(tiny_config)


def test_the_mnist_classifier_is_refused_for_other_images(tiny_config):
  tiny_config.eval.features = 'classifier'
  validate(tiny_config)  # tiny.py trains on MNIST digits
  tiny_config.data.source, tiny_config.data.tfds_name = 'tfds', 'cifar10'
  with pytest.raises(ConfigError, match="eval.features='classifier' judges 28x28x1 MNIST digits"):
    validate(tiny_config)
