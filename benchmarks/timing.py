"""Timing shared by the benchmark scripts: medians over timed windows, never a single measurement."""

import statistics
import time


def median_rate(run, calls_per_window: int, windows: int) -> float:
  """Calls per second, the median over `windows` windows of `run(calls_per_window)`.

  `run(n)` makes n calls and waits for their results; warm it up (compile) before.
  """
  rates = []
  for _ in range(windows):
    t0 = time.perf_counter()
    run(calls_per_window)
    rates.append(calls_per_window / (time.perf_counter() - t0))
  return statistics.median(rates)


def median_ms(fn, windows: int, calls: int = 10) -> float:
  """Milliseconds per call of `fn()` (which waits for its result): one warm-up call, then `median_rate`."""
  fn()

  def run(n):
    for _ in range(n):
      fn()

  return 1e3 / median_rate(run, calls, windows)
