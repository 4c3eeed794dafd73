"""Squash, plan, write each chunk as a tar, read the tars back: over the base, the chunks show
exactly what the recipe's layers showed. Real tar bytes, random stacks."""

from __future__ import annotations

import hashlib
import io
import random
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nestcustom.image.rechunk.model import Member, Payload
from nestcustom.image.rechunk.plan import Limits, plan
from nestcustom.image.rechunk.readlayers import parse_layer
from nestcustom.image.rechunk.squash import squash
from nestcustom.image.rechunk.writetar import write_chunk
from tests.image import layerapply
from tests.image.test_rechunk_squash import index_of, stacks


def with_payloads(members: list[Member], spool: io.BytesIO) -> list[Member]:
    """Files get real bytes in the spool (their token, repeated) and that sha256."""
    out = []
    for m in members:
        if m.kind == "file":
            data = (m.sha256 or "empty").encode() * 3
            offset = spool.seek(0, 2)
            spool.write(data)
            m = replace(
                m, payload=Payload(offset, len(data)), sha256=hashlib.sha256(data).hexdigest()
            )
        out.append(m)
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stacks(), st.integers(0, 2**32), st.integers(4, 9))
def test_chunks_written_and_read_back_show_what_the_stack_showed(
    stack: tuple[list[Member], list[list[Member]]], seed: int, max_layers: int
) -> None:
    spool = io.BytesIO()
    base = with_payloads(stack[0], spool)
    layers = [with_payloads(layer, spool) for layer in stack[1]]
    diff = squash(layers, index_of(base))
    chooser = random.Random(seed)
    owners = {
        m.path: chooser.choice(["a.x86_64", "b.noarch", "c.noarch"])
        for m in diff.entries
        if chooser.random() < 0.5
    }
    chunks = plan(diff, owners, Limits(max_layers=max_layers, small_buckets=2))
    read_back = []
    for chunk in chunks.chunks:
        out = io.BytesIO()
        written = write_chunk(chunk.members, spool, out)
        assert written.diff_id == "sha256:" + hashlib.sha256(out.getvalue()).hexdigest()
        read_back.append(parse_layer(io.BytesIO(out.getvalue()), io.BytesIO()))
    start = layerapply.apply({}, base)
    want = layerapply.view(layerapply.apply_all(start, layers))
    got = layerapply.view(layerapply.apply_all(start, read_back))
    assert got == want
