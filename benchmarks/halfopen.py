"""Opens N connections to HOST:PORT that never finish a request (half a header line each) and
holds them until killed; prints `opened=N` once done. Run by bench_serve_hardening.py, one process
per 10,000 connections (a process's file descriptor limit).

    python benchmarks/halfopen.py HOST PORT N
"""

from __future__ import annotations

import asyncio
import resource
import sys


async def main(host: str, port: int, n: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 100), hard))
    gate = asyncio.Semaphore(256)
    held: list[asyncio.StreamWriter] = []

    async def one() -> None:
        async with gate:
            try:
                _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
            except (OSError, asyncio.TimeoutError):
                return
            writer.write(b"POST /v1/responses HTTP/1.1\r\nHost: x\r\n")  # and never the rest
            held.append(writer)

    await asyncio.gather(*(one() for _ in range(n)))
    print(f"opened={len(held)}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
    except KeyboardInterrupt:
        pass
