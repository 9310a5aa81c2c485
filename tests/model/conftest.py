"""Training tests run torch on one thread: the tiny model gains nothing from more, and on a shared 2-core machine
OpenMP's spinning threads make a busy CPU many times slower."""

from __future__ import annotations

from torch_threads import one_torch_thread  # noqa: F401  (autouse: torch on one thread here)
