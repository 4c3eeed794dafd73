"""Run builds in parallel so that steps several recipes share are built once.

Recipes whose first steps are the same (same base, same instructions, same
copied content) would each build those steps when started together: podman's
layer cache only helps once a step is committed. So a recipe that shares a
prefix with an earlier one waits until that one has committed the shared
steps (its stream announced the step after them), then builds with them from
the cache. A worker never waits while another recipe is ready to run.

Workers are daemon threads: an interrupted run must not wait for them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

R = TypeVar("R")


def common_prefix(a: Sequence[str], b: Sequence[str]) -> int:
    count = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        count += 1
    return count


@dataclass(frozen=True)
class Wait:
    leader: int  # the earlier item that builds the shared steps
    steps: int  # how many steps (FROM included) are shared


def waits(keys: Sequence[Sequence[str]]) -> list[Wait | None]:
    """For each item, the earlier item with the longest shared prefix (beyond FROM)."""
    found: list[Wait | None] = []
    for index, mine in enumerate(keys):
        best: Wait | None = None
        for earlier in range(index):
            shared = common_prefix(mine, keys[earlier])
            if shared >= 2 and (best is None or shared > best.steps):
                best = Wait(earlier, shared)
        found.append(best)
    return found


class Board(Generic[R]):
    """The progress of every item, shared by the workers and the waiting main thread."""

    def __init__(self, count: int) -> None:
        self.cond = threading.Condition()
        self.started = [0] * count  # the step each item's build has reached
        self.done = [False] * count
        self.results: list[R | BaseException | None] = [None] * count

    def step(self, index: int, number: int) -> None:
        with self.cond:
            if number > self.started[index]:
                self.started[index] = number
                self.cond.notify_all()

    def passed(self, wait: Wait) -> bool:
        """The leader committed the shared steps (or will never build them)."""
        return self.done[wait.leader] or self.started[wait.leader] > wait.steps


def run_sharing_prefixes(
    keys: Sequence[Sequence[str]],
    jobs: int,
    work: Callable[[int, Callable[[int], None]], R],
) -> list[R | BaseException]:
    """work(index, on_step) for every item, up to `jobs` at once; results in order.

    `on_step(n)` is how a build reports that its step n started. An exception
    from `work` becomes that item's result. Ctrl-C in the waiting thread
    propagates at once; the workers are left to the caller to stop.
    """
    board: Board[R] = Board(len(keys))
    plan = waits(keys)
    pending = list(range(len(keys)))

    def next_ready() -> int | None:
        with board.cond:
            while pending:
                for index in pending:
                    wait = plan[index]
                    if wait is None or board.passed(wait):
                        pending.remove(index)
                        return index
                board.cond.wait(0.5)
            return None

    def reporter(index: int) -> Callable[[int], None]:
        return lambda number: board.step(index, number)

    def worker() -> None:
        while (index := next_ready()) is not None:
            try:
                result: R | BaseException = work(index, reporter(index))
            except Exception as exc:  # the item's failure, not the run's
                result = exc
            with board.cond:
                board.results[index] = result
                board.done[index] = True
                board.cond.notify_all()

    for number in range(max(1, min(jobs, len(keys)))):
        threading.Thread(target=worker, name=f"build-{number}", daemon=True).start()
    with board.cond:
        while not all(board.done):
            board.cond.wait(0.2)  # short waits: signals reach this thread between them
    return [r for r in board.results if r is not None]
