"""Fresh-process time to the first response of the train function, and what each path imports.

    python -m bench.cold_start

Each row is a new Python process that loads api/cron/train.py, serves one request on 127.0.0.1
and reports the time from its first line to the response, its whole wall time, and which heavy
modules it loaded. The 200 row runs a 1-battle batch (1 turn: 3 calls) with the real `openai`
client against the fake OpenAI server answering at once (its own process) and the embedded
database, so it measures our start-up, not the model. The last two rows reach the database
through a proxy that delays every packet by 20 ms each way, as a hosted database is away from a
function: there, importing the SDK on a thread from the moment the request is authorised
overlaps the database's round trips; the "not overlapped" rows import it where the first battle
needs it. Each row runs REPEATS times, round robin: min–max (median).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from bench.common import LatencyProxy, fake_openai, spread, table
from lib.config import PROJECT_ROOT
from lib.store.embedded import EmbeddedPostgres

PROBE = r"""
import time
t0 = time.monotonic()
import http.client, importlib.util, json, sys, threading
from http.server import ThreadingHTTPServer
if sys.argv[2:] == ["serial"]:  # the SDK imported where the first battle needs it, not overlapped
    import lib.llm
    lib.llm.LLM.warm_up = lambda self: None
spec = importlib.util.spec_from_file_location("train", "api/cron/train.py")
module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
server = ThreadingHTTPServer(("127.0.0.1", 0), module.handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=120)
conn.request("POST", "/api/cron/train", body=json.dumps({"batchSize": 1}),
             headers={"Authorization": sys.argv[1], "Content-Type": "application/json"})
status = conn.getresponse().status
elapsed = time.monotonic() - t0
heavy = [m for m in ("openai", "psycopg", "requests", "httpx2", "pydantic", "lib.runner") if m in sys.modules]
print(json.dumps({"status": status, "ms": elapsed * 1000, "modules": heavy, "count": len(sys.modules)}))
"""


def probe(env: dict, authorization: str, *flags: str) -> dict:
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", PROBE, authorization, *flags], cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=180)
    wall = (time.monotonic() - started) * 1000
    row = json.loads(result.stdout.strip().splitlines()[-1])
    row["wall_ms"] = wall
    return row


REPEATS = 5


def main() -> None:
    with fake_openai(0.0) as fake:
        _main(fake)


def _main(fake: str) -> None:
    server = EmbeddedPostgres(PROJECT_ROOT / ".data" / "pg-bench").start()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE", "SANDBOX", "OPENAI", "NEXT_PUBLIC"))}
    env = {**base, "CRON_SECRET": "bench-secret", "USE_LOCAL_DB": "true", "LOCAL_DB_URL": server.url,
           "OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": fake, "DELAY_BETWEEN_BATTLES_MS": "0",
           "BATTLE_MAX_TURNS": "1", "MAX_TOKENS_PER_TURN": "64"}
    subprocess.run([sys.executable, "-m", "lib", "migrate"], cwd=PROJECT_ROOT, env=env, check=True,
                   capture_output=True)
    subprocess.run([sys.executable, "-m", "lib", "generate-personas"], cwd=PROJECT_ROOT, env=env, check=True,
                   capture_output=True)
    subprocess.run([sys.executable, "-m", "lib", "resume"], cwd=PROJECT_ROOT, env=env, check=True,
                   capture_output=True)
    assert server.port is not None  # started
    proxy = LatencyProxy(server.port, 0.020)
    far = {**env, "LOCAL_DB_URL": f"postgresql://postgres@127.0.0.1:{proxy.port}/{server.url.rsplit('/', 1)[1]}"}
    rows = []
    cases = (
        ("no CRON_SECRET", {k: v for k, v in env.items() if k != "CRON_SECRET"}, "Bearer x"),
        ("wrong bearer", env, "Bearer wrong"),
        ("ran (real client, zero-latency fake, 1 battle)", env, "Bearer bench-secret"),
        ("ran, the SDK import not overlapped", env, "Bearer bench-secret", "serial"),
        ("ran, database 20 ms away", far, "Bearer bench-secret"),
        ("ran, database 20 ms away, the SDK import not overlapped", far, "Bearer bench-secret", "serial"),
    )
    # Round robin, so that the machine's load falls on every case alike.
    runs = {case[0]: [] for case in cases}
    for _ in range(REPEATS):
        for label, case_env, auth, *flags in cases:
            runs[label].append(probe(case_env, auth, *flags))
    for label, results in runs.items():
        rows.append([label, "/".join(sorted({str(r["status"]) for r in results})),
                     spread([r["ms"] for r in results], 0), spread([r["wall_ms"] for r in results], 0),
                     results[-1]["count"], ", ".join(results[-1]["modules"]) or "(none)"])
    proxy.close()
    server.stop()
    print(f"Fresh-process time to first response of api/cron/train.py ({REPEATS} processes per row: min–max (median))")
    print(table(["case", "status", "to response ms", "process wall ms", "modules", "heavy modules loaded"], rows))


if __name__ == "__main__":
    main()
