"""Scenario 5's client: opens COUNT TLS keep-alive connections to https://HOST:PORT/ (dialling
IP), sends one request on each so that every proxied connection is fully set up, then holds
them all idle until stdin closes.

Usage: idle.py HOST IP PORT COUNT AUTHORIZATION
Prints "ready N" once N connections are open and idle; exits non-zero on any failure.
"""

import asyncio
import resource
import ssl
import sys


async def open_one(ctx, host, ip, port, auth, gate):
    async with gate:
        reader, writer = await asyncio.open_connection(
            ip, port, ssl=ctx, server_hostname=host
        )
        writer.write(
            f"GET / HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\n\r\n".encode()
        )
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"unexpected response: {head[:80]!r}")
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await reader.readexactly(length)
        return writer


async def main():
    host, ip, port, count, auth = sys.argv[1:6]
    count = int(count)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ctx = ssl.create_default_context()
    gate = asyncio.Semaphore(100)
    writers = await asyncio.gather(
        *(open_one(ctx, host, ip, int(port), auth, gate) for _ in range(count))
    )
    print(f"ready {len(writers)}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for writer in writers:
        writer.close()


asyncio.run(main())
