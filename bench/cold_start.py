"""Fresh-process time to the first response of the train function, and what each path imports.

    python -m bench.cold_start

Each row is a new Python process that loads api/cron/train.py, serves one request on 127.0.0.1
and reports the wall time from process start to the response, and which heavy modules it
loaded. The 200 row runs a 1-battle batch on the simulated LLM against the embedded database.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from bench.common import table
from lib.config import PROJECT_ROOT
from lib.store.embedded import EmbeddedPostgres

PROBE = r"""
import time
t0 = time.monotonic()
import http.client, importlib.util, json, sys, threading
from http.server import ThreadingHTTPServer
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


def probe(env: dict, authorization: str) -> dict:
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", PROBE, authorization], cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=180)
    wall = (time.monotonic() - started) * 1000
    row = json.loads(result.stdout.strip().splitlines()[-1])
    row["wall_ms"] = wall
    return row


def main() -> None:
    server = EmbeddedPostgres(PROJECT_ROOT / ".data" / "pg-bench").start()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE", "SANDBOX", "OPENAI", "NEXT_PUBLIC"))}
    env = {**base, "CRON_SECRET": "bench-secret", "USE_LOCAL_DB": "true", "LOCAL_DB_URL": server.url,
           "LLM_PROVIDER": "simulated", "DELAY_BETWEEN_BATTLES_MS": "0", "BATTLE_MAX_TURNS": "1"}
    subprocess.run([sys.executable, "-m", "lib", "migrate"], cwd=PROJECT_ROOT, env=env, check=True,
                   capture_output=True)
    subprocess.run([sys.executable, "-m", "lib", "generate-personas"], cwd=PROJECT_ROOT, env=env, check=True,
                   capture_output=True)
    subprocess.run([sys.executable, "-m", "lib", "resume"], cwd=PROJECT_ROOT, env=env, check=True,
                   capture_output=True)
    rows = []
    for label, case_env, auth in (
        ("no CRON_SECRET", {k: v for k, v in env.items() if k != "CRON_SECRET"}, "Bearer x"),
        ("wrong bearer", env, "Bearer wrong"),
        ("ran (simulated, 1 battle)", env, "Bearer bench-secret"),
    ):
        result = min((probe(case_env, auth) for _ in range(3)), key=lambda r: r["ms"])
        rows.append([label, result["status"], f"{result['ms']:.0f}", f"{result['wall_ms']:.0f}",
                     result["count"], ", ".join(result["modules"]) or "(none)"])
    server.stop()
    print("Fresh-process time to first response of api/cron/train.py (best of 3)")
    print(table(["case", "status", "to response ms", "process wall ms", "modules", "heavy modules loaded"], rows))


if __name__ == "__main__":
    main()
