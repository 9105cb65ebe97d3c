"""The command line: `python -m lib <command>`. Each command does one thing."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from contextlib import contextmanager

from lib.config import ConfigError, Database, Settings
from lib.app import make_llm, open_store
from lib.llm import LLMError
from lib.personas import InvalidPersona, generate_with_llm, upsert_catalog
from lib.progress import ProgressPrinter, print_summary
from lib.runner import RunRefused
from lib.scout import scan
from lib.serve import serve
from lib.store import StoreError
from lib.store.embedded import EmbeddedPostgresError
from lib.store.queries import Queries
from lib.training import train_once


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lib", description=(
        "Autonomous self-play training for the closer. The database is chosen from the environment "
        "(USE_LOCAL_DB, then the Supabase URL, then the embedded PostgreSQL under .data/)."))
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    commands.add_parser("migrate", help="apply lib/sql/schema.sql (safe to repeat)",
                        description="Apply lib/sql/schema.sql to the selected database. Safe to repeat.")
    generate = commands.add_parser(
        "generate-personas", help="upsert the built-in persona catalog by name (or invent new ones)",
        description="Upsert the built-in seller personas by name. Personas added by hand are left alone.")
    generate.add_argument("--llm", type=_positive_int, metavar="N",
                          help="instead, ask PERSONA_MODEL for N new personas (validated, then upserted)")
    commands.add_parser("status", help="show the pause, personas, runs and battles",
                        description="Show the pause, persona counts, the last run and battle counts.")
    pause = commands.add_parser("pause", help="pause training (persisted until resume)",
                                description="Pause training: cron and manual runs answer 503 until resume.")
    pause.add_argument("--reason", required=True, help="why training is paused (shown everywhere)")
    commands.add_parser("resume", help="resume paused training",
                        description="Resume training after a pause (by a person, or by a batch that reached its cost cap).")
    train = commands.add_parser("train", help="run one batch of battles here, with a progress bar",
                                description="Run one batch of battles locally, with a progress bar and a "
                                            "summary. Exits non-zero when the run failed, was killed or "
                                            "refused.")
    train.add_argument("--batch-size", type=_positive_int, metavar="N",
                       help="battles in this batch (default TRAINING_BATCH_SIZE, at most MAX_TRAINING_BATCH_SIZE)")
    train.add_argument("--simulate", action="store_true",
                       help="offline: the simulated LLM and the embedded database (no keys needed); "
                            "applies the schema and seeds the personas if needed")
    serve = commands.add_parser("serve", help="serve the Vercel functions locally",
                                description="Serve the functions under api/ at the same paths as Vercel "
                                            "(rewrites from vercel.json), on 127.0.0.1.")
    serve.add_argument("--port", type=int, default=3000, help="port (default 3000; 0 picks a free one)")
    serve.add_argument("--cron", action="store_true", help="also fire vercel.json's cron schedules locally")
    commands.add_parser("scan", help="run the Tactical Scout's breakthrough scan once",
                        description="Flag breakthroughs, extract their defining moments and alert Slack.")
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


@contextmanager
def _store(settings: Settings):
    store = open_store(settings)
    try:
        yield store
    finally:
        store.close()


def cmd_migrate(settings, args) -> int:
    with _store(settings) as store:
        store.migrate()
    print("schema applied")
    return 0


def cmd_generate_personas(settings, args) -> int:
    with _store(settings) as store:
        if args.llm:
            results, refused = generate_with_llm(settings, store, make_llm(settings), args.llm)
            for reason in refused:
                print(f"  refused  {reason}")
        else:
            results = upsert_catalog(store)
    for row in results:
        print(f"{row['action']:>9}  {row['name']}")
    counts = {action: sum(1 for r in results if r["action"] == action)
              for action in ("inserted", "updated", "unchanged")}
    print(", ".join(f"{n} {action}" for action, n in counts.items()))
    return 0


def cmd_status(settings, args) -> int:
    with _store(settings) as store:
        status = Queries(store).status(settings.daily_budget_usd, settings.monthly_budget_usd)
    print(json.dumps(status, indent=2, default=str))
    return 0


def cmd_pause(settings, args) -> int:
    with _store(settings) as store:
        state = Queries(store).set_paused(True, args.reason)
    print(f"training paused: {state['reason']}")
    return 0


def cmd_resume(settings, args) -> int:
    with _store(settings) as store:
        Queries(store).set_paused(False)
    print("training resumed")
    return 0


def cmd_train(settings, args) -> int:
    if args.simulate:
        settings = dataclasses.replace(settings, llm_provider="simulated", database=Database("embedded"))
    llm = make_llm(settings)
    llm.warm_up()  # the SDK's import overlaps opening the database
    with _store(settings) as store:
        if args.simulate:
            store.migrate()
            if Queries(store).status()["personas"]["total"] == 0:
                upsert_catalog(store)
        printer = ProgressPrinter(sys.stdout)
        try:
            # No webhook to wait for here: the scout runs in this process.
            trained = train_once(settings, store, llm, trigger="cli", scout="in_process",
                                 requested_batch_size=args.batch_size, on_progress=printer.update)
        except RunRefused as refused:
            print(f"error: {refused}", file=sys.stderr)
            return 1
        finally:
            printer.close()
        print_summary(trained.batch, sys.stdout)
        if trained.scan is not None:
            _print_scan(trained.scan)
    return 0 if trained.batch["status"] in ("completed", "timed_out") else 1


def cmd_serve(settings, args) -> int:
    serve(args.port, args.cron)
    return 0


def cmd_scan(settings, args) -> int:
    with _store(settings) as store:
        deadline = time.monotonic() + settings.max_execution_ms / 1000
        result = scan(settings, store, make_llm(settings), deadline=deadline)
    _print_scan(result)
    return 0


def _print_scan(result: dict) -> None:
    print(f"scout: {result['processed']} processed, {len(result['breakthroughs'])} new breakthroughs, "
          f"{result['alerted']} alerted")
    for item in result["breakthroughs"]:
        print(f"  {item['score']:>6}  {item['persona']}  {item['battleId']}")
    for error in result["errors"]:
        print(f"  ! {error}")


COMMANDS = {
    "serve": cmd_serve,
    "scan": cmd_scan,
    "train": cmd_train,
    "migrate": cmd_migrate,
    "generate-personas": cmd_generate_personas,
    "status": cmd_status,
    "pause": cmd_pause,
    "resume": cmd_resume,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        # serve reads the environment per request, as Vercel does: a bad value is each request's 500.
        settings = None if args.command == "serve" else Settings.from_env()
        return COMMANDS[args.command](settings, args)
    except (ConfigError, StoreError, EmbeddedPostgresError, LLMError, InvalidPersona) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
