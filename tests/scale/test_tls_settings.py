"""TLS to Redis and PostgreSQL with the existing environment settings: ``REDIS_URL=rediss://...`` and a
``DATABASE_URL`` carrying ``?sslmode=...`` reach the settings Rasa itself reads (checked with Rasa's own
endpoint reader and lock store, against a real redis-server listening only for TLS)."""
from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
import time
import urllib.parse

import pytest

from bot.paths import REPO_ROOT
from bot.runner import RASA, free_port, write_endpoints
from bot.scaled import RedisAddress, ScaledError, redis_binary

RASA_PYTHON = RASA.parent / "python"
AWKWARD = "p:w#d'\"x y%"  # a password YAML would misread if written bare


def rasa_reads(endpoints) -> dict:
    """What Rasa 3.6 makes of the endpoints file: its lock store (connected and used) and tracker settings."""
    script = textwrap.dedent(f"""
        import json
        from rasa.core.utils import AvailableEndpoints
        from rasa.core.lock_store import LockStore
        endpoints = AvailableEndpoints.read_endpoints({str(endpoints)!r})
        out = {{"tracker": endpoints.tracker_store.kwargs, "tracker_url": endpoints.tracker_store.url,
               "tracker_type": endpoints.tracker_store.type}}
        if endpoints.lock_store is not None:
            store = LockStore.create(endpoints.lock_store)
            out["lock_ping"] = bool(store.red.ping())
            out["store"] = type(store).__module__ + "." + type(store).__name__
            out["lifetime"] = getattr(store, "lock_lifetime", None)
            out["ticket"] = store.issue_ticket("tls-check")
            out["connection"] = type(store.red.connection_pool.get_connection("PING")).__name__
        print("RESULT " + json.dumps(out))
    """)
    done = subprocess.run([str(RASA_PYTHON), "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3", "RASA_TELEMETRY_ENABLED": "false"})
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line, done.stderr[-3000:]
    return json.loads(line[len("RESULT "):])


@pytest.fixture
def tls_redis(tmp_path):
    """A redis-server that listens only for TLS (a self-signed certificate for 127.0.0.1), with a password."""
    if redis_binary() is None or shutil.which("openssl") is None:
        pytest.skip("redis-server and openssl are needed")
    cert, key = tmp_path / "redis.crt", tmp_path / "redis.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    port, password = free_port(), "s3cret-" + str(time.time_ns())
    conf = tmp_path / "redis.conf"
    conf.write_text(f"port 0\ntls-port {port}\nbind 127.0.0.1\ntls-cert-file {cert}\ntls-key-file {key}\n"
                    f"tls-ca-cert-file {cert}\ntls-auth-clients no\nrequirepass {password}\nsave \"\"\n"
                    f"appendonly no\ndir {tmp_path}\n")
    process = subprocess.Popen([redis_binary(), str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        address = RedisAddress.parse(f"rediss://:{password}@127.0.0.1:{port}/0?ssl_ca_certs={cert}")
        deadline = time.monotonic() + 20
        while not address.ping():
            if process.poll() is not None:
                pytest.skip("this redis-server was built without TLS")
            assert time.monotonic() < deadline, "redis-server did not answer over TLS"
            time.sleep(0.2)
        yield address, password, port, cert
    finally:
        process.terminate()
        process.wait(10)


def test_rediss_reaches_rasas_lock_store_over_tls(tls_redis, tmp_path, monkeypatch):
    address, password, port, cert = tls_redis
    assert address.tls and address.ssl_ca_certs == str(cert)
    assert not RedisAddress.parse(f"redis://:{password}@127.0.0.1:{port}/0").ping()  # plain text is refused
    monkeypatch.delenv("DATABASE_URL", raising=False)
    endpoints = write_endpoints(tmp_path, free_port(), "token")
    with endpoints.open("a") as handle:
        handle.write(address.lock_store_yaml())
    seen = rasa_reads(endpoints)
    assert seen["lock_ping"] is True and seen["connection"] == "SSLConnection"
    assert seen["ticket"] == 0  # the lock store works: first ticket of a new conversation
    assert seen["store"] == "rasa_ext.lock_store.RedisTicketLockStore" and seen["lifetime"] == 15  # ours, with its lifetime


def test_database_url_tls_settings_and_an_awkward_password_reach_rasas_tracker_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://earlyhelp:" + urllib.parse.quote(AWKWARD, safe="")
                       + "@db.council.example:6543/earlyhelp?sslmode=verify-full&sslrootcert=/etc/earlyhelp/ca.pem")
    endpoints = write_endpoints(tmp_path, free_port(), "token")
    with endpoints.open("a") as handle:
        handle.write(RedisAddress.parse("rediss://u:" + "pw%23x@redis.council.example:6380/2?ssl_ca_certs=/ca.pem")
                     .lock_store_yaml().replace("lock_store:", "unused_lock_store:"))  # read, not connected
    seen = rasa_reads(endpoints)
    assert seen["tracker_type"] == "rasa_ext.tracker_store.CachedSQLTrackerStore"
    assert seen["tracker_url"] == "db.council.example"
    tracker = seen["tracker"]
    assert tracker["password"] == AWKWARD and tracker["port"] == 6543 and tracker["db"] == "earlyhelp"
    assert tracker["query"] == {"sslmode": "verify-full", "sslrootcert": "/etc/earlyhelp/ca.pem"}


def test_redis_url_settings_are_checked():
    address = RedisAddress.parse("rediss://user:p%40ss@redis.example:6380/3?ssl_ca_certs=/ca.pem&ssl_certfile=/c.pem&ssl_keyfile=/k.pem")
    assert (address.host, address.port, address.db, address.username, address.password) == ("redis.example", 6380, 3, "user", "p@ss")
    assert (address.tls, address.ssl_ca_certs, address.ssl_certfile, address.ssl_keyfile) == (True, "/ca.pem", "/c.pem", "/k.pem")
    assert "use_ssl: true" in address.lock_store_yaml()
    assert "use_ssl" not in RedisAddress.parse("redis://:pw@127.0.0.1:6379/0").lock_store_yaml()
    for bad, says in [("redis://h:1/0?ssl_ca_certs=/ca.pem", "need rediss"), ("rediss://h:1/0?sslmode=x", "unknown setting"),
                      ("http://h:1/0", "must look like"), ("redis://h:1/x", "must be a number")]:
        with pytest.raises(ScaledError, match=says):
            RedisAddress.parse(bad)
