"""The health of a shared resource a process can do without for a while.

The shared results cache and the shared sign-in state both work this way: after a failure
the resource rests (callers fall back to their own memory meanwhile) and is tried again
later; the first failure is one warning, repeats are debug messages, and the recovery is
logged once, so a broken Redis or a locked file never floods the log.
"""

from __future__ import annotations

import logging
import threading
import time


def reason(error: BaseException) -> str:
    """An error in one short line for the log: the OS's words when there are some."""
    text = getattr(error, "strerror", None) or str(error).strip() or type(error).__name__
    return " ".join(str(text).split())[:300]


class Resting:
    def __init__(self, log: logging.Logger):
        self.log = log
        self._lock = threading.Lock()
        self._until = 0.0
        self.failing = False  # warned, and not yet working again

    def resting(self) -> bool:
        """True while the resource rests after a failure: do not try it now."""
        with self._lock:
            return time.monotonic() < self._until

    def failed(self, seconds: float, warning: str, repeat: str) -> None:
        """Rest ``seconds``; log ``warning`` for a first failure, ``repeat`` (debug) after."""
        with self._lock:
            self._until = time.monotonic() + seconds
            first, self.failing = not self.failing, True
        if first:
            self.log.warning(warning)
        else:
            self.log.debug(repeat)

    def worked(self, message: str) -> None:
        """The resource answered: log ``message`` once if it had failed."""
        if not self.failing:
            return
        with self._lock:
            recovered, self.failing = self.failing, False
        if recovered:
            self.log.info(message)
