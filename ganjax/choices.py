"""The allowed values of the config's string fields, declared once (no JAX import: config validation uses them).

The modules that implement a choice key their tables by these names, and check at import that
they cover exactly these (e.g. `losses.TABLE`, `train_step._D_UPDATES`). Code outside ganjax adds
a loss, a network or a data source for its own process through `losses.register`,
`models.register_generator` / `register_discriminator` and `input_pipeline.register_source`,
which record the new name here (docs/extending.md).
"""

LOSSES = ('bce', 'minimax', 'hinge', 'lsgan', 'wgan')
D_UPDATES = ('separate', 'joint')
UPDATE_RULES = ('alternating', 'simultaneous', 'extragradient', 'optimistic')
OPTIMIZERS = ('adam', 'sgd')
SCHEDULES = ('constant', 'linear')
NORMS = ('none', 'batch')
SOURCES = ('shipped', 'idx', 'tfds', 'toy', 'folder', 'stacked_mnist')
TOYS = ('ring8', 'grid25', 'dirac')
G_OUTPUTS = ('tanh', 'linear')
G_ARCHS = ('mlp', 'dcgan', 'resnet', 'dirac')
D_ARCHS = ('conv', 'dcgan', 'resnet', 'mlp', 'dirac')
CONV_IMPLS = ('auto', 'patches', 'xla')
SWEEP_MODES = ('vmap', 'unroll')
EVAL_FEATURES = ('auto', 'classifier', 'inception')
AUGMENTS = ('color', 'translation', 'cutout')  # DiffAugment transforms, in the order they apply


def augment_policy(spec: str) -> tuple[str, ...]:
  """'translation, cutout' -> ('translation', 'cutout'); '' -> ()."""
  return tuple(name.strip() for name in spec.split(',') if name.strip())


# Names added at run time by the register functions, per config field.
_ADDED: dict[str, list[str]] = {}


def add(field: str, name: str) -> None:
  """Allows `name` as a value of the config field `field` (e.g. 'loss.name') in this process."""
  names = _ADDED.setdefault(field, [])
  if name not in names:
    names.append(name)


def allowed(field: str, builtin: tuple[str, ...]) -> tuple[str, ...]:
  """The values `field` may take: ganjax's own, then those added in this process."""
  return builtin + tuple(_ADDED.get(field, ()))
