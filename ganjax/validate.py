"""Validation of a config: every key known, every type right, every value in range, before any JAX work.

`validate(config)` raises `ConfigError` naming the first bad field, in one line. The schema is
`config.tutorial_config()`: a config must have exactly its keys, with its types.
"""

import ml_collections

from ganjax.choices import (
  AUGMENTS,
  CONV_IMPLS,
  D_ARCHS,
  D_UPDATES,
  EVAL_FEATURES,
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
from ganjax.config import RENAMED, SWEEPABLE, code_count, first_map, is_mnist, members, tutorial_config, upsamplings
from ganjax.errors import ConfigError


def _check(cond: bool, msg: str) -> None:
  if not cond:
    raise ConfigError(msg)


# () means "picked for the data": the packed dataset's shape (data.source='folder', resolved before
# validation), widths for the image size (dcgan, resnet); the architecture checks say where it is allowed.
_MAY_BE_EMPTY = ('data.image_shape', 'model.g_features', 'model.d_features')


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
      empty = '' if name in _MAY_BE_EMPTY else 'non-empty '
      _check(
        ok and (empty == '' or len(value) > 0), f'{name} must be a {empty}sequence of positive ints, got {value!r}'
      )


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
  _validate_pack(config)


def _validate_codes(m: ml_collections.ConfigDict) -> None:
  """Latent categories read as several codes: a power of the base, and a G that takes their one-hots."""
  base, k = m.latent_code_base, m.latent_categories
  if not base:
    return
  _check(base >= 2, f'model.latent_code_base must be 0 (one code) or >= 2, got {base}')
  _check(
    k >= base and base ** code_count(k, base) == k,
    f'model.latent_categories={k} must be a power of model.latent_code_base={base}',
  )
  _check(m.g_arch in ('mlp', 'dcgan'), f"model.latent_code_base needs g_arch 'mlp' or 'dcgan', got {m.g_arch!r}")


def _validate_pack(config: ml_collections.ConfigDict) -> None:
  """PacGAN's packs: whole packs per batch, one sample's worth of everything else."""
  m, batch = config.model, config.train.batch_size
  _check(m.d_pack >= 1, f'model.d_pack must be >= 1, got {m.d_pack}')
  if m.d_pack == 1:
    return
  _check(batch % m.d_pack == 0, f'train.batch_size={batch} must divide by model.d_pack={m.d_pack} (whole packs)')
  _check(
    m.num_classes == 0,
    'model.d_pack does not take class labels (a pack mixes classes; PacGAN is unconditional): set model.num_classes=0',
  )


def _validate_opt(config: ml_collections.ConfigDict) -> None:
  """The optimizer and the loss."""
  o = config.opt
  _check(o.g_lr > 0 and o.d_lr > 0, f'opt.g_lr and opt.d_lr must be > 0, got {o.g_lr}, {o.d_lr}')
  _check(o.schedule in SCHEDULES, f'opt.schedule must be one of {SCHEDULES}, got {o.schedule!r}')
  _check(0 <= o.decay_from < 1, f'opt.decay_from must be in [0, 1), got {o.decay_from}')
  _check(
    not o.decay_from or o.schedule == 'linear',
    f"opt.decay_from={o.decay_from} needs opt.schedule='linear' (a constant rate has no decay to delay)",
  )
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
  if config.data.source == 'stacked_mnist':
    _check(
      shape in ((28, 28, 3), (32, 32, 3)),
      f"data.source='stacked_mnist' makes (28, 28, 3) or, zero-padded, (32, 32, 3) images; got {shape}",
    )
    _check(config.data.stacked_size > 0, f'data.stacked_size must be > 0, got {config.data.stacked_size}')
  _check(config.data.device_cache_mb >= 0, f'data.device_cache_mb must be >= 0, got {config.data.device_cache_mb}')
  _check(not config.data.random_flip or len(shape) == 3, 'data.random_flip mirrors images (H, W, C); not for toy data')


def _validate_architectures(config: ml_collections.ConfigDict) -> None:
  """G and D and what conditions them."""
  m = config.model
  shape = tuple(config.data.image_shape)
  _check(m.g_output in G_OUTPUTS, f'model.g_output must be one of {G_OUTPUTS}, got {m.g_output!r}')
  d_archs, g_archs = allowed('model.d_arch', D_ARCHS), allowed('model.g_arch', G_ARCHS)
  _check(m.d_arch in d_archs, f'model.d_arch must be one of {d_archs}, got {m.d_arch!r}')
  _check(m.g_arch in g_archs, f'model.g_arch must be one of {g_archs}, got {m.g_arch!r}')
  if m.g_arch == 'dcgan' and len(shape) == 3:
    ups = upsamplings(shape[0])
    _check(
      first_map(shape) is not None,
      f"model.g_arch='dcgan' needs sides that halve to 4-7 in as many halvings (28, 32, 48, 64, 96, 128 ...), "
      f'got data.image_shape={shape}',
    )
    _check(
      not m.g_features or len(m.g_features) == ups,
      f"model.g_arch='dcgan' needs one g_features entry per resolution below the output ({ups} for {shape}), "
      f'got g_features={tuple(m.g_features)}; () picks them',
    )
  _validate_resnet(config, shape)
  _check(
    bool(m.g_features) or m.g_arch in ('dcgan', 'resnet', 'dirac'),
    f"model.g_features=() picks widths only for g_arch 'dcgan' or 'resnet', not {m.g_arch!r}",
  )
  _check(
    bool(m.d_features) or m.d_arch in ('conv', 'dcgan', 'resnet', 'dirac'),
    f'model.d_features=() picks widths only for image discriminators, not d_arch={m.d_arch!r}',
  )
  _check(m.g_kernel_size >= 2, f'model.g_kernel_size must be >= 2, got {m.g_kernel_size}')
  _validate_dirac(config)
  for name in ('d_conv_impl', 'g_conv_impl'):
    _check(m[name] in CONV_IMPLS, f'model.{name} must be one of {CONV_IMPLS}, got {m[name]!r}')
  _check(
    m.num_classes >= 0,
    f"model.num_classes must be >= 0 (-1, the data's classes, only with data.source='folder'), got {m.num_classes}",
  )
  _check(m.latent_categories >= 0, f'model.latent_categories must be >= 0, got {m.latent_categories}')
  _validate_codes(m)
  _check(
    not (m.num_classes and m.latent_categories),
    'model.latent_categories and model.num_classes both condition G: set one of them',
  )
  _check(
    not m.num_classes or (m.d_arch != 'mlp' and config.data.source != 'toy'),
    'model.num_classes (a conditional GAN) needs labelled images and a conv D, not toy data or the MLP D',
  )


def _validate_resnet(config: ml_collections.ConfigDict, shape: tuple) -> None:
  """The SNGAN ResNet's sizes, and the options its D does not have."""
  m = config.model
  if 'resnet' not in (m.g_arch, m.d_arch):
    return
  ups = upsamplings(shape[0]) if len(shape) == 3 else 0
  _check(
    len(shape) == 3 and ups >= 2 and first_map(shape) is not None,
    f"model.g_arch/d_arch='resnet' needs sides of at least 16 that halve to 4-7 in as many halvings "
    f'(16, 28, 32, 48, 64, 128 ...), got data.image_shape={shape}',
  )
  if m.g_arch == 'resnet':
    _check(
      not m.g_features or len(m.g_features) == ups,
      f"model.g_arch='resnet' needs one g_features entry per upsampling block ({ups} for {shape}), "
      f'got {tuple(m.g_features)}; () picks 256 each',
    )
  if m.d_arch == 'resnet':
    _check(
      not m.d_features or len(m.d_features) == ups + 1,
      f"model.d_arch='resnet' needs one d_features entry per block ({ups + 1} for {shape}: the first, "
      f'{ups - 2} more downsampling, 2 plain), got {tuple(m.d_features)}; () picks 128 each',
    )
    unsupported = [
      name
      for name, on in (
        ('model.d_dropout', m.d_dropout),
        ('model.d_input_noise', m.d_input_noise),
        ('model.d_minibatch_std', m.d_minibatch_std),
        ('model.d_hidden', m.d_hidden),
        ("model.d_norm='batch'", m.d_norm != 'none'),
        ('loss.info_weight', config.loss.info_weight),
      )
      if on
    ]
    _check(not unsupported, f"model.d_arch='resnet' does not implement {', '.join(unsupported)}")


def _validate_rules(config: ml_collections.ConfigDict) -> None:
  """The cluster, D updates per step and the update rule."""
  t = config.train
  _validate_cluster(t)
  _check(t.n_critic >= 1, f'train.n_critic must be >= 1, got {t.n_critic}')
  _check(t.g_steps >= 1, f'train.g_steps must be >= 1, got {t.g_steps}')
  _check(
    not t.g_reuses_fakes or (t.n_critic == 1 and t.g_steps == 1),
    f'train.g_reuses_fakes needs one fake batch and one G update a step: train.n_critic=1 and train.g_steps=1, '
    f'got {t.n_critic} and {t.g_steps}',
  )
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
    not config.data.clean_split or config.data.source in ('shipped', 'stacked_mnist'),
    "data.clean_split splits the shipped MNIST digits; it needs data.source='shipped' or 'stacked_mnist'",
  )
  _check(config.data.limit >= 0, f'data.limit must be >= 0, got {config.data.limit}')
  _check(config.checkpoint.every_steps >= 0, 'checkpoint.every_steps must be >= 0')
  _check(config.checkpoint.max_to_keep > 0, 'checkpoint.max_to_keep must be > 0')
  member = config.checkpoint.init_member
  _check(member >= -1, f'checkpoint.init_member must be a member index >= 0 (or -1: none), got {member}')
  _check(member == -1 or config.checkpoint.init_from, 'checkpoint.init_member needs checkpoint.init_from (a sweep)')
  _check(config.eval.every_steps >= 0, 'eval.every_steps must be >= 0')
  _check(config.eval.num_samples >= 10, 'eval.num_samples must be >= 10 (k-NN metrics need neighbours)')
  features = config.eval.features
  _check(features in EVAL_FEATURES, f'eval.features must be one of {EVAL_FEATURES}, got {features!r}')
  _check(
    features != 'classifier' or is_mnist(config.data),
    "eval.features='classifier' judges 28x28x1 MNIST digits with ganjax's MNIST classifier; "
    f"these data are {config.data.source!r} of shape {tuple(config.data.image_shape)}: use 'inception' or 'auto'",
  )
  _check(
    features != 'inception' or len(config.data.image_shape) == 3,
    "eval.features='inception' needs images (H, W, C)",
  )
  _check(config.eval.reference_num >= 0, f'eval.reference_num must be >= 0, got {config.eval.reference_num}')
  _check(config.eval.batch_size > 0, f'eval.batch_size must be > 0, got {config.eval.batch_size}')
  _check(config.eval.standing_stats >= 0, f'eval.standing_stats must be >= 0, got {config.eval.standing_stats}')


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
  """Update rules and consensus that work from the game's joint field (`game.game_field`)."""
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
      t.d_update == 'joint' and t.n_critic == 1 and t.g_steps == 1 and not loss.info_weight,
      f"{what} updates both players from one field: it needs train.d_update='joint', train.n_critic=1, "
      'train.g_steps=1 and no loss.info_weight',
    )
    _check(not t.g_reuses_fakes, f'{what} draws no fake batch of its own for G: train.g_reuses_fakes does not apply')


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
