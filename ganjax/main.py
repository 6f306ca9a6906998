"""Entry point: `python -m ganjax.main --config=experiments/mnist_gan.py --workdir=runs/mnist_gan`.

Overrides go on the command line, e.g. `--config.train.num_steps=200`.
"""

import sys

from absl import app, flags, logging
from ml_collections import config_flags

from ganjax import train
from ganjax.errors import GanjaxError

_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints, metrics and samples.', required=True)
_CONFIG = config_flags.DEFINE_config_file('config', None, 'Experiment config file.', lock_config=True)
flags.mark_flags_as_required(['config'])


def _one_line(error: BaseException) -> str:
  # config_flags wraps KeyErrors in AttributeErrors; show the innermost message.
  while isinstance(error, BaseException) and error.args:
    error = error.args[0]
  return str(error).replace('\n', ' ')


def _parse_flags(argv: list[str]) -> list[str]:
  """absl's parser, with a bad config file or override reported in one line instead of a traceback."""
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
  if _CONFIG.value.train.distributed:
    import jax

    jax.distributed.initialize()  # before any computation; arguments come from the cluster's environment
  try:
    train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  except GanjaxError as e:
    sys.exit(f'ganjax: error: {e}')


if __name__ == '__main__':
  app.run(main, flags_parser=_parse_flags)
