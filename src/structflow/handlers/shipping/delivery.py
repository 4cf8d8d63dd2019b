"""
Delivering one batch: an attempt through the sink, then what its :class:`Outcome` calls for.

==========  ======================================================================
outcome     what the sender does
==========  ======================================================================
``ok``      counts the entries delivered
``split``   sends the two halves of the batch; a single entry is dropped (``too_large``)
``reject``  drops the entries (``rejected``); ``unsendable`` too, saying so
``partial`` counts the delivered, drops the rejected, retries the rest
``retry``   waits (exponential backoff with jitter, or ``Retry-After``) and tries
            again, until ``max_retries`` is spent (``retries_exhausted``)
==========  ======================================================================

The worker keeps the counters and the shutdown deadline; a
:class:`Deliverer` reports to it through :class:`Tally`.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from structflow.handlers.shipping.diagnostics import Diagnostics
from structflow.handlers.shipping.settings import WorkerSettings
from structflow.handlers.shipping.sink import Outcome, Sink, release_exception

__all__ = ["MAX_RETRY_AFTER", "Deliverer", "Tally"]

#: A Retry-After longer than this is capped (a misconfigured server must not
#: stall shipping for days).
MAX_RETRY_AFTER = 300.0


class Tally(Protocol):
    """What a :class:`Deliverer` needs from its worker: counters and the shutdown clock."""

    def delivered(self, n: int, nbytes: int) -> None:
        """Count *n* entries (*nbytes* of payload) the receiver confirmed."""

    def gave_up(self, reason: str, n: int) -> None:
        """Count *n* entries of the batch given up for *reason*."""

    def retried(self, n: int) -> None:
        """Count *n* entries about to be sent again."""

    def attempt_timeout(self) -> float:
        """Seconds the next attempt may take (cut at shutdown's deadline; <= 0: no time left)."""

    def pause(self, delay: float) -> bool:
        """Wait *delay* seconds before a retry; False when shutdown's deadline cuts the wait."""


@dataclass(slots=True)
class _Batch:
    """The parts of a batch still to send (a 413 splits one), and the attempt at the first."""

    parts: deque[list[bytes]]
    attempt: int = 0

    def next_part(self) -> None:
        """The first part is settled (delivered or given up): on to the next, afresh."""
        self.parts.popleft()
        self.attempt = 0

    def left(self) -> int:
        return sum(len(p) for p in self.parts)


class Deliverer:
    """
    Delivers batches through *sink* as *settings* say, on the sender thread.

    Args:
        sink: makes the attempts.
        settings: ``max_retries``, ``retry_backoff``, ``retry_max_backoff``.
        diagnostics: where retries and drops are reported.
        tally: the worker's counters and shutdown clock.
    """

    def __init__(
        self, sink: Sink, settings: WorkerSettings, diagnostics: Diagnostics, tally: Tally
    ) -> None:
        self.sink = sink
        self.settings = settings
        self.diagnostics = diagnostics
        self.tally = tally

    def deliver(self, entries: list[bytes]) -> int:
        """
        Deliver *entries*, retrying as needed; one method per kind of outcome.

        Returns:
            How many entries are left undelivered because shutdown's deadline
            passed (0 when every entry was delivered or given up).
        """
        batch = _Batch(deque([entries]))
        parts = batch.parts
        while parts:
            part = parts[0]
            timeout = self.tally.attempt_timeout()
            if timeout <= 0:
                return batch.left()
            outcome = self._attempt(part, timeout)
            match outcome.kind:
                case "ok":
                    batch.next_part()
                    self.tally.delivered(len(part), sum(map(len, part)))
                case "split":
                    self._split(batch, part, outcome)
                case "reject" | "unsendable":
                    batch.next_part()
                    self._reject(len(part), outcome)
                case "partial":
                    if not self._partial(batch, part, outcome):
                        return batch.left()
                case _:
                    if not self._retry(batch, part, outcome):
                        return batch.left()
        return 0

    def _attempt(self, part: list[bytes], timeout: float) -> Outcome:
        """One delivery attempt; an error the sink raised counts as ``retry``."""
        try:
            return self.sink.send(part, timeout)
        except Exception as exc:
            outcome = Outcome("retry", f"{type(exc).__name__}: {exc}")
            release_exception(exc)
            return outcome

    def _split(self, batch: _Batch, part: list[bytes], outcome: Outcome) -> None:
        """Send the halves of a part the receiver found too large; drop a single entry."""
        batch.parts.popleft()  # the attempt count goes on with the halves
        if len(part) == 1:
            self.tally.gave_up("too_large", 1)
            self.diagnostics.report(
                "too_large",
                "warning",
                "the receiver refused one record of %d bytes as too large (%s); dropped",
                len(part[0]),
                outcome.detail,
            )
            return
        mid = len(part) // 2
        batch.parts.appendleft(part[mid:])
        batch.parts.appendleft(part[:mid])
        self.diagnostics.report(
            "split",
            "info",
            "the receiver refused a batch of %d records as too large (%s); sending it in halves",
            len(part),
            outcome.detail,
        )

    def _reject(self, n: int, outcome: Outcome) -> None:
        """Drop *n* entries the receiver refused for good, or that can never be sent."""
        self.tally.gave_up("rejected", n)
        self.diagnostics.report(
            "rejected",
            "error",
            "could not send %d record(s) and never will (%s); dropped"
            if outcome.kind == "unsendable"
            else "the receiver rejected %d record(s) (%s); dropped",
            n,
            outcome.detail,
        )

    def _partial(self, batch: _Batch, part: list[bytes], outcome: Outcome) -> bool:
        """Count the delivered and the refused, retry the rest; False: shutdown cut the wait."""
        retry = [part[i] for i in outcome.retry if 0 <= i < len(part)]
        done = len(part) - len(retry) - outcome.rejected
        if done > 0:
            self.tally.delivered(done, _delivered_bytes(part, outcome, done))
        if outcome.rejected:
            self._reject(outcome.rejected, outcome)
        if not retry:
            batch.next_part()
            return True
        batch.parts[0] = retry
        return self._retry(batch, retry, outcome)

    def _retry(self, batch: _Batch, part: list[bytes], outcome: Outcome) -> bool:
        """Wait before the next attempt, or give up; False: shutdown cut the wait."""
        batch.attempt += 1
        s = self.settings
        if 0 <= s.max_retries < batch.attempt:
            batch.next_part()
            self.tally.gave_up("retries_exhausted", len(part))
            self.diagnostics.report(
                "retries_exhausted",
                "error",
                "gave up on %d record(s) after %d retries (%s); dropped",
                len(part),
                s.max_retries,
                outcome.detail,
            )
            return True
        delay = self.backoff(batch.attempt, outcome.retry_after)
        self.tally.retried(len(part))
        self.diagnostics.report(
            "retry",
            "warning",
            "delivery of %d record(s) failed (%s); retrying in %.2f s",
            len(part),
            outcome.detail,
            delay,
        )
        return self.tally.pause(delay)

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry *attempt* (1, 2, ...), at least *retry_after* (capped)."""
        s = self.settings
        base = min(s.retry_max_backoff, s.retry_backoff * float(2 ** min(attempt - 1, 30)))
        # "Equal jitter": at least half the step, so a crowd of clients
        # restarted together spreads out without retrying at once.
        delay = base / 2 + random.uniform(0, base / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
        return delay


def _delivered_bytes(part: list[bytes], outcome: Outcome, delivered: int) -> int:
    """
    Payload bytes of the *delivered* entries of a ``partial`` *outcome* of *part*.

    Entries neither to retry nor named as refused are counted; when the
    receiver refused more entries than it named, the unnamed ones among them
    are left out at the mean size of those entries.
    """
    settled = {i for i in (*outcome.retry, *outcome.rejected_at) if 0 <= i < len(part)}
    sizes = [len(entry) for i, entry in enumerate(part) if i not in settled]
    if not sizes:
        return 0
    return sum(sizes) * min(delivered, len(sizes)) // len(sizes)
