"""The tutorial's configuration, which is also the schema every experiment follows.

`experiments/*.py` start from `tutorial_config()` and override fields; `ganjax.validate` checks
that a config has exactly these keys, with these types and sensible values, before any JAX code
runs. Also here: loading experiment files, and splitting a sweep into its members' configs.
"""

import importlib.util
import json
import pathlib

import ml_collections

from ganjax.errors import ConfigError

# Fields a sweep may vary: the seed, or a scalar that the compiled step takes as data.
SWEEPABLE = ('seed', 'opt.g_lr', 'opt.d_lr', 'loss.real_label')


def tutorial_config() -> ml_collections.ConfigDict:
  """The tutorial GAN exactly: MLP G, strided-conv D, BCE, Adam(2e-4, 0.5), batch 64."""
  c = ml_collections.ConfigDict()
  c.seed = 0

  c.data = ml_collections.ConfigDict()
  c.data.source = 'shipped'  # 'shipped' | 'idx' | 'tfds' | 'toy' | 'folder' (packed by python -m ganjax.dataset)
  # | 'stacked_mnist' (three shipped digits as R, G, B: 1,000 modes; ganjax.stacked_mnist)
  c.data.path = ''  # source='folder': the packed dataset
  c.data.toy_name = 'ring8'  # source='toy': 'ring8' | 'grid25' (2-D mixtures of Gaussians)
  c.data.toy_size = 50_000  # source='toy': number of points drawn from data.toy_name
  c.data.dir = ''  # folder of idx .gz files (source='idx') or TFDS data_dir ('tfds')
  c.data.tfds_name = 'mnist'
  c.data.split = 'train'
  c.data.tfds_download = False  # True lets TFDS download and prepare (needs network)
  c.data.image_shape = (28, 28, 1)  # source='folder': () takes the packed dataset's
  c.data.limit = 0  # use only the first N images (0 = all); for smoke tests
  # source='shipped': train G on the classifier's half only (the first 5,000 digits), so the evaluation's
  # reference (the other 5,000) is data G never saw. False: G trains on all 10,000.
  c.data.clean_split = False
  c.data.stacked_size = 128_000  # source='stacked_mnist': number of stacks (PacGAN's 128,000)
  c.data.stacked_seed = 0  # source='stacked_mnist': which digits each stack holds (not the run's seed)
  # Images larger than this (MiB) stay on the host, memory-mapped, and stream to the devices each step
  # (the same batches); smaller ones are copied to every device once.
  c.data.device_cache_mb = 1024
  c.data.random_flip = False  # mirror each training image left to right with probability 1/2

  c.model = _model_section()

  c.opt = ml_collections.ConfigDict()
  c.opt.name = 'adam'  # 'adam' (the tutorial) | 'sgd' (plain gradient descent, e.g. for the Dirac-GAN)
  c.opt.g_lr = 2e-4
  c.opt.d_lr = 2e-4
  c.opt.b1 = 0.5
  c.opt.b2 = 0.999
  c.opt.eps = 1e-7  # Keras' Adam epsilon
  c.opt.schedule = 'constant'  # 'constant' | 'linear': both learning rates decay linearly to 0 at train.num_steps
  c.opt.decay_from = 0.0  # 'linear': the fraction of training held at the full rate before the decay begins

  c.loss = _loss_section()
  c.train = _train_section()

  c.checkpoint = ml_collections.ConfigDict()
  c.checkpoint.every_steps = 1000  # 0: only at the end
  c.checkpoint.max_to_keep = 3
  c.checkpoint.enabled = True
  c.checkpoint.resume = True  # False: move existing checkpoints aside and start fresh
  c.checkpoint.init_from = ''  # another run's workdir: start from its latest params (warm start)
  c.checkpoint.init_member = -1  # init_from a sweep: the member (0-based) whose params start this run

  c.eval = _eval_section()

  # K independent GANs trained side by side in one program (jax.vmap over stacked states).
  c.sweep = ml_collections.ConfigDict()
  c.sweep.field = ''  # '' (no sweep) or one of SWEEPABLE, e.g. 'seed' or 'opt.g_lr'
  c.sweep.choices = ()  # one member per value; member k writes to WORKDIR/member_k
  # 'vmap': members batched by jax.vmap; 'unroll': one after another in the same program (use it with
  # model.d_conv_impl='xla' on CPU, where vmapped lax.convs over stacked weights become slow grouped convolutions).
  c.sweep.mode = 'vmap'
  return c


def _eval_section() -> ml_collections.ConfigDict:
  """The periodic evaluation: how often, how many samples, and what judges them."""
  e = ml_collections.ConfigDict()
  e.every_steps = 1000  # 0 turns evaluation during training off
  e.num_samples = 1000
  # What the samples are embedded with: 'classifier' (ganjax's MNIST classifier; MNIST runs only),
  # 'inception' (the FID Inception: FID, KID, IS; needs pytorch-fid's weights), or 'auto': the
  # classifier for MNIST, else the Inception when its weights are found, else pixel statistics alone.
  e.features = 'auto'
  e.inception_weights = ''  # pt_inception-2015-12-05-6726825d.pth; '' : $GANJAX_INCEPTION_WEIGHTS
  e.allow_other_weights = False  # other Inception weights: numbers not comparable with papers'
  e.reference_num = 10_000  # training images behind the cached Inception reference (0: all)
  e.batch_size = 100  # images per Inception batch (and per batch of the standing statistics)
  # > 0: samples and evaluation normalise G's BatchNorm layers with statistics averaged over this many
  # fresh samples (BigGAN's standing statistics) instead of the running averages, which trail G; the
  # step then skips the pass of G that advances an EMA generator's own statistics
  e.standing_stats = 0
  return e


def _loss_section() -> ml_collections.ConfigDict:
  """The loss, its penalties and the InfoGAN and consensus terms."""
  loss = ml_collections.ConfigDict()
  loss.name = 'bce'  # 'bce' (the tutorial) | 'minimax' | 'hinge' | 'lsgan'; see ganjax/losses.py
  loss.real_label = 1.0  # < 1: one-sided label smoothing
  loss.gp_weight = 0.0  # WGAN-GP gradient penalty weight (10 in the paper); needs train.d_update='joint'
  # InfoGAN (Chen et al. 2016): > 0 adds a Q head to D that predicts G's latent category from a fake,
  # and this weight times its cross-entropy to both D's and G's losses (needs model.latent_categories)
  loss.info_weight = 0.0
  loss.info_schedule = 'constant'  # 'constant' | 'linear': the InfoGAN weight decays linearly to 0 at train.num_steps
  # consensus optimisation (Mescheder et al. 2017): gamma of the gamma/2 ||v||^2 regulariser of the
  # game's joint gradient field v, added to both players (simultaneous or extragradient rules)
  loss.consensus_weight = 0.0
  loss.r1_weight = 0.0  # R1 penalty gamma on real images (Mescheder et al. 2018)
  return loss


def _model_section() -> ml_collections.ConfigDict:
  """The networks: G's and D's architectures and their switches."""
  m = ml_collections.ConfigDict()
  m.latent_dim = 100
  # 'mlp' (the tutorial) | 'dcgan' (g_features: channels per resolution, e.g. (256, 128); () picks them)
  # | 'resnet' (the SNGAN ResNet, ganjax/resnet.py; g_features: channels per upsampling block, () 256 each)
  m.g_arch = 'mlp'
  m.g_features = (256, 512, 1024)
  m.g_kernel_size = 5  # model.g_arch='dcgan': kernel of the stride-2 transposed convolutions
  m.g_norm = 'none'  # 'none' | 'batch'
  m.g_bn_momentum = 0.99
  m.g_leaky_slope = 0.0  # 0: ReLU in G's hidden layers (the tutorial)
  m.g_output = 'tanh'  # 'tanh' (images in [-1, 1]) | 'linear' (toy 2-D data)
  # 'conv' (the tutorial) | 'dcgan' (5x5 kernels) | 'resnet' (the SNGAN ResNet, always spectrally normalised)
  # | 'mlp' (toy 2-D data; d_features are widths). d_features=() picks them for the image size.
  m.d_arch = 'conv'
  m.d_features = (64, 128)
  m.d_leaky_slope = 0.2
  m.d_dropout = 0.0
  m.d_input_noise = 0.0  # std of instance noise on D's inputs
  # DiffAugment of every D input, real or fake (augment.py): '' (none) or a comma-separated subset of
  # 'color,translation,cutout'
  m.d_augment = ''
  m.d_minibatch_std = False  # minibatch standard-deviation channel in D
  m.d_hidden = 0  # > 0: a Dense + LeakyReLU layer of this width before D's logit (conv D)
  m.d_norm = 'none'  # 'none' | 'batch': BatchNorm after D's convolutions but the first (conv D only)
  m.d_spectral_norm = False  # spectral normalisation of every D layer
  # PacGAN (Lin et al. 2018): D judges packs of this many samples, concatenated along channels; every pack
  # is all real or all fake. 1: one sample at a time.
  m.d_pack = 1
  # 'patches' (slices + one matmul, patch_conv.PatchConv) | 'xla' (lax.conv): the same function; patches are
  # faster on XLA:CPU (docs/performance.md), cuDNN's and the TPU's own convolutions elsewhere. 'auto':
  # patches on a CPU backend, xla on any other (models.conv_impl).
  m.d_conv_impl = 'auto'
  # The same choice for model.g_arch='dcgan's transposed convolutions (patch_conv.PatchConvTranspose).
  m.g_conv_impl = 'auto'
  # The Dirac-GAN (g_arch = d_arch = 'dirac'): its start (theta0, psi0); () starts at (1, 1)
  m.dirac_init = ()
  # > 0: class-conditional G (label embedding) and projection D on the data's labels; -1: as many classes
  # as the packed dataset's label folders (data.source='folder')
  m.num_classes = 0
  # > 0: G also takes a category drawn uniformly from this many, which D never sees (z times a learned
  # embedding, as a cGAN's label): a mixture of generators sharing their weights, for data in separate clusters
  m.latent_categories = 0
  # > 0: read each latent category as its digits in this base, several independent codes (InfoGAN's): G sees
  # their one-hots beside z and Q guesses each apart (1,000 categories in base 10: three 10-way codes)
  m.latent_code_base = 0
  return m


def _train_section() -> ml_collections.ConfigDict:
  """The step and the loop: batch, updates, rules, logging, devices and hosts."""
  t = ml_collections.ConfigDict()
  t.num_steps = 5000
  t.batch_size = 64
  t.d_update = 'separate'  # 'separate' (the tutorial) | 'joint'
  t.n_critic = 1  # D updates (each on its own real batch) per G update
  t.g_steps = 1  # G updates per step, each on fresh latents, after D's (PacGAN's code takes 2)
  # True: G's update on the latents of D's fake batch instead of fresh ones (PyTorch's DCGAN example)
  t.g_reuses_fakes = False
  # 'alternating': G's update sees the updated D (the tutorial) | 'simultaneous': both from the step's states |
  # 'extragradient': a look-ahead step of both, then the update from the look-ahead's field | 'optimistic':
  # simultaneous, with optimistic Adam or GD (the previous gradient kept in the optimizer state)
  t.update_rule = 'alternating'
  # bfloat16 compute with float32 params and optimizer states (flax's examples' half_precision), for GPU/TPU
  t.half_precision = False
  t.g_ema_decay = 0.0  # > 0: keep an EMA of G's params, used for samples and evaluation
  # True: jax.distributed.initialize() before training (several processes or hosts). With the three
  # cluster fields empty, JAX detects the cluster (TPU pod slices, SLURM, Open MPI); set them for a local
  # or custom cluster: every process gets the same address and count and its own id.
  t.distributed = False
  t.coordinator_address = ''  # host:port of process 0's coordinator, e.g. 'localhost:12355'
  t.num_processes = 0  # 0: detected
  t.process_id = -1  # -1: detected; else 0 .. num_processes - 1
  t.init_timeout_s = 300  # how long to wait for the coordinator and the other processes
  # a process silent this long counts as dead: the others stop (one line each) instead of waiting forever
  t.heartbeat_timeout_s = 100
  t.log_every_steps = 100
  t.sample_every_steps = 500
  t.num_sample_images = 64  # the fixed latent batch drawn as a square grid
  return t


# Keys that ganjax renamed: an old config or override that sets one gets one line naming the new key.
RENAMED = {'train.update_order': 'train.update_rule'}


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


def g_classes(model: ml_collections.ConfigDict) -> int:
  """How many values G's label takes (from the config's `model` section): the data's classes (a cGAN),
  its latent categories, or 0 (neither)."""
  return model.num_classes or model.latent_categories


def code_count(categories: int, base: int) -> int:
  """The fewest digits n in `base` with base**n >= categories: InfoGAN's codes of `model.latent_code_base`
  (validate checks that base**n == categories)."""
  n, size = 0, 1
  while size < categories:
    n, size = n + 1, size * base
  return n


def upsamplings(size: int) -> int:
  """Number of 2x upsamplings from the DCGAN and ResNet generators' first feature map to a side of `size`:
  halved while even and over 7, so 28 -> 2 (from 7), 32 -> 3 (from 4), 48 -> 3 (from 6), 64 -> 4, 128 -> 5."""
  ups = 0
  while size % 2 == 0 and size > 7:
    size, ups = size // 2, ups + 1
  return ups


MNIST_SHAPE = (28, 28, 1)


def is_mnist(data: ml_collections.ConfigDict) -> bool:
  """Whether `data` (a config's data section) are MNIST digits, the only images ganjax's classifier judges."""
  shape_ok = tuple(data.image_shape) == MNIST_SHAPE
  mnist_tfds = data.source == 'tfds' and data.tfds_name == 'mnist'
  return shape_ok and (data.source in ('shipped', 'idx') or mnist_tfds)


def first_map(image_shape) -> tuple[int, int, int] | None:
  """(upsamplings, height, width) of the DCGAN and ResNet generators' first feature map for images
  (H, W, ...): both sides halved as often, to 4-7 each; None for a shape that has no such map."""
  height, width = image_shape[0], image_shape[1]
  ups = upsamplings(height)
  if upsamplings(width) != ups or min(height, width) // 2**ups < 4:
    return None
  return ups, height // 2**ups, width // 2**ups


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


def _flatten(tree: dict, prefix: str = '') -> dict:
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      flat.update(_flatten(value, f'{prefix}{key}.'))
    else:
      flat[f'{prefix}{key}'] = value
  return flat


def config_changes(saved: dict, config: ml_collections.ConfigDict) -> str | None:
  """One line listing the fields in which `config` differs from a checkpoint's saved config; None if none.

  Resuming with another `train.num_steps` is the usual way to train longer, but under a linear
  schedule it also stretches the decay, so the line says so.
  """
  before = _flatten(json.loads(json.dumps(saved)))
  now = _flatten(json.loads(config.to_json_best_effort()))
  keys = sorted(set(before) | set(now))
  changed = [
    f'{k}: {before.get(k, "(absent)")} -> {now.get(k, "(absent)")}' for k in keys if before.get(k) != now.get(k)
  ]
  if not changed:
    return None
  line = f"this run's config differs from the checkpoint's in {len(changed)} field(s): {'; '.join(changed)}"
  schedules = {'opt.schedule': config.opt.schedule, 'loss.info_schedule': config.loss.info_schedule}
  linear = [name for name, value in schedules.items() if value == 'linear']
  if before.get('train.num_steps') != now.get('train.num_steps') and linear:
    line += (
      f'; {" and ".join(linear)} decay linearly over train.num_steps, so the remaining steps follow the new '
      "length and their rates differ from the original run's"
    )
  return line
