"""Settings of the host process that XLA:CPU's speed depends on: glibc's allocator.

XLA:CPU allocates every executable's temporary buffers afresh on each call, from the thread that runs
it. glibc gives such a thread its own arena, whose heaps are at most 64 MiB: a larger buffer is
mmap'd and unmapped again at free, so every call touches fresh pages and takes a page fault per
4 KiB: the default experiment's step at batch 256 took 24,467 of them (96 MiB). With one arena, no
mmap and no trimming, freed memory is kept and reused, and the step runs faster; batch 64's buffers
fit an arena and see no change (README, Performance, `benchmarks/step_speed.py`).
"""

import ctypes
import os

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
