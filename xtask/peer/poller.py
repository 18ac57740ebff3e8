#!/usr/bin/env python3
"""The simplest HELO poller: a yardstick for `cargo xtask bench`, nothing more.

One asyncio task per encoder; every interval (first one at a random point of the
first interval, so a fleet never polls in lockstep) it reads the six parameters a
polling health check reads, one GET after another, through one shared aiohttp
client session (keep-alive, one connection per encoder). No login, no events, no
health score, no metrics: what a script written in an afternoon does.

Every second it writes the number of finished checks to --status, so the bench can
count checks in its window the way it counts the supervisor's.

    poller.py --base-port 20000 --encoders 1000 --interval 10 --status checks.txt
"""

import argparse
import asyncio
import os
import random
import signal

import aiohttp

PARAMS = (
    "eParamID_SystemState",
    "eParamID_Temperature",
    "eParamID_CurrentMediaAvailable",
    "eParamID_LinkErrors",
    "eParamID_ReplicatorStreamState",
    "eParamID_ReplicatorRecordState",
)


async def poll(session, base, interval, counts):
    await asyncio.sleep(random.uniform(0, interval))
    loop = asyncio.get_running_loop()
    due = loop.time()
    while True:
        ok = True
        for param in PARAMS:
            try:
                async with session.get(
                    f"{base}/config?action=get&paramid={param}"
                ) as resp:
                    await resp.read()
                    ok = ok and resp.status == 200
            except (aiohttp.ClientError, asyncio.TimeoutError):
                ok = False
        counts["checks" if ok else "failed"] += 1
        due += interval
        await asyncio.sleep(max(0.0, due - loop.time()))


async def report(path, counts):
    while True:
        await asyncio.sleep(1.0)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{counts['checks']} {counts['failed']}\n")
        os.replace(tmp, path)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--base-port", type=int, required=True)
    ap.add_argument("--encoders", type=int, required=True)
    ap.add_argument("--interval", type=float, default=10.0)
    ap.add_argument("--status", required=True)
    args = ap.parse_args()

    counts = {"checks": 0, "failed": 0}
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=1)
    timeout = aiohttp.ClientTimeout(total=3)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tasks = [
            asyncio.create_task(
                poll(
                    session,
                    f"http://{args.host}:{args.base_port + k}",
                    args.interval,
                    counts,
                )
            )
            for k in range(args.encoders)
        ]
        tasks.append(asyncio.create_task(report(args.status, counts)))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        for t in tasks:
            t.cancel()


if __name__ == "__main__":
    asyncio.run(main())
