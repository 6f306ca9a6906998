"""Settings of the host process that every ganjax command makes before JAX starts: glibc's allocator,
JAX's persistent compilation cache, and XLA:CPU's convolution library for runs that use lax.conv.

XLA:CPU allocates every executable's temporary buffers afresh on each call, from the thread that runs
it. glibc gives such a thread its own arena, whose heaps are at most 64 MiB: a larger buffer is
mmap'd and unmapped again at free, so every call touches fresh pages and takes a page fault per
4 KiB: the default experiment's step at batch 256 took 24,467 of them (96 MiB). With one arena, no
mmap and no trimming, freed memory is kept and reused, and the step runs faster; batch 64's buffers
fit an arena and see no change (docs/performance.md, `benchmarks/step_speed.py`).
"""

import ctypes
import os
import pathlib
import subprocess
import sys
import tempfile

# mallopt(3) parameters, from glibc's malloc.h.
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8
# The environment's own choices (see mallopt(3)) win over ours.
_USER_SETTINGS = ('MALLOC_ARENA_MAX', 'MALLOC_MMAP_MAX_', 'MALLOC_TRIM_THRESHOLD_', 'MALLOC_MMAP_THRESHOLD_')


def keep_freed_memory(environ=os.environ) -> bool:
  """Tells glibc's malloc to keep and reuse freed memory (one arena, no mmap, no trimming); True if it did.

  Call it before JAX runs anything: a thread that has already allocated keeps its arena. A no-op
  (False) without glibc (macOS, musl) or when the environment sets any MALLOC_* tunable above.
  The process keeps its peak memory until it exits, as with tcmalloc or jemalloc.
  """
  if any(name in environ for name in _USER_SETTINGS):
    return False
  try:
    mallopt = ctypes.CDLL(None).mallopt
  except (OSError, AttributeError):
    return False
  mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
  settings = ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1))
  return all(mallopt(param, value) == 1 for param, value in settings)


# The cache's bound: beyond it JAX evicts the least recently used programs. Setting a bound also makes
# JAX take a file lock around every read and write, which keeps concurrent processes (sweeps in
# parallel, several hosts on one filesystem, two runs at once) from reading a half-written entry.
CACHE_MAX_BYTES = 4 * 2**30
# Every program: a run compiles hundreds of small ones (initialisers, the sampler, the metrics) besides
# the train step, and together they are over half of a cached start's saving (a few MB on disk).
CACHE_MIN_COMPILE_S = 0.0
CACHE_ENV = 'GANJAX_COMPILATION_CACHE'


def compilation_cache_dir(environ=os.environ) -> pathlib.Path | None:
  """Where the cache lives: GANJAX_COMPILATION_CACHE (a path, or `off`), else $XDG_CACHE_HOME/ganjax.

  None when it is off, and when the environment already chose JAX's own JAX_COMPILATION_CACHE_DIR
  (which JAX then uses as it is).
  """
  setting = environ.get(CACHE_ENV, '').strip()
  if setting.lower() in ('off', '0', 'false', 'no', 'none'):
    return None
  if setting:
    return pathlib.Path(setting).expanduser()
  if environ.get('JAX_COMPILATION_CACHE_DIR'):
    return None
  return cache_root(environ)


def cache_root(environ=os.environ) -> pathlib.Path:
  """ganjax's caches: $XDG_CACHE_HOME/ganjax (~/.cache/ganjax): compiled programs, converted Inception weights."""
  root = environ.get('XDG_CACHE_HOME') or pathlib.Path.home() / '.cache'
  return pathlib.Path(root) / 'ganjax'


def enable_compilation_cache(environ=os.environ) -> pathlib.Path | None:
  """Turns on JAX's persistent compilation cache (see `compilation_cache_dir`); returns its folder.

  A second run of the same config loads its compiled programs instead of compiling them again.
  A folder that cannot be written gives one warning line on stderr and the run goes on uncached.
  Call it before JAX compiles anything.
  """
  path = compilation_cache_dir(environ)
  if path is None:
    return None
  try:
    path.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path, prefix='.write_test'):
      pass
  except OSError as e:
    print(
      f'ganjax: warning: the compilation cache {path} cannot be written ({e.strerror or e}); compiling from scratch '
      f'(set {CACHE_ENV}=off or to another folder)',
      file=sys.stderr,
      flush=True,
    )
    return None
  import jax

  jax.config.update('jax_compilation_cache_dir', str(path))
  jax.config.update('jax_compilation_cache_max_size', CACHE_MAX_BYTES)
  jax.config.update('jax_persistent_cache_min_compile_time_secs', CACHE_MIN_COMPILE_S)
  return path


def prepare(environ=os.environ) -> None:
  """What every ganjax command does first, before JAX starts its threads or compiles."""
  keep_freed_memory(environ)
  enable_compilation_cache(environ)


# XLA:CPU sends convolutions to YNNPACK by default; this keeps dots and reductions there and gives
# convolutions to Eigen, which ran lax.conv's steps faster on the development machine (docs/performance.md).
EIGEN_CONV_FLAG = '--xla_cpu_experimental_ynn_fusion_type=individual_dot,reduce'


def xla_knows(flag: str) -> bool:
  """Whether this jaxlib accepts an XLA flag: XLA aborts on an unknown one, so ask a throwaway process."""
  probe = [sys.executable, '-c', "import jax; jax.devices('cpu')"]
  env = {**os.environ, 'XLA_FLAGS': flag, 'JAX_PLATFORMS': 'cpu'}
  try:
    return subprocess.run(probe, env=env, capture_output=True, timeout=120).returncode == 0
  except (OSError, subprocess.TimeoutExpired):
    return False


def prefer_eigen_convolutions(model=None, environ=os.environ, inception: bool = False) -> bool:
  """Adds EIGEN_CONV_FLAG to XLA_FLAGS for a run that uses lax.conv (`model.*_conv_impl='xla'`, or the
  `resnet` G or D, whose stride-1 convolutions are lax.convs at any setting) or runs the FID Inception
  (`inception`), when the installed jaxlib knows the flag and XLA_FLAGS do not already choose; True
  when it did. Must run before JAX starts its backends (XLA reads its flags once). Patch convolutions
  (the CPU default of the other models) do not use lax.conv, so their runs are left alone. Eigen's
  convolutions beat both YNNPACK's and im2col patches for the ResNet's 3x3 stride-1 convolutions
  (benchmarks/resnet_convs.py) and for the Inception's (benchmarks/inception_speed.py; docs/performance.md)."""
  flags = environ.get('XLA_FLAGS', '')
  lax_conv = inception or (
    model is not None and ('xla' in (model.d_conv_impl, model.g_conv_impl) or 'resnet' in (model.g_arch, model.d_arch))
  )
  if not lax_conv or 'ynn_fusion_type' in flags:
    return False
  if not xla_knows(EIGEN_CONV_FLAG):
    return False
  environ['XLA_FLAGS'] = f'{flags} {EIGEN_CONV_FLAG}'.strip()
  return True
