"""The delivery worker against real receivers: SMTP (aiosmtpd), a signed webhook (aiohttp), the inbox."""
from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest

from bot.escalation import (
    ConfigError,
    DeliveryWorker,
    EscalationConfig,
    EscalationStore,
    InboxChannel,
    WebhookChannel,
    build_channels,
)
from tests.bot.escalation.harness import SECRET
from tests.bot.escalation.support import turn

LEASE = dt.timedelta(seconds=30)


def env_for(receiver=None, smtp=None, **extra) -> dict:
    env = {}
    if receiver is not None:
        env.update(EARLYHELP_WEBHOOK_URL=receiver.url("/hook"), EARLYHELP_WEBHOOK_SECRET=SECRET)
    if smtp is not None:
        env.update(EARLYHELP_SMTP_HOST="127.0.0.1", EARLYHELP_SMTP_PORT=str(smtp.port),
                   EARLYHELP_SMTP_FROM="earlyhelp@council.example", EARLYHELP_SMTP_TO="duty@council.example")
    env.update(extra)
    return env


def webhook_worker(store, receiver, clock, **kw) -> DeliveryWorker:
    return DeliveryWorker(store, channels=[InboxChannel(store), WebhookChannel(receiver.url(), SECRET)], clock=clock,
                          lease=LEASE, backoff_base=1.0, backoff_cap=60.0, **kw)


async def test_delivers_to_inbox_smtp_and_a_signed_webhook(db_url, clock, receiver, smtp):
    config = EscalationConfig.from_env(env_for(receiver, smtp))
    store = EscalationStore.open(db_url, clock=clock, config=config)
    assert store.channels == ["inbox", "email", "webhook"]
    worker = DeliveryWorker(store, build_channels(store, config), clock=clock, config=config)
    esc = turn(store, 1, immediate_danger=True, contact={"phone": "[redacted phone]"})
    assert await worker.run_once() == 3
    assert await worker.run_once() == 0  # nothing is sent twice

    [got] = receiver.accepted()
    assert got["key"] == f"{esc['id']}/webhook/created" and got["event"] == "escalation.created"
    body = json.loads(got["body"])
    assert body["escalation_id"] == esc["id"] and body["urgency"] == "immediate"
    assert body["excerpt"] == esc["excerpt"] and body["contact"] == {"phone": "[redacted phone]"}
    assert [a["outcome"] for a in receiver.arrivals()] == ["accepted"]  # its HMAC signature checked out

    [mail] = smtp.messages
    msg = mail["msg"]
    assert mail["to"] == ["duty@council.example"] and mail["from"] == "earlyhelp@council.example"
    assert msg["X-EarlyHelp-Idempotency-Key"] == f"{esc['id']}/email/created"
    assert "IMMEDIATE DANGER" in msg["Subject"] and "north-lincolnshire" in msg["Subject"]
    text = msg.get_payload(decode=True).decode()
    assert esc["excerpt"] in text and esc["id"] in text
    assert "redacted phone" not in text  # contact details stay in the inbox, not in email

    done = store.get(esc["id"])
    assert done["inbox_visible_at"] == clock.now.isoformat()
    assert {(d["channel"], d["status"]) for d in done["deliveries"]} == {
        ("inbox", "delivered"), ("email", "delivered"), ("webhook", "delivered")}
    notified = [a["detail"]["channel"] for a in store.audit(esc["id"]) if a["action"] == "notified"]
    assert sorted(notified) == ["email", "inbox", "webhook"]
    await worker.aclose()
    store.dispose()


async def test_a_receiver_with_another_secret_refuses_and_the_worker_keeps_retrying(db_url, clock, receiver):
    store = EscalationStore.open(db_url, channels=["inbox", "webhook"], clock=clock)
    worker = DeliveryWorker(store, channels=[InboxChannel(store), WebhookChannel(receiver.url(), "not-the-secret")],
                            clock=clock, lease=LEASE, backoff_base=1.0, backoff_cap=60.0)
    esc = turn(store, 1)
    assert await worker.run_once() == 1  # the inbox only
    assert [a["outcome"] for a in receiver.arrivals()] == ["bad_signature"] and receiver.accepted() == []
    webhook = next(d for d in store.get(esc["id"])["deliveries"] if d["channel"] == "webhook")
    assert webhook["status"] == "pending" and webhook["last_error"] == "webhook answered HTTP 401"
    await worker.aclose()
    store.dispose()


async def test_retries_with_exponential_backoff_until_the_receiver_recovers(db_url, clock, receiver):
    store = EscalationStore.open(db_url, channels=["inbox", "webhook"], clock=clock)
    worker = webhook_worker(store, receiver, clock)
    esc = turn(store, 1)
    receiver.fail_next = 3
    assert await worker.run_once() == 1  # inbox delivered, webhook failed once
    waits = []
    for attempt in range(1, 4):
        row = next(d for d in store.get(esc["id"])["deliveries"] if d["channel"] == "webhook")
        assert row["status"] == "pending" and row["attempts"] == attempt
        retry_at = _next_attempt(store, row["key"])
        wait = (retry_at - clock.now).total_seconds()
        expected = 1.0 * 2 ** (attempt - 1)
        assert expected * 0.5 <= wait <= expected, (attempt, wait)
        waits.append(wait)
        clock.advance(seconds=wait * 0.9)  # not yet due: nothing is sent
        arrivals = len(receiver.arrivals())
        assert await worker.run_once() == 0 and len(receiver.arrivals()) == arrivals
        clock.now = retry_at
        delivered = await worker.run_once()
        assert delivered == (1 if attempt == 3 else 0)
    assert [a["outcome"] for a in receiver.arrivals()] == ["failed", "failed", "failed", "accepted"]
    assert len(receiver.accepted()) == 1
    failures = [a["detail"]["attempts"] for a in store.audit(esc["id"]) if a["action"] == "delivery_failed"]
    assert failures == [1, 2]  # audited at attempts 1, 2, 4, 8 ... so a long outage cannot flood the log
    assert worker.backoff(30) <= dt.timedelta(seconds=60)  # the cap
    await worker.aclose()
    store.dispose()


def _next_attempt(store, key):
    from sqlalchemy import select

    from bot.escalation.schema import outbox

    with store.engine.connect() as conn:
        return conn.execute(select(outbox.c.next_attempt_at).where(outbox.c.idempotency_key == key)).scalar_one()


async def test_a_lost_response_is_retried_under_the_same_key_and_counted_once(db_url, clock, receiver):
    store = EscalationStore.open(db_url, channels=["inbox", "webhook"], clock=clock)
    worker = webhook_worker(store, receiver, clock)
    esc = turn(store, 1)
    receiver.lose_next = 2  # the receiver processes the request but the worker never hears back, twice
    for _ in range(10):
        await worker.run_once()
        clock.advance(seconds=5)
    key = f"{esc['id']}/webhook/created"
    assert [(a["key"], a["outcome"]) for a in receiver.arrivals()] == [
        (key, "accepted+lost"), (key, "duplicate+lost"), (key, "duplicate")]
    assert [a["key"] for a in receiver.accepted()] == [key]  # one delivery, counted once, by key
    await worker.aclose()
    store.dispose()


async def test_a_worker_that_dies_mid_send_is_taken_over_after_its_lease(db_url, clock, receiver):
    store = EscalationStore.open(db_url, channels=["webhook", "inbox"], clock=clock)
    esc = turn(store, 1)
    # worker A claims the webhook row, sends it, and "dies" before recording the delivery
    [row] = store.claim_due(["webhook"], "worker-a", clock(), LEASE)
    await WebhookChannel(receiver.url(), SECRET).send(_note(row, store, clock))
    worker_b = webhook_worker(store, receiver, clock)
    assert await worker_b.run_once() == 1  # the inbox; the webhook row is still leased to A
    assert len(receiver.arrivals()) == 1
    clock.advance(seconds=LEASE.total_seconds() + 1)
    assert await worker_b.run_once() == 1
    assert [a["outcome"] for a in receiver.arrivals()] == ["accepted", "duplicate"]
    assert len(receiver.accepted()) == 1
    webhook = next(d for d in store.get(esc["id"])["deliveries"] if d["channel"] == "webhook")
    assert webhook["status"] == "delivered" and webhook["attempts"] == 2
    assert not store.mark_failed(row, clock(), "worker-a", "late", clock())  # A's stale claim cannot undo it
    await worker_b.aclose()
    store.dispose()


def _note(row, store, clock):
    from bot.escalation import Notification

    return Notification(key=row["idempotency_key"], channel=row["channel"], kind=row["kind"], attempt=row["attempts"],
                        at=clock(), escalation=store.get(row["escalation_id"]))


async def test_two_workers_at_once_never_send_one_notification_twice(db_url, clock, receiver):
    stores = [EscalationStore.open(db_url, channels=["inbox", "webhook"]) for _ in range(2)]
    ids = [turn(stores[0], n)["id"] for n in range(40)]
    workers = [DeliveryWorker(s, channels=[InboxChannel(s), WebhookChannel(receiver.url(), SECRET)], lease=LEASE,
                              batch=3) for s in stores]
    totals = await asyncio.gather(*(w.run_once() for w in workers))
    for _ in range(20):  # bounded: anything one worker left because the other held the lock
        if sum(totals) == 80:
            break
        totals = [t + more for t, more in zip(totals, await asyncio.gather(*(w.run_once() for w in workers)))]
    assert sum(totals) == 80
    arrivals = receiver.arrivals()
    assert len(arrivals) == 40 and all(a["outcome"] == "accepted" for a in arrivals)
    assert {a["escalation_id"] for a in receiver.accepted()} == set(ids)
    for w, s in zip(workers, stores):
        await w.aclose()
        s.dispose()


async def test_reminders_then_the_next_tier_until_acknowledged(db_url, clock, receiver, smtp):
    env = env_for(receiver, smtp, EARLYHELP_NEXT_TIER_WEBHOOK_URL=receiver.url("/next-tier"),
                  EARLYHELP_NEXT_TIER_TO="manager@council.example",
                  EARLYHELP_NEXT_TIER_TO_NORTH_LINCOLNSHIRE="edt@northlincs.example")
    config = EscalationConfig.from_env(env)
    store = EscalationStore.open(db_url, clock=clock, config=config, channels=["inbox", "webhook"])
    worker = DeliveryWorker(store, build_channels(store, config), clock=clock, config=config,
                            renotify_after=dt.timedelta(minutes=5), next_tier_after=dt.timedelta(minutes=15))
    esc = turn(store, 1)  # Friday 16:45: North Lincolnshire's SPOC has closed, the answerphone takes calls
    quiet = turn(store, 2)
    assert await worker.run_once() == 4
    store.acknowledge(quiet["id"], by="A. Duty")  # acknowledged in time: no reminder, no next tier, ever

    def keys():
        return [a["key"].split("/", 1)[1] for a in receiver.accepted() if a["escalation_id"] == esc["id"]]

    clock.advance(minutes=4, seconds=59)
    assert await worker.run_once() == 0
    clock.advance(seconds=1)
    assert await worker.run_once() == 2
    assert keys()[-1] == "webhook/reminder-1"
    assert store.get(esc["id"])["inbox_alert_at"] == clock.now.isoformat()
    clock.advance(minutes=5)
    assert await worker.run_once() == 2 and keys()[-1] == "webhook/reminder-2"
    clock.advance(minutes=5)  # 15 minutes unacknowledged: reminder 3 and the next tier
    assert await worker.run_once() == 3
    assert keys() == ["webhook/created", "webhook/reminder-1", "webhook/reminder-2", "webhook/reminder-3",
                      "next_tier/tier-2"]
    tier = next(a for a in receiver.accepted() if a["path"] == "/next-tier")
    body = json.loads(tier["body"])
    assert body["event"] == "escalation.next_tier" and body["tier"] == 2
    assert body["call_now"]["phone"] == "01724 296555"  # the out-of-hours answerphone, from the knowledge file
    [mail] = [m for m in smtp.messages if m["msg"]["X-EarlyHelp-Event"] == "escalation.next_tier"]
    assert mail["to"] == ["edt@northlincs.example"]  # the area's own next tier, not the default manager
    assert "01724 296555" in mail["msg"].get_payload(decode=True).decode()
    now = store.get(esc["id"])
    assert now["tier"] == 2 and now["reminders"] == 3 and now["next_tier_at"] == clock.now.isoformat()
    trail = [(a["action"], a["detail"].get("number") or a["detail"].get("tier")) for a in store.audit(esc["id"])
             if a["action"] in ("reminder", "next_tier")]
    assert trail == [("reminder", 1), ("reminder", 2), ("reminder", 3), ("next_tier", 2)]

    clock.advance(minutes=1)
    store.acknowledge(esc["id"], by="EDT manager")
    for _ in range(4):
        clock.advance(minutes=10)
        assert await worker.run_once() == 0
    assert store.get(quiet["id"])["reminders"] == 0 and store.get(quiet["id"])["tier"] == 1
    assert not [a for a in store.audit(quiet["id"]) if a["action"] in ("reminder", "next_tier")]
    await worker.aclose()
    store.dispose()


async def test_a_reminder_waits_for_a_channel_that_is_still_retrying(db_url, clock, receiver):
    store = EscalationStore.open(db_url, channels=["inbox", "webhook"], clock=clock)
    worker = webhook_worker(store, receiver, clock, renotify_after=dt.timedelta(minutes=5),
                            next_tier_after=dt.timedelta(hours=1))
    esc = turn(store, 1)
    receiver.fail_next = 1000
    await worker.run_once()
    clock.advance(minutes=5)
    await worker.run_once()
    [reminder] = [a for a in store.audit(esc["id"]) if a["action"] == "reminder"]
    assert reminder["detail"]["channels"] == ["inbox"] and reminder["detail"]["still_retrying"] == ["webhook"]
    assert not any(d["kind"] == "reminder" and d["channel"] == "webhook" for d in store.get(esc["id"])["deliveries"])
    await worker.aclose()
    store.dispose()


async def test_a_reminder_claimed_as_the_duty_team_acknowledges_is_dropped(db_url, clock, receiver):
    store = EscalationStore.open(db_url, channels=["inbox"], clock=clock)
    worker = DeliveryWorker(store, channels=[InboxChannel(store)], clock=clock, lease=LEASE)
    esc = turn(store, 1)
    await worker.run_once()
    clock.advance(minutes=5)
    store.schedule_followups(clock(), dt.timedelta(minutes=5), dt.timedelta(hours=1), "test")
    [row] = store.claim_due(["inbox"], "test", clock(), LEASE)
    store.acknowledge(esc["id"], by="A. Duty")
    assert await worker._deliver(row) is False
    assert {d["kind"]: d["status"] for d in store.get(esc["id"])["deliveries"]} == {
        "created": "delivered", "reminder": "cancelled"}
    store.dispose()


async def test_run_forever_delivers_promptly_and_stops_on_request(db_url, receiver):
    store = EscalationStore.open(db_url, channels=["inbox", "webhook"])
    worker = DeliveryWorker(store, channels=[InboxChannel(store), WebhookChannel(receiver.url(), SECRET)], lease=LEASE)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run_forever(poll_interval=5.0, stop_event=stop))
    await asyncio.sleep(0.2)
    esc = turn(store, 1)
    worker.wake()  # the web app wakes the worker after recording, rather than waiting for the next poll
    for _ in range(100):
        if receiver.accepted():
            break
        await asyncio.sleep(0.05)
    assert [a["escalation_id"] for a in receiver.accepted()] == [esc["id"]]
    stop.set()
    await asyncio.wait_for(task, 5)
    store.dispose()


def test_configuration_defaults_are_safe():
    config = EscalationConfig.from_env({})
    assert config.channel_names() == ["inbox"]
    assert config.renotify_after == dt.timedelta(minutes=5) and config.next_tier_after == dt.timedelta(minutes=15)
    assert EscalationConfig.from_env({"EARLYHELP_RENOTIFY_MINUTES": "2"}).renotify_after == dt.timedelta(minutes=2)
    assert EscalationConfig.from_env({"EARLYHELP_SMTP_HOST": "mail"}).channel_names() == ["inbox"]  # nobody to send to
    both = EscalationConfig.from_env({"EARLYHELP_SMTP_HOST": "mail", "EARLYHELP_SMTP_TO": "a@x, b@x",
                                      "EARLYHELP_WEBHOOK_URL": "https://duty.example/hook",
                                      "EARLYHELP_WEBHOOK_SECRET": "s"})
    assert both.channel_names() == ["inbox", "email", "webhook"] and both.smtp_to == ("a@x", "b@x")
    for bad in ({"EARLYHELP_WEBHOOK_URL": "https://duty.example/hook"},  # unsigned
                {"EARLYHELP_WEBHOOK_URL": "http://duty.example/hook", "EARLYHELP_WEBHOOK_SECRET": "s"},  # plain http
                {"EARLYHELP_RENOTIFY_MINUTES": "soon"},
                {"EARLYHELP_SMTP_PORT": "99999"}):
        with pytest.raises(ConfigError):
            EscalationConfig.from_env(bad)
    assert "s3cret" not in repr(EscalationConfig.from_env({"EARLYHELP_WEBHOOK_URL": "https://d.example/h",
                                                             "EARLYHELP_WEBHOOK_SECRET": "s3cret"}))


async def test_duty_email_follows_the_time_of_day(db_url, clock, smtp):
    """Out of the area's office hours the out-of-hours team is emailed too, with the number answering now;
    in office hours only the day duty team, with the office number."""
    env = env_for(smtp=smtp, EARLYHELP_OOH_TO="ooh@council.example",
                  EARLYHELP_OOH_TO_NORTH_LINCOLNSHIRE="edt@northlincs.example")
    config = EscalationConfig.from_env(env)
    assert config.ooh_recipients("north-lincolnshire") == ("edt@northlincs.example",)
    assert config.ooh_recipients("gloucestershire") == ("ooh@council.example",)
    store = EscalationStore.open(db_url, clock=clock, config=config)
    worker = DeliveryWorker(store, build_channels(store, config), clock=clock, config=config)
    late = turn(store, 1)  # Friday 16:45: North Lincolnshire's office closed at 16:30
    assert await worker.run_once() == 2
    store.acknowledge(late["id"], by="EDT")
    clock.now = dt.datetime(2026, 11, 30, 10, 0, tzinfo=dt.timezone.utc)  # Monday 10:00 in London
    day = turn(store, 2)
    assert await worker.run_once() == 2

    by_escalation = {m["msg"]["X-EarlyHelp-Escalation"]: m for m in smtp.messages}
    night, morning = by_escalation[late["id"]], by_escalation[day["id"]]
    assert night["to"] == ["edt@northlincs.example", "duty@council.example"]
    night_text = night["msg"].get_payload(decode=True).decode()
    assert "01724 296555" in night_text and "Out of hours" in night_text  # the answerphone answers now
    assert morning["to"] == ["duty@council.example"]
    morning_text = morning["msg"].get_payload(decode=True).decode()
    assert "01724 296500" in morning_text and "Out of hours" not in morning_text  # the office number
    flags = {e["id"]: [a["detail"].get("out_of_hours") for a in store.audit(e["id"])
                       if a["action"] == "notified" and a["detail"]["channel"] == "email"] for e in (late, day)}
    assert flags == {late["id"]: [True], day["id"]: [False]}
    await worker.aclose()
    store.dispose()


async def test_the_next_tier_is_reminded_too_until_someone_acknowledges(db_url, clock, receiver):
    config = EscalationConfig.from_env(env_for(receiver, EARLYHELP_NEXT_TIER_WEBHOOK_URL=receiver.url("/next-tier")))
    store = EscalationStore.open(db_url, clock=clock, config=config, channels=["inbox", "webhook"])
    worker = DeliveryWorker(store, build_channels(store, config), clock=clock, config=config,
                            renotify_after=dt.timedelta(minutes=5), next_tier_after=dt.timedelta(minutes=15))
    esc = turn(store, 1)
    await worker.run_once()
    for _ in range(3):
        clock.advance(minutes=5)
        await worker.run_once()
    assert store.get(esc["id"])["tier"] == 2
    clock.advance(minutes=5)  # 20 minutes: nobody has acknowledged, so both tiers are reminded
    assert await worker.run_once() == 3
    keys = [a["key"].split("/", 1)[1] for a in receiver.accepted()]
    assert keys[-2:] == ["webhook/reminder-4", "next_tier/reminder-4"] or keys[-2:] == ["next_tier/reminder-4", "webhook/reminder-4"]
    [reminder] = [a for a in store.audit(esc["id"]) if a["action"] == "reminder" and a["detail"]["number"] == 4]
    assert reminder["detail"]["channels"] == ["inbox", "webhook", "next_tier"]
    store.acknowledge(esc["id"], by="EDT manager")
    clock.advance(minutes=30)
    assert await worker.run_once() == 0
    assert len(receiver.accepted()) == len(keys)  # nothing more once acknowledged, and nothing twice
    assert len({a["key"] for a in receiver.accepted()}) == len(keys)
    await worker.aclose()
    store.dispose()


async def test_a_new_escalations_first_notice_goes_before_a_backlog_of_reminders(db_url, clock):
    """Found by the crash soak: with many unacknowledged escalations, their due reminders were claimed
    first (oldest due first) and a new escalation's first notice waited behind them for minutes."""
    store = EscalationStore.open(db_url, clock=clock, channels=["inbox"])
    worker = DeliveryWorker(store, channels=[InboxChannel(store)], clock=clock, lease=LEASE)
    old = [turn(store, n) for n in range(5)]
    assert await worker.run_once() == 5
    clock.advance(minutes=5)
    queued = store.schedule_followups(clock.now, dt.timedelta(minutes=5), dt.timedelta(minutes=15), "test")
    assert queued["reminders"] == 5  # five reminders due, none sent yet
    clock.advance(seconds=30)
    new = turn(store, 9, immediate_danger=False)
    [first] = store.claim_due(["inbox"], "w1", clock.now, LEASE, limit=1)
    assert (first["escalation_id"], first["kind"]) == (new["id"], "created")
    rest = store.claim_due(["inbox"], "w1", clock.now, LEASE, limit=10)
    assert [r["kind"] for r in rest] == ["reminder"] * 5  # then the reminders, longest due first
    assert [r["escalation_id"] for r in rest] == [e["id"] for e in old]
    store.dispose()
