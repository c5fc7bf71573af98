"""Turn-lock scenarios run in Rasa's environment (``.venv-rasa``) against a real redis-server; printed as JSON.

    python tests/scale/lock_scenarios.py PORT ours|rasa SCENARIO...

Each "Rasa instance" is a lock store with its own Redis connections, driven from its own thread and event
loop (or, for ``dead_holder``, a separate process that is SIGKILLed), using the store exactly as Rasa's agent
does: ``async with store.lock(conversation_id):`` around the turn. ``rasa`` runs the same scenarios with
Rasa 3.6's own ``RedisLockStore`` (to show what fails without ours). Used by tests/scale/test_lock_store.py.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

TIMES_OUT = 8.0  # a turn not served this long after it could have been is reported as hung


def make_store(port: int, kind: str, lifetime: float):
    if kind == "ours":
        from rasa_ext.lock_store import RedisTicketLockStore

        return RedisTicketLockStore(host="127.0.0.1", port=port, db=0, lock_lifetime=lifetime,
                                    refresh_interval=min(0.2, lifetime / 5), poll_interval=0.01)
    from rasa.core.lock_store import RedisLockStore

    return RedisLockStore(host="127.0.0.1", port=port, db=0)


class Instance(threading.Thread):
    """One 'Rasa instance': a store and an event loop in a thread, running the coroutine it is given."""

    def __init__(self, make):
        super().__init__(daemon=True)
        self.make, self.error = make, None

    def run(self):
        try:
            asyncio.run(self.make())
        except BaseException as err:  # reported, not raised in a thread
            self.error = f"{type(err).__name__}: {err}"


def turn(store, kind, conversation, lifetime, wait=None):
    """Rasa's agent: ``async with lock_store.lock(sender_id)``; Rasa's store gets the lifetime as an argument
    (the agent passes none: TICKET_LOCK_LIFETIME), ours has it from its settings."""
    if kind == "ours":
        return store.lock(conversation) if wait is None else store.lock(conversation, wait_time_in_seconds=wait)
    return store.lock(conversation, lifetime) if wait is None else store.lock(conversation, lifetime, wait)


def slow_holder(port, kind):
    """A turn that takes 2.4 lifetimes (half awaiting, half blocking its event loop with CPU-like work) and a
    second turn of the same conversation on another instance 30 ms later."""
    lifetime, seen = 1.0, {}
    a_store, b_store = make_store(port, kind, lifetime), make_store(port, kind, lifetime)
    entered = threading.Event()

    async def first():
        async with turn(a_store, kind, "slow", lifetime):
            seen["a_enter"] = time.time()
            entered.set()
            await asyncio.sleep(1.2 * lifetime)
            time.sleep(1.2 * lifetime)  # the event loop blocked, as by Rasa's NLU on a loaded machine
            seen["a_exit"] = time.time()

    async def second():
        entered.wait(10)
        await asyncio.sleep(0.03)
        async with turn(b_store, kind, "slow", lifetime):
            seen["b_enter"] = time.time()
            seen["b_exit"] = time.time()

    return _two_turns(first, second, seen)


def _two_turns(first, second, seen: dict) -> dict:
    """Run the two instances' turns; what they saw, whether the second hung, and any errors."""
    a, b = Instance(first), Instance(second)
    a.start(), b.start()
    a.join(10)
    b.join(TIMES_OUT)
    return {**seen, "hung": b.is_alive(), "errors": [a.error, b.error]}


def many(port, kind):
    """30 turns of one conversation from 2 instances at once (15 each), queued behind a first turn that holds
    the lock while they all take their tickets: each served once, one at a time, in ticket order."""
    lifetime = 5.0
    stores = [make_store(port, kind, lifetime) for _ in range(3)]
    gate_in, guard = threading.Event(), threading.Lock()
    state = {"active": 0, "overlaps": 0, "served": []}

    async def gate():
        async with turn(stores[0], kind, "many", lifetime, wait=0.01):
            gate_in.set()
            deadline = time.monotonic() + 5  # hold until all 30 have their tickets (however loaded the machine)
            while time.monotonic() < deadline:
                lock = stores[0].get_lock("many")
                if lock is not None and len(lock.tickets) >= 31:
                    break
                await asyncio.sleep(0.02)
            state["queued"] = 0 if lock is None else len(lock.tickets)
            await asyncio.sleep(0.05)

    async def one(store, name):
        async with turn(store, kind, "many", lifetime, wait=0.01) as lock:
            with guard:
                state["active"] += 1
                state["overlaps"] += state["active"] > 1
                state["served"].append([lock.now_serving, name])
            await asyncio.sleep(0.003)
            with guard:
                state["active"] -= 1

    def instance(store, label):
        async def run():
            gate_in.wait(10)
            await asyncio.gather(*(one(store, f"{label}{n}") for n in range(15)))
        return Instance(run)

    threads = [Instance(gate), instance(stores[1], "a"), instance(stores[2], "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    return {**state, "hung": any(t.is_alive() for t in threads), "errors": [t.error for t in threads]}


def hold_forever(port, kind, lifetime):
    """The child of ``dead_holder``: take the turn, say so, and never finish."""
    store = make_store(port, kind, lifetime)

    async def run():
        async with turn(store, kind, "dead", lifetime):
            print("HOLDING", time.time(), flush=True)
            await asyncio.sleep(120)

    asyncio.run(run())


def dead_holder(port, kind):
    """The instance serving a turn is killed (SIGKILL): the next turn waits for the lifetime, then runs."""
    lifetime = 2.0
    child = subprocess.Popen([sys.executable, __file__, str(port), kind, "hold", str(lifetime)],
                             stdout=subprocess.PIPE, text=True)
    try:
        line = ""
        while not line.startswith("HOLDING"):
            line = child.stdout.readline()
            if not line:
                raise RuntimeError("the holding process ended before taking the turn")
        held = float(line.split()[1])
        os.kill(child.pid, signal.SIGKILL)
        killed = time.time()
    finally:
        child.kill()
        child.wait(10)
    store, seen = make_store(port, kind, lifetime), {"held": held, "killed": killed}

    async def next_turn():
        async with turn(store, kind, "dead", lifetime, wait=0.05):
            seen["served"] = time.time()

    waiter = Instance(next_turn)
    waiter.start()
    waiter.join(lifetime + TIMES_OUT)
    return {**seen, "lifetime": lifetime, "hung": waiter.is_alive(), "errors": [waiter.error]}


def redis_restart(port, kind):
    """Redis loses the lock while one turn runs and another waits (a restart): the waiter's ticket is gone.
    It must queue again and run, not wait for ever for a ticket that no longer exists."""
    lifetime, seen = 3.0, {}
    a_store, b_store = make_store(port, kind, lifetime), make_store(port, kind, lifetime)
    entered, waiting = threading.Event(), threading.Event()

    async def first():
        async with turn(a_store, kind, "restart", lifetime, wait=0.01):
            entered.set()
            waiting.wait(10)
            await asyncio.sleep(0.2)
            a_store.red.flushdb()
            seen["flushed"] = time.time()
            await asyncio.sleep(1.0)

    async def second():
        entered.wait(10)
        waiting.set()
        async with turn(b_store, kind, "restart", lifetime, wait=0.01):
            seen["b_enter"] = time.time()

    return _two_turns(first, second, seen)


SCENARIOS = {f.__name__: f for f in (slow_holder, many, dead_holder, redis_restart)}

if __name__ == "__main__":
    port, kind = int(sys.argv[1]), sys.argv[2]
    if sys.argv[3] == "hold":
        hold_forever(port, kind, float(sys.argv[4]))
        sys.exit(0)
    results = {}
    for name in sys.argv[3:]:
        results[name] = SCENARIOS[name](port, kind)
        print(name, json.dumps(results[name]), file=sys.stderr, flush=True)
    print("RESULT " + json.dumps(results), flush=True)
    os._exit(0)  # threads of a hung scenario never finish
