"""SlotTransport: at most `size` requests on the wire, slots freed when answers close, pool timeout kept."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from watchdog.clients.transport import SlotTransport


class Body(httpx.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'{"ok": true}'


class Slots:
    """Mock slots that record which slot served which request, and can hold answers back."""

    def __init__(self) -> None:
        self.served: list[tuple[int, str]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.in_flight = self.most = 0

    def make(self) -> httpx.AsyncBaseTransport:
        tag = object()  # names this slot in `served`

        async def answer(request: httpx.Request) -> httpx.Response:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
            await self.gate.wait()
            self.in_flight -= 1
            self.served.append((id(tag), request.url.host))
            return httpx.Response(200, stream=Body())  # streamed, as from the network

        return httpx.MockTransport(answer)


async def test_at_most_size_requests_run_at_once_and_all_finish() -> None:
    slots = Slots()
    slots.gate.clear()
    transport = SlotTransport(3, slot=slots.make)
    async with httpx.AsyncClient(transport=transport) as client:
        calls = [asyncio.create_task(client.get(f"http://evolution.test/{i}")) for i in range(10)]
        await asyncio.sleep(0.05)
        assert slots.in_flight == 3 and transport.in_use() == 3
        slots.gate.set()
        answers = await asyncio.gather(*calls)
    assert [a.json() for a in answers] == [{"ok": True}] * 10
    assert slots.most == 3 and transport.in_use() == 0


async def test_a_free_slot_of_the_same_origin_is_preferred() -> None:
    slots = Slots()
    async with httpx.AsyncClient(transport=SlotTransport(2, slot=slots.make)) as client:
        await client.get("http://evolution.test/")
        await client.get("http://dify.test/")
        for _ in range(3):
            await client.get("http://evolution.test/")
            await client.get("http://dify.test/")
    by_slot: dict[int, set[str]] = {}
    for slot, host in slots.served:
        by_slot.setdefault(slot, set()).add(host)
    assert sorted(map(sorted, by_slot.values())) == [["dify.test"], ["evolution.test"]]


async def test_a_streamed_answer_holds_its_slot_until_closed_and_waiting_honours_the_pool_timeout() -> None:
    slots = Slots()
    async with httpx.AsyncClient(transport=SlotTransport(1, slot=slots.make)) as client:
        async with client.stream("GET", "http://dify.test/chat") as streaming:
            assert streaming.status_code == 200
            with pytest.raises(httpx.PoolTimeout):
                await client.get("http://evolution.test/", timeout=httpx.Timeout(5, pool=0.05))
        answer = await client.get("http://evolution.test/", timeout=httpx.Timeout(5, pool=0.05))
    assert answer.status_code == 200


async def test_a_failed_or_cancelled_request_gives_its_slot_back() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    transport = SlotTransport(1, slot=lambda: httpx.MockTransport(refuse))
    async with httpx.AsyncClient(transport=transport) as client:
        for _ in range(3):
            with pytest.raises(httpx.ConnectError):
                await client.get("http://evolution.test/", timeout=httpx.Timeout(5, pool=0.05))
    slots = Slots()
    slots.gate.clear()
    transport = SlotTransport(1, slot=slots.make)
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await client.get("http://evolution.test/")
        assert transport.in_use() == 0
        slots.gate.set()
        assert (await client.get("http://evolution.test/")).status_code == 200


async def test_an_answer_read_already_frees_its_slot_at_once() -> None:
    transport = SlotTransport(1, slot=lambda: httpx.MockTransport(lambda r: httpx.Response(200, json=[])))
    async with httpx.AsyncClient(transport=transport) as client:
        for _ in range(3):
            assert (
                await client.get("http://evolution.test/", timeout=httpx.Timeout(5, pool=0.05))
            ).json() == []
    assert transport.in_use() == 0


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        SlotTransport(0)
