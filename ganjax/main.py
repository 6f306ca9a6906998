"""Entry point: `python -m ganjax.main --config=experiments/mnist_gan.py --workdir=runs/mnist_gan`.

Overrides go on the command line, e.g. `--config.train.num_steps=200`.
"""

import pathlib
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from ganjax import config as config_lib
from ganjax import distributed, evaluate, host, input_pipeline, train
from ganjax.errors import GanjaxError
from ganjax.validate import validate

_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints, metrics and samples.', required=True)
_CONFIG = config_flags.DEFINE_config_file('config', None, 'Experiment config file.', lock_config=True)
flags.mark_flags_as_required(['config'])


def _one_line(error: BaseException) -> str:
  # config_flags wraps KeyErrors in AttributeErrors; show the innermost message.
  while isinstance(error, BaseException) and error.args:
    error = error.args[0]
  return str(error).replace('\n', ' ')


def _shipped_config(argv: list[str]) -> list[str]:
  """argv with `--config=NAME` pointing at the shipped experiment NAME when no such file is here."""
  out = []
  for arg in argv:
    if arg.startswith('--config=') and not pathlib.Path(arg.split('=', 1)[1]).is_file():
      path = arg.split('=', 1)[1]
      resolved = config_lib.resolve_experiment(path)
      if not resolved.is_file():
        names = ', '.join(config_lib.shipped_experiments())
        sys.exit(f'ganjax: error: bad --config: no config file {path}; shipped experiments: {names}')
      arg = f'--config={resolved}'
    out.append(arg)
  return out


def _parse_flags(argv: list[str]) -> list[str]:
  """absl's parser, with a bad config file or override reported in one line instead of a traceback."""
  argv = _shipped_config(argv)
  for arg in argv:
    for old, new in config_lib.RENAMED.items():
      if arg.startswith(f'--config.{old}='):
        sys.exit(f'ganjax: error: {old} is now {new} (same values, and more); rename it: --config.{new}=...')
  try:
    argv = flags.FLAGS(argv)
    _CONFIG.value.get('seed')  # a config file that failed to load raises its error here
  except flags.Error as e:
    sys.exit(f'ganjax: error: {e}')
  except (AttributeError, KeyError, TypeError, ValueError, OSError, ImportError, SyntaxError) as e:
    sys.exit(f'ganjax: error: bad --config: {_one_line(e)}')
  return argv


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)  # Orbax logs every save step at INFO.
  host.prepare()  # before JAX starts its threads or compiles
  try:
    config = input_pipeline.with_data_shapes(_CONFIG.value)  # a packed dataset's shape and classes
    validate(config)  # before any JAX work, the cluster's included
    inception = bool(config.eval.every_steps) and evaluate.features_of(config) == 'inception'
    host.prefer_eigen_convolutions(config.model, inception=inception)
    if config.train.distributed:
      distributed.initialize(config.train)
    train.train_and_evaluate(config, _WORKDIR.value)
  except GanjaxError as e:
    sys.exit(f'ganjax: error: {" ".join(str(e).split())}')
  except Exception as e:
    if _CONFIG.value.train.distributed:
      distributed.exit_if_lost_a_process(e)
    raise


if __name__ == '__main__':
  app.run(main, flags_parser=_parse_flags)
