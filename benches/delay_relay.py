#!/usr/bin/env python3
"""A TCP relay that adds a fixed delay each way, for the benchmark's
network-latency run (this kernel has no netem qdisc).

  delay_relay.py DELAY_MS LISTEN_NET TARGET_NET HOST_NUMBER...

For each number K it listens on LISTEN_NET.K:22 and forwards to
TARGET_NET.K:22; every chunk is held DELAY_MS in each direction, in order,
as a link with that one-way latency would (bandwidth is not limited); a
new connection waits one round trip before it is forwarded, as a TCP
handshake over that link would.
Prints `ready` once every listener is up.
"""

import asyncio
import sys


async def pump(reader, writer, delay):
    """Copies reader to writer, each chunk DELAY later than it came, in order."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def deliver():
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                break
            writer.write(data)
            await writer.drain()
        try:
            writer.write_eof()
        except OSError:
            pass

    sender = asyncio.create_task(deliver())
    try:
        while True:
            data = await reader.read(65536)
            queue.put_nowait((loop.time() + delay, data or None))
            if not data:
                break
    except OSError:
        queue.put_nowait((loop.time() + delay, None))
    try:
        await sender
    except OSError:
        pass


async def serve(listen, target, delay):
    async def handle(reader, writer):
        # The TCP handshake a real link would cost: one round trip.
        await asyncio.sleep(2 * delay)
        try:
            up_reader, up_writer = await asyncio.open_connection(target, 22)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pump(reader, up_writer, delay), pump(up_reader, writer, delay))
        for w in (writer, up_writer):
            w.close()

    return await asyncio.start_server(handle, listen, 22, backlog=1024)


async def main():
    delay = int(sys.argv[1]) / 1000
    listen_net, target_net = sys.argv[2], sys.argv[3]
    servers = [await serve(f"{listen_net}.{k}", f"{target_net}.{k}", delay) for k in sys.argv[4:]]
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    asyncio.run(main())
