"""Which build waits for which: shared first steps are built by the first recipe that has them."""

from __future__ import annotations

import threading

from nestcustom.image.schedule import Wait, run_sharing_prefixes, waits


def test_a_recipe_waits_for_the_earlier_one_it_shares_most_with() -> None:
    keys = [
        ["FROM b", "RUN x", "RUN y", "RUN a"],
        ["FROM b", "RUN x", "RUN z"],
        ["FROM b", "RUN x", "RUN y", "RUN c"],
        ["FROM b", "RUN q"],  # shares only FROM: nothing to wait for
    ]
    assert waits(keys) == [None, Wait(0, 2), Wait(0, 3), None]


def test_a_follower_starts_once_its_leader_passed_the_shared_steps() -> None:
    keys = [["FROM b", "RUN x", "RUN a"], ["FROM b", "RUN x", "RUN c"]]
    events: list[str] = []
    lock = threading.Lock()
    leader_may_go_on = threading.Event()

    def work(index: int, on_step: object) -> int:
        assert callable(on_step)
        with lock:
            events.append(f"start {index}")
        if index == 0:
            on_step(1)
            on_step(2)  # the shared RUN x is under way: the follower must still wait
            assert leader_may_go_on.wait(0.5) is False
            with lock:
                events.append("leader at step 3")
            on_step(3)  # RUN x committed
            leader_may_go_on.wait(5)
        else:
            leader_may_go_on.set()
        return index

    assert run_sharing_prefixes(keys, 2, work) == [0, 1]
    assert events == ["start 0", "leader at step 3", "start 1"]
