"""The tutorial's configuration, which is also the schema every experiment follows.

`experiments/*.py` start from `tutorial_config()` and override fields; this
module checks that a config has exactly these keys, with these types and
sensible values, before any JAX code runs.
"""

import importlib.util
import pathlib

import ml_collections

from ganjax.choices import (
  AUGMENTS,
  CONV_IMPLS,
  D_ARCHS,
  D_UPDATES,
  G_ARCHS,
  G_OUTPUTS,
  LOSSES,
  NORMS,
  OPTIMIZERS,
  SCHEDULES,
  SOURCES,
  SWEEP_MODES,
  TOYS,
  UPDATE_RULES,
  allowed,
  augment_policy,
)
from ganjax.errors import ConfigError

# Fields a sweep may vary: the seed, or a scalar that the compiled step takes as data.
SWEEPABLE = ('seed', 'opt.g_lr', 'opt.d_lr', 'loss.real_label')


def tutorial_config() -> ml_collections.ConfigDict:
  """The tutorial GAN exactly: MLP G, strided-conv D, BCE, Adam(2e-4, 0.5), batch 64."""
  c = ml_collections.ConfigDict()
  c.seed = 0

  c.data = ml_collections.ConfigDict()
  c.data.source = 'shipped'  # 'shipped' | 'idx' | 'tfds' | 'toy'
  c.data.toy_name = 'ring8'  # source='toy': 'ring8' | 'grid25' (2-D mixtures of Gaussians)
  c.data.toy_size = 50_000  # source='toy': number of points drawn from data.toy_name
  c.data.dir = ''  # folder of idx .gz files (source='idx') or TFDS data_dir ('tfds')
  c.data.tfds_name = 'mnist'
  c.data.split = 'train'
  c.data.tfds_download = False  # True lets TFDS download and prepare (needs network)
  c.data.image_shape = (28, 28, 1)
  c.data.limit = 0  # use only the first N images (0 = all); for smoke tests
  # source='shipped': train G on the classifier's half only (the first 5,000 digits), so the evaluation's
  # reference (the other 5,000) is data G never saw. False: G trains on all 10,000.
  c.data.clean_split = False

  c.model = ml_collections.ConfigDict()
  c.model.latent_dim = 100
  c.model.g_arch = 'mlp'  # 'mlp' (the tutorial) | 'dcgan' (g_features: channels per resolution, e.g. (256, 128))
  c.model.g_features = (256, 512, 1024)
  c.model.g_kernel_size = 5  # model.g_arch='dcgan': kernel of the stride-2 transposed convolutions
  c.model.g_norm = 'none'  # 'none' | 'batch'
  c.model.g_bn_momentum = 0.99
  c.model.g_leaky_slope = 0.0  # 0: ReLU in G's hidden layers (the tutorial)
  c.model.g_output = 'tanh'  # 'tanh' (images in [-1, 1]) | 'linear' (toy 2-D data)
  c.model.d_arch = 'conv'  # 'conv' (the tutorial) | 'mlp' (toy 2-D data; d_features are widths)
  c.model.d_features = (64, 128)
  c.model.d_leaky_slope = 0.2
  c.model.d_dropout = 0.0
  c.model.d_input_noise = 0.0  # std of instance noise on D's inputs
  # DiffAugment of every D input, real or fake (augment.py): '' (none) or a comma-separated subset of
  # 'color,translation,cutout'
  c.model.d_augment = ''
  c.model.d_minibatch_std = False  # minibatch standard-deviation channel in D
  c.model.d_hidden = 0  # > 0: a Dense + LeakyReLU layer of this width before D's logit (conv D)
  c.model.d_norm = 'none'  # 'none' | 'batch': BatchNorm after D's convolutions but the first (conv D only)
  c.model.d_spectral_norm = False  # spectral normalisation of every D layer
  # 'patches' (slices + one matmul, models.PatchConv) | 'xla' (lax.conv): the same function; patches are
  # faster on XLA:CPU (docs/performance.md), cuDNN's and the TPU's own convolutions elsewhere. 'auto':
  # patches on a CPU backend, xla on any other (models.conv_impl).
  c.model.d_conv_impl = 'auto'
  # The same choice for model.g_arch='dcgan's transposed convolutions (models.PatchConvTranspose).
  c.model.g_conv_impl = 'auto'
  # The Dirac-GAN (g_arch = d_arch = 'dirac'): its start (theta0, psi0); () starts at (1, 1)
  c.model.dirac_init = ()
  c.model.num_classes = 0  # > 0: class-conditional G (label embedding) and projection D on the data's labels
  # > 0: G also takes a category drawn uniformly from this many, which D never sees (z times a learned
  # embedding, as a cGAN's label): a mixture of generators sharing their weights, for data in separate clusters
  c.model.latent_categories = 0

  c.opt = ml_collections.ConfigDict()
  c.opt.name = 'adam'  # 'adam' (the tutorial) | 'sgd' (plain gradient descent, e.g. for the Dirac-GAN)
  c.opt.g_lr = 2e-4
  c.opt.d_lr = 2e-4
  c.opt.b1 = 0.5
  c.opt.b2 = 0.999
  c.opt.eps = 1e-7  # Keras' Adam epsilon
  c.opt.schedule = 'constant'  # 'constant' | 'linear': both learning rates decay linearly to 0 at train.num_steps

  c.loss = ml_collections.ConfigDict()
  c.loss.name = 'bce'  # 'bce' (the tutorial) | 'minimax' | 'hinge' | 'lsgan'; see ganjax/losses.py
  c.loss.real_label = 1.0  # < 1: one-sided label smoothing
  c.loss.gp_weight = 0.0  # WGAN-GP gradient penalty weight (10 in the paper); needs train.d_update='joint'
  # InfoGAN (Chen et al. 2016): > 0 adds a Q head to D that predicts G's latent category from a fake,
  # and this weight times its cross-entropy to both D's and G's losses (needs model.latent_categories)
  c.loss.info_weight = 0.0
  c.loss.info_schedule = 'constant'  # 'constant' | 'linear': the InfoGAN weight decays linearly to 0 at train.num_steps
  # consensus optimisation (Mescheder et al. 2017): gamma of the gamma/2 ||v||^2 regulariser of the
  # game's joint gradient field v, added to both players (simultaneous or extragradient rules)
  c.loss.consensus_weight = 0.0
  c.loss.r1_weight = 0.0  # R1 penalty gamma on real images (Mescheder et al. 2018)

  c.train = ml_collections.ConfigDict()
  c.train.num_steps = 5000
  c.train.batch_size = 64
  c.train.d_update = 'separate'  # 'separate' (the tutorial) | 'joint'
  c.train.n_critic = 1  # D updates (each on its own real batch) per G update
  # 'alternating': G's update sees the updated D (the tutorial) | 'simultaneous': both from the step's states |
  # 'extragradient': a look-ahead step of both, then the update from the look-ahead's field | 'optimistic':
  # simultaneous, with optimistic Adam or GD (the previous gradient kept in the optimizer state)
  c.train.update_rule = 'alternating'
  # bfloat16 compute with float32 params and optimizer states (flax's examples' half_precision), for GPU/TPU
  c.train.half_precision = False
  c.train.g_ema_decay = 0.0  # > 0: keep an EMA of G's params, used for samples and evaluation
  # True: jax.distributed.initialize() before training (several processes or hosts). With the three
  # cluster fields empty, JAX detects the cluster (TPU pod slices, SLURM, Open MPI); set them for a local
  # or custom cluster: every process gets the same address and count and its own id.
  c.train.distributed = False
  c.train.coordinator_address = ''  # host:port of process 0's coordinator, e.g. 'localhost:12355'
  c.train.num_processes = 0  # 0: detected
  c.train.process_id = -1  # -1: detected; else 0 .. num_processes - 1
  c.train.init_timeout_s = 300  # how long to wait for the coordinator and the other processes
  # a process silent this long counts as dead: the others stop (one line each) instead of waiting forever
  c.train.heartbeat_timeout_s = 100
  c.train.log_every_steps = 100
  c.train.sample_every_steps = 500
  c.train.num_sample_images = 64  # the fixed latent batch drawn as a square grid

  c.checkpoint = ml_collections.ConfigDict()
  c.checkpoint.every_steps = 1000  # 0: only at the end
  c.checkpoint.max_to_keep = 3
  c.checkpoint.enabled = True
  c.checkpoint.resume = True  # False: move existing checkpoints aside and start fresh
  c.checkpoint.init_from = ''  # another run's workdir: start from its latest params (warm start)

  c.eval = ml_collections.ConfigDict()
  c.eval.every_steps = 1000  # 0 turns evaluation during training off
  c.eval.num_samples = 1000

  # K independent GANs trained side by side in one program (jax.vmap over stacked states).
  c.sweep = ml_collections.ConfigDict()
  c.sweep.field = ''  # '' (no sweep) or one of SWEEPABLE, e.g. 'seed' or 'opt.g_lr'
  c.sweep.choices = ()  # one member per value; member k writes to WORKDIR/member_k
  # 'vmap': members batched by jax.vmap; 'unroll': one after another in the same program (use it with
  # model.d_conv_impl='xla' on CPU, where vmapped lax.convs over stacked weights become slow grouped convolutions).
  c.sweep.mode = 'vmap'
  return c


def _check(cond: bool, msg: str) -> None:
  if not cond:
    raise ConfigError(msg)


# Keys that ganjax renamed: an old config or override that sets one gets one line naming the new key.
RENAMED = {'train.update_order': 'train.update_rule'}


def _check_schema(config: ml_collections.ConfigDict, schema: ml_collections.ConfigDict, prefix: str) -> None:
  for key in config:
    if f'{prefix}{key}' in RENAMED:
      raise ConfigError(f'{prefix}{key} is now {RENAMED[prefix + key]} (same values, and more); rename it')
    _check(key in schema, f"unknown config key '{prefix}{key}'; known keys here: {sorted(schema.keys())}")
  for key, ref in schema.items():
    name = f'{prefix}{key}'
    _check(key in config, f'config is missing {name!r}')
    value = config[key]
    if isinstance(ref, ml_collections.ConfigDict):
      _check(isinstance(value, ml_collections.ConfigDict), f'{name} must be a section, got {value!r}')
      _check_schema(value, ref, name + '.')
    elif isinstance(ref, bool):
      _check(isinstance(value, bool), f'{name} must be a bool, got {value!r}')
    elif isinstance(ref, int):
      _check(isinstance(value, int) and not isinstance(value, bool), f'{name} must be an int, got {value!r}')
    elif isinstance(ref, float):
      _check(isinstance(value, (int, float)) and not isinstance(value, bool), f'{name} must be a number, got {value!r}')
    elif isinstance(ref, str):
      _check(isinstance(value, str), f'{name} must be a string, got {value!r}')
    elif isinstance(ref, tuple) and not ref:  # a list of numbers, possibly empty (sweep.choices)
      ok = isinstance(value, (tuple, list)) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
      )
      _check(ok, f'{name} must be a sequence of numbers, got {value!r}')
    elif isinstance(ref, tuple):
      ok = isinstance(value, (tuple, list)) and all(isinstance(v, int) and v > 0 for v in value)
      _check(ok and len(value) > 0, f'{name} must be a non-empty sequence of positive ints, got {value!r}')


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises ConfigError naming the first field that is unknown, mistyped or out of range."""
  _check(isinstance(config, ml_collections.ConfigDict), f'config must be a ConfigDict, got {type(config)}')
  _check_schema(config, tutorial_config(), '')
  _validate_train(config)
  _validate_d_inputs(config)
  _validate_opt(config)
  _validate_data(config)
  _validate_architectures(config)
  _validate_rules(config)
  _validate_rest(config)
  _validate_sweep(config)


def _validate_train(config: ml_collections.ConfigDict) -> None:
  """The training loop's counts and choices."""
  t = config.train
  _check(t.num_steps > 0, f'train.num_steps must be > 0, got {t.num_steps}')
  _check(t.batch_size > 0, f'train.batch_size must be > 0, got {t.batch_size}')
  _check(t.log_every_steps > 0, f'train.log_every_steps must be > 0, got {t.log_every_steps}')
  _check(t.sample_every_steps >= 0, f'train.sample_every_steps must be >= 0, got {t.sample_every_steps}')
  _check(t.num_sample_images > 0, f'train.num_sample_images must be > 0, got {t.num_sample_images}')
  _check(t.d_update in D_UPDATES, f'train.d_update must be one of {D_UPDATES}, got {t.d_update!r}')


def _validate_d_inputs(config: ml_collections.ConfigDict) -> None:
  """Latent size, G's norm and what D sees: its norm, width, dropout, augmentation, noise."""
  m = config.model
  _check(m.g_norm in NORMS, f'model.g_norm must be one of {NORMS}, got {m.g_norm!r}')
  _check(m.d_hidden >= 0, f'model.d_hidden must be >= 0, got {m.d_hidden}')
  _check(m.d_norm in NORMS, f'model.d_norm must be one of {NORMS}, got {m.d_norm!r}')
  _check(
    m.d_norm == 'none' or m.d_arch != 'mlp', "model.d_norm='batch' needs a conv D (model.d_arch 'conv' or 'dcgan')"
  )
  _check(m.latent_dim > 0, f'model.latent_dim must be > 0, got {m.latent_dim}')
  _check(0 <= m.d_dropout < 1, f'model.d_dropout must be in [0, 1), got {m.d_dropout}')
  unknown = set(augment_policy(m.d_augment)) - set(AUGMENTS)
  _check(not unknown, f'model.d_augment: unknown transform(s) {sorted(unknown)}; choose from {AUGMENTS}')
  _check(not m.d_augment or m.d_arch != 'mlp', 'model.d_augment needs a conv D (model.d_arch conv or dcgan)')
  _check(m.d_input_noise >= 0, f'model.d_input_noise must be >= 0, got {m.d_input_noise}')


def _validate_opt(config: ml_collections.ConfigDict) -> None:
  """The optimizer and the loss."""
  o = config.opt
  _check(o.g_lr > 0 and o.d_lr > 0, f'opt.g_lr and opt.d_lr must be > 0, got {o.g_lr}, {o.d_lr}')
  _check(o.schedule in SCHEDULES, f'opt.schedule must be one of {SCHEDULES}, got {o.schedule!r}')
  _check(0 <= o.b1 < 1 and 0 <= o.b2 < 1, f'opt.b1 and opt.b2 must be in [0, 1), got {o.b1}, {o.b2}')
  losses = allowed('loss.name', LOSSES)
  _check(config.loss.name in losses, f'loss.name must be one of {losses}, got {config.loss.name!r}')
  _check(0 < config.loss.real_label <= 1, f'loss.real_label must be in (0, 1], got {config.loss.real_label}')


def _validate_data(config: ml_collections.ConfigDict) -> None:
  """The data source and the shape it gives."""
  sources = allowed('data.source', SOURCES)
  _check(config.data.source in sources, f'data.source must be one of {sources}, got {config.data.source!r}')
  _check(
    config.data.source != 'idx' or config.data.dir, "data.source='idx' needs data.dir, the folder of idx .gz files"
  )
  shape = tuple(config.data.image_shape)
  if config.data.source == 'toy':
    _check(config.data.toy_name in TOYS, f'data.toy_name must be one of {TOYS}, got {config.data.toy_name!r}')
    want = (1,) if config.data.toy_name == 'dirac' else (2,)
    _check(shape == want, f'data.toy_name={config.data.toy_name!r} needs data.image_shape={want}, got {shape}')
    _check(config.data.toy_size > 0, f'data.toy_size must be > 0, got {config.data.toy_size}')
  else:
    _check(len(shape) == 3, f'data.image_shape must be (H, W, C), got {shape}')


def _validate_architectures(config: ml_collections.ConfigDict) -> None:
  """G and D and what conditions them."""
  m = config.model
  shape = tuple(config.data.image_shape)
  _check(m.g_output in G_OUTPUTS, f'model.g_output must be one of {G_OUTPUTS}, got {m.g_output!r}')
  d_archs, g_archs = allowed('model.d_arch', D_ARCHS), allowed('model.g_arch', G_ARCHS)
  _check(m.d_arch in d_archs, f'model.d_arch must be one of {d_archs}, got {m.d_arch!r}')
  _check(m.g_arch in g_archs, f'model.g_arch must be one of {g_archs}, got {m.g_arch!r}')
  if m.g_arch == 'dcgan':
    ok = len(shape) == 3 and shape[0] == shape[1] and upsamplings(shape[0]) == len(m.g_features)
    _check(
      ok,
      f"model.g_arch='dcgan' needs square images and one g_features entry per resolution below the output "
      f'({upsamplings(shape[0]) if shape else 0} for {shape}), got g_features={tuple(m.g_features)}',
    )
  _check(m.g_kernel_size >= 2, f'model.g_kernel_size must be >= 2, got {m.g_kernel_size}')
  _validate_dirac(config)
  for name in ('d_conv_impl', 'g_conv_impl'):
    _check(m[name] in CONV_IMPLS, f'model.{name} must be one of {CONV_IMPLS}, got {m[name]!r}')
  _check(m.num_classes >= 0, f'model.num_classes must be >= 0, got {m.num_classes}')
  _check(m.latent_categories >= 0, f'model.latent_categories must be >= 0, got {m.latent_categories}')
  _check(
    not (m.num_classes and m.latent_categories),
    'model.latent_categories and model.num_classes both condition G: set one of them',
  )
  _check(
    not m.num_classes or (m.d_arch != 'mlp' and config.data.source != 'toy'),
    'model.num_classes (a conditional GAN) needs labelled images and a conv D, not toy data or the MLP D',
  )


def _validate_rules(config: ml_collections.ConfigDict) -> None:
  """The cluster, D updates per step and the update rule."""
  t = config.train
  _validate_cluster(t)
  _check(t.n_critic >= 1, f'train.n_critic must be >= 1, got {t.n_critic}')
  _check(t.update_rule in UPDATE_RULES, f'train.update_rule must be one of {UPDATE_RULES}, got {t.update_rule!r}')
  _check(config.opt.name in OPTIMIZERS, f'opt.name must be one of {OPTIMIZERS}, got {config.opt.name!r}')
  _validate_game(config)


def _validate_rest(config: ml_collections.ConfigDict) -> None:
  """EMA, penalties, InfoGAN, the split, checkpoints and evaluation."""
  t, m = config.train, config.model
  shape = tuple(config.data.image_shape)
  _check(0 <= t.g_ema_decay < 1, f'train.g_ema_decay must be in [0, 1), got {t.g_ema_decay}')
  loss = config.loss
  _check(loss.info_weight >= 0, f'loss.info_weight must be >= 0, got {loss.info_weight}')
  _check(loss.info_schedule in SCHEDULES, f'loss.info_schedule must be one of {SCHEDULES}, got {loss.info_schedule!r}')
  _check(
    not loss.info_weight or (config.model.latent_categories and config.model.d_arch != 'mlp'),
    'loss.info_weight (InfoGAN) needs model.latent_categories > 0 and a conv D',
  )
  _check(loss.gp_weight >= 0 and loss.r1_weight >= 0, 'loss.gp_weight and loss.r1_weight must be >= 0')
  _check(
    loss.gp_weight == 0 or t.d_update == 'joint',
    "loss.gp_weight needs train.d_update='joint' (the penalty mixes real and fake images in one D loss)",
  )
  _check(
    m.d_arch in ('mlp', 'dirac') or len(shape) == 3, "model.d_arch='conv' needs images (H, W, C); use 'mlp' for vectors"
  )
  _check(
    not config.data.clean_split or config.data.source == 'shipped',
    "data.clean_split splits the shipped MNIST digits; it needs data.source='shipped'",
  )
  _check(config.data.limit >= 0, f'data.limit must be >= 0, got {config.data.limit}')
  _check(config.checkpoint.every_steps >= 0, 'checkpoint.every_steps must be >= 0')
  _check(config.checkpoint.max_to_keep > 0, 'checkpoint.max_to_keep must be > 0')
  _check(config.eval.every_steps >= 0, 'eval.every_steps must be >= 0')
  _check(config.eval.num_samples >= 10, 'eval.num_samples must be >= 10 (k-NN metrics need neighbours)')


def _validate_dirac(config: ml_collections.ConfigDict) -> None:
  """The Dirac-GAN's parts come together: its G, its D and its data."""
  m = config.model
  dirac = (m.g_arch == 'dirac', m.d_arch == 'dirac', config.data.source == 'toy' and config.data.toy_name == 'dirac')
  _check(
    all(dirac) or not any(dirac),
    "the Dirac-GAN needs model.g_arch='dirac', model.d_arch='dirac' and data.toy_name='dirac' (data.source='toy') "
    'together',
  )
  _check(
    not m.dirac_init or all(dirac),
    "model.dirac_init sets the Dirac-GAN's start (theta, psi): it needs model.g_arch='dirac' and model.d_arch='dirac'",
  )
  _check(not m.dirac_init or len(m.dirac_init) == 2, f'model.dirac_init must be (theta0, psi0), got {m.dirac_init}')


def _validate_game(config: ml_collections.ConfigDict) -> None:
  """Update rules and consensus that work from the game's joint field (`train_step.game_field`)."""
  t, loss = config.train, config.loss
  _check(loss.consensus_weight >= 0, f'loss.consensus_weight must be >= 0, got {loss.consensus_weight}')
  _check(
    not loss.consensus_weight or t.update_rule in ('simultaneous', 'extragradient'),
    "loss.consensus_weight regularises the simultaneous field: it needs train.update_rule 'simultaneous' "
    f"or 'extragradient', got {t.update_rule!r}",
  )
  if t.update_rule == 'extragradient' or loss.consensus_weight:
    what = 'train.update_rule=extragradient' if t.update_rule == 'extragradient' else 'loss.consensus_weight'
    _check(
      t.d_update == 'joint' and t.n_critic == 1 and not loss.info_weight,
      f"{what} updates both players from one field: it needs train.d_update='joint', train.n_critic=1 "
      'and no loss.info_weight',
    )


def _validate_cluster(t: ml_collections.ConfigDict) -> None:
  explicit = bool(t.coordinator_address) or t.num_processes != 0 or t.process_id != -1
  _check(
    t.distributed or not explicit,
    'train.coordinator_address, train.num_processes and train.process_id need train.distributed=True',
  )
  _check(t.init_timeout_s > 0, f'train.init_timeout_s must be > 0, got {t.init_timeout_s}')
  _check(t.heartbeat_timeout_s > 0, f'train.heartbeat_timeout_s must be > 0, got {t.heartbeat_timeout_s}')
  if not explicit:
    return
  _check(
    bool(t.coordinator_address) and t.num_processes > 0 and t.process_id >= 0,
    'a custom cluster needs all of train.coordinator_address, train.num_processes (> 0) and train.process_id '
    f'(>= 0), got {t.coordinator_address!r}, {t.num_processes}, {t.process_id}',
  )
  _check(
    t.process_id < t.num_processes,
    f'train.process_id={t.process_id} must be < train.num_processes={t.num_processes} (ids count from 0)',
  )


def _validate_sweep(config: ml_collections.ConfigDict) -> None:
  field, values = config.sweep.field, tuple(config.sweep.choices)
  if not field:
    _check(not values, f'sweep.choices={values} needs sweep.field, one of {SWEEPABLE}')
    return
  _check(field in SWEEPABLE, f'sweep.field must be one of {SWEEPABLE}, got {field!r}')
  _check(config.sweep.mode in SWEEP_MODES, f'sweep.mode must be one of {SWEEP_MODES}, got {config.sweep.mode!r}')
  _check(len(values) >= 1, f'sweep.field={field!r} needs sweep.choices, one value per member')
  for member in members(config):
    validate_member = member.copy_and_resolve_references()
    validate_member.sweep.field, validate_member.sweep.choices = '', ()
    if field == 'seed':
      _check(isinstance(member.seed, int), f'sweep over seed needs integer values, got {values}')
    validate(validate_member)  # each member must be a valid config on its own


def members(config: ml_collections.ConfigDict) -> list[ml_collections.ConfigDict]:
  """One config per sweep member (the field set to its value); [config] without a sweep."""
  field, values = config.sweep.field, tuple(config.sweep.choices)
  if not field:
    return [config]
  out = []
  for value in values:
    member = config.copy_and_resolve_references()
    *path, leaf = field.split('.')
    section = member
    for key in path:
      section = section[key]
    with section.ignore_type():
      section[leaf] = value if field == 'seed' else float(value)
    out.append(member)
  return out


def g_classes(config: ml_collections.ConfigDict) -> int:
  """How many values G's label takes: the data's classes (a cGAN), its latent categories, or 0 (neither)."""
  return config.model.num_classes or config.model.latent_categories


def upsamplings(size: int) -> int:
  """Number of 2x upsamplings of the DCGAN generator for images of `size`: 28 -> 2 (from 7), 32 -> 3 (from 4)."""
  ups = 0
  while size % 2 == 0 and size > 4:
    size, ups = size // 2, ups + 1
  return ups


def experiments_dir() -> pathlib.Path | None:
  """The shipped experiment configs: `ganjax/experiments/` when installed, `experiments/` in a checkout."""
  package = pathlib.Path(__file__).resolve().parent
  return next((d for d in (package / 'experiments', package.parent / 'experiments') if d.is_dir()), None)


def resolve_experiment(path: str | pathlib.Path) -> pathlib.Path:
  """`path` if that file exists; else the shipped experiment it names.

  `experiments/mnist_gan.py`, `mnist_gan.py` and `mnist_gan` all name the shipped default, so the
  README's commands work from any folder once ganjax is installed. Anything else comes back as given.
  """
  path = pathlib.Path(path)
  shipped = experiments_dir()
  if path.is_file() or shipped is None or path.parent not in (pathlib.Path('.'), pathlib.Path('experiments')):
    return path
  candidate = shipped / (path.name if path.suffix == '.py' else f'{path.name}.py')
  return candidate if candidate.is_file() else path


def shipped_experiments() -> list[str]:
  """The names of the shipped experiment configs."""
  shipped = experiments_dir()
  return sorted(p.stem for p in shipped.glob('*.py') if not p.name.startswith('_')) if shipped else []


def load_experiment(path: str | pathlib.Path) -> ml_collections.ConfigDict:
  """Loads `get_config()` from an experiment file (or a shipped experiment's name, see `resolve_experiment`)."""
  path = resolve_experiment(path)
  if not path.is_file():
    raise ConfigError(f'no experiment config at {path}; shipped experiments: {", ".join(shipped_experiments())}')
  spec = importlib.util.spec_from_file_location(f'ganjax_experiment_{path.stem}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def sibling(this_file: str, name: str) -> ml_collections.ConfigDict:
  """The config of experiment `name` in the same folder as `this_file`."""
  return load_experiment(pathlib.Path(this_file).with_name(f'{name}.py'))
