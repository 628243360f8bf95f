"""The stream scenario's client: `ws_load.py URL CONNECTIONS SECONDS [NAME=VALUE…]` keeps CONNECTIONS sockets, each
sending a 128-byte text message and waiting for its echo, and prints one JSON line: round trips per second and
their latency percentiles. Python's `websockets` (it sends no Origin, which Warden refuses as a browser's)."""
import asyncio
import json
import sys
import time

from websockets.asyncio.client import connect

PAYLOAD = '{"type":"bench","data":"' + "x" * 100 + '"}'


async def one(url, headers, end, samples, failures):
    try:
        async with connect(url, additional_headers=headers, max_size=1 << 20, compression=None) as ws:
            while time.monotonic() < end:
                sent = time.perf_counter()
                await ws.send(PAYLOAD)
                await ws.recv()
                samples.append((time.perf_counter() - sent) * 1000)
    except Exception:
        failures.append(1)


async def main(url, connections, seconds, headers):
    samples, failures = [], []
    end = time.monotonic() + seconds
    await asyncio.gather(*(one(url, headers, end, samples, failures) for _ in range(connections)))
    samples.sort()
    at = lambda q: samples[min(len(samples) - 1, int(len(samples) * q))] if samples else 0
    print(json.dumps({"round_trips": len(samples), "round_trips_per_second": len(samples) / seconds, "p50_ms": at(0.5),
                      "p99_ms": at(0.99), "failed_connections": len(failures)}))


if __name__ == "__main__":
    url, connections, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    headers = dict(h.split("=", 1) for h in sys.argv[4:])
    asyncio.run(main(url, connections, seconds, headers))
