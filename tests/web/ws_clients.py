"""Reading WebSocket clients for the load test, run as a separate process.

``python ws_clients.py PORT SECONDS N`` connects N clients to ``/ws``, reads for SECONDS and
prints one JSON list per client of the frame_seq values it saw. A separate process keeps the
clients' own CPU and GIL use out of the server process being measured.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import aiohttp


async def reader(url: str, seconds: float, seqs: list[int]) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                msg = await ws.receive(timeout=max(0.1, end - time.monotonic()))
            except TimeoutError:
                break
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(msg.data)
            if data["type"] == "frame":
                seqs.append(data["frame_seq"])


async def main(port: int, seconds: float, n: int) -> None:
    results: list[list[int]] = [[] for _ in range(n)]
    url = f"ws://127.0.0.1:{port}/ws"
    await asyncio.gather(*(reader(url, seconds, seqs) for seqs in results))
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])))
