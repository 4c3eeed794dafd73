"""Progress while the layer is streamed into podman: one event per 16 MB written."""

from __future__ import annotations

from nestcustom.base.pipeline import Event, _counted


def test_the_layer_reports_progress_every_16_mb_in_whole_mb() -> None:
    chunks = [b"x" * 8_000_000] * 5  # 40 MB
    events: list[Event] = []
    passed = b"".join(_counted(iter(chunks), 40_000_000, events.append))
    assert len(passed) == 40_000_000  # every byte goes through, in order
    assert events == [
        Event("image", "MB of the layer", 16, 40),
        Event("image", "MB of the layer", 32, 40),
    ]


def test_a_small_layer_reports_nothing_and_exactly_16_mb_reports_once() -> None:
    events: list[Event] = []
    list(_counted(iter([b"x" * 15_999_999]), 15_999_999, events.append))
    assert events == []
    list(_counted(iter([b"x" * 16_000_000]), 16_000_000, events.append))
    assert events == [Event("image", "MB of the layer", 16, 16)]
