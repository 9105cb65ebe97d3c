"""The command line: `python -m lib <command>`. Each command does one thing."""
from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from lib import processes, referee, slack
from lib.app import make_llm, open_store
from lib.config import ConfigError, Database, Settings
from lib.deadline import Deadline
from lib.llm import LLMError
from lib.pause_watch import Interrupt
from lib.personas import InvalidPersona, generate_with_llm, upsert_catalog
from lib.progress import ProgressPrinter, print_summary
from lib.redact import redact
from lib.referee import CalibrationError
from lib.runner import RunRefused
from lib.scout import MAX_ATTEMPTS, scan
from lib.serve import IDLE_TIMEOUT_S, ServeError, serve
from lib.spending import spend
from lib.store import Store, StoreError, migrations
from lib.store.embedded import EmbeddedPostgresError
from lib.store.proposal_queries import ProposalQueries
from lib.store.queries import MAX_VERSION_ID, Queries
from lib.text import unstorable
from lib.training import train_once


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lib", description=(
        "Autonomous self-play training for the closer. The database is chosen from the environment "
        "(USE_LOCAL_DB, then the Supabase URL, then the embedded PostgreSQL under .data/)."))
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    migrate = commands.add_parser(
        "migrate", help="apply the pending migrations and the functions (safe to repeat)",
        description="Apply the pending migrations (lib/sql/migrations/) and every function (lib/sql/functions/) "
                    "to the selected database, under an advisory lock. Safe to repeat.")
    migrate_output = migrate.add_mutually_exclusive_group()
    migrate_output.add_argument("--print", dest="print_sql", action="store_true",
                                help="print the SQL for the Supabase SQL editor instead (no database needed)")
    migrate_output.add_argument("--supabase", metavar="DIR", type=Path,
                                help="write Supabase CLI migration files into DIR instead (no database needed)")
    generate = commands.add_parser(
        "generate-personas", help="upsert the built-in persona catalog by name (or invent new ones)",
        description="Upsert the built-in seller personas by name. Personas added by hand are left alone.")
    generate.add_argument("--llm", type=_positive_int, metavar="N",
                          help="instead, ask PERSONA_MODEL for N new personas (validated, then upserted)")
    commands.add_parser("recover", help="close runs whose process is gone, now",
                        description="Close, now, every run in progress whose process (on this host) is gone, "
                                    "and every run past its deadline: its battles end failed, its personas are "
                                    "released. A later run would close them too, once past their deadline.")
    commands.add_parser("status", help="show the pause, personas, runs and battles",
                        description="Show the pause, persona counts, the last run and battle counts.")
    pause = commands.add_parser("pause", help="pause training (persisted until resume)",
                                description="Pause training: cron and manual runs answer 503 until resume.")
    pause.add_argument("--reason", required=True, type=_storable, help="why training is paused (shown everywhere)")
    commands.add_parser("resume", help="resume paused training",
                        description="Resume training after a pause (by a person, or by a batch that reached its "
                                    "cost cap).")
    train = commands.add_parser("train", help="run one batch of battles here, with a progress bar",
                                description="Run one batch of battles locally, with a progress bar and a "
                                            "summary. Exits non-zero when the run failed, was killed or "
                                            "refused. Ctrl-C (or SIGTERM) finishes the run: battles in flight "
                                            "are cut and the run is recorded as killed; exit 130 (143). A second "
                                            "Ctrl-C quits at once.")
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
    serve.add_argument("--idle-timeout", type=_positive_seconds, default=IDLE_TIMEOUT_S, metavar="SECONDS",
                       help=f"close a connection idle this long (default {IDLE_TIMEOUT_S:g})")
    commands.add_parser("scan", help="run the Tactical Scout's breakthrough scan once",
                        description="Flag breakthroughs, extract their defining moments and alert Slack.")
    check = commands.add_parser(
        "referee-check", help="score the shipped calibration set with the configured referee",
        description="Score the labelled transcripts of lib/referee_calibration.json with REFEREE_MODEL (real or "
                    "simulated) and report agreement with their expected bands: Spearman correlation with the "
                    "band centres, the share inside their band, and each transcript outside with its score. "
                    "Prints the most it can cost first and refuses to run past REFEREE_CHECK_CAP_USD. The "
                    "result is stored (the dashboard and status show the last one). Run it before switching "
                    "REFEREE_MODEL.")
    check.add_argument("--json", action="store_true", help="print the result as JSON (the cost line goes to stderr)")
    versions = commands.add_parser(
        "versions", help="list the closer's versions and the canary in progress",
        description="Every closer version, newest first: status, battles, mean score and, for a candidate or "
                    "a decided version, the canary's decision, pairs, difference and 95% interval against "
                    "its parent.")
    versions.add_argument("--json", action="store_true",
                          help='print {"versions": [...], "canary": {...} | null} as JSON')
    promote = commands.add_parser(
        "promote", help="promote a breakthrough's tactic: a candidate version, measured by the canary",
        description="Make a candidate version = the active version + the breakthrough's tactic; the canary "
                    "then adopts or rolls it back. Refused for an empty, too long or repeated tactic.")
    promote.add_argument("battle_id", metavar="BATTLE_ID", type=_uuid, help="the breakthrough battle's id")
    promote.add_argument("--tactic", metavar="TEXT", type=_storable,
                         help="the tactic to promote (default: the scout's snippet)")
    promote.add_argument("--direct", action="store_true",
                         help="adopt at once, without a canary (recorded as a direct adoption)")
    proposals = commands.add_parser(
        "proposals", help="list the proposal queue, the proposal under canary and the recent outcomes",
        description="The proposal queue in the order its proposals become candidates (fast-tracked, then a "
                    "person's order, then confirmed score, then age), the proposal under canary, and the last "
                    "decided ones with their outcomes.")
    proposals.add_argument("--json", action="store_true",
                           help='print {"queue": [...], "canary": {...} | null, "decided": [...]} as JSON')
    propose = commands.add_parser(
        "propose", help="queue a change to the closer for its canary: add, remove or edit a tactic",
        description="Queue a proposal: TEXT adds a tactic; --remove TACTIC_ID removes an active one; --edit "
                    "TACTIC_ID TEXT rewords one. The tactic checks (empty, too long, repeat, near-repeat, "
                    "already tried) run now; the canary decides once it is the candidate.")
    propose.add_argument("text", metavar="TEXT", nargs="?", help="the tactic to add (or the new text with --edit)")
    change = propose.add_mutually_exclusive_group()
    change.add_argument("--remove", metavar="TACTIC_ID", type=_tactic_uuid, help="propose removing this active tactic")
    change.add_argument("--edit", metavar="TACTIC_ID", type=_tactic_uuid, help="propose rewording this active tactic")
    propose.add_argument("--reason", metavar="TEXT", help="why (shown in the queue and in Slack)")
    propose.add_argument("--fast-track", action="store_true", help="make it the next proposal to run")
    veto = commands.add_parser(
        "veto", help="veto a queued proposal, or withdraw the one under canary",
        description="Veto proposal ID: a queued one never runs; the one under canary is withdrawn (its candidate "
                    "withdrawn, the active version stays).")
    veto.add_argument("proposal_id", metavar="ID", type=_positive_int, help="the proposal's number")
    veto.add_argument("--reason", metavar="TEXT", help="why (recorded as its outcome)")
    rollback = commands.add_parser(
        "rollback", help="make an earlier version's tactics active at once (no canary)",
        description="Roll back to VERSION_ID: a new active version with its tactics, recorded; a candidate "
                    "under canary is withdrawn. With the active version's id, withdraws the candidate.")
    rollback.add_argument("version_id", metavar="VERSION_ID", type=_version_id, help="the version to roll back to")
    rollback.add_argument("--force", action="store_true",
                          help="also to a version that was never active (a withdrawn, rolled back or inconclusive "
                               "candidate): adopted at once, with no canary")
    return parser


def _uuid(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a battle id (a UUID), got {text!r}") from None


def _tactic_uuid(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a tactic id (a UUID), got {text[:40]!r}") from None


def _positive_int(text: str) -> int:
    if len(text.strip().lstrip("+-0")) > 100:
        raise argparse.ArgumentTypeError("must be a whole number of at most 100 digits")
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text[:40]!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _version_id(text: str) -> int:
    value = _positive_int(text)
    if value > MAX_VERSION_ID:
        raise argparse.ArgumentTypeError(f"{value} is past the largest version number ({MAX_VERSION_ID}): no such "
                                         "version")
    return value


def _storable(text: str) -> str:
    problem = unstorable(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text[:40]!r}") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 3600, got {text[:40]}")
    return value


@contextmanager
def _store(settings: Settings) -> Iterator[Store]:
    store = open_store(settings)
    try:
        yield store
    finally:
        store.close()


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    if args.print_sql:
        sys.stdout.write(migrations.print_sql())
        return 0
    if args.supabase:
        written = migrations.supabase_files(args.supabase)
        for path in written:
            print(f"wrote {path}")
        print(f"{len(written)} files written" if written else f"{args.supabase}: nothing new to write")
        return 0
    with _store(settings) as store:
        result = store.migrate()
    print("\n".join(result.lines()))
    return 0


def cmd_generate_personas(settings: Settings, args: argparse.Namespace) -> int:
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


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:

    with _store(settings) as store:
        queries = Queries(store)
        status = queries.status(settings.daily_budget_usd, settings.monthly_budget_usd)
        status["scout"] = queries.scout_state(MAX_ATTEMPTS)
        status["referee"] = queries.referee_report(settings.scout_threshold, referee.CONSISTENCY_DAYS,
                                                   referee.PRECISION_DAYS, referee.PRECISION_MIN_DECISIONS)
    print(json.dumps(status, indent=2, default=str))
    return 0


def cmd_pause(settings: Settings, args: argparse.Namespace) -> int:
    with _store(settings) as store:
        state = Queries(store).set_paused(True, args.reason)
    print(f"training paused: {state['reason']}")
    return 0


def cmd_resume(settings: Settings, args: argparse.Namespace) -> int:
    with _store(settings) as store:
        Queries(store).set_paused(False)
    print("training resumed")
    return 0


def provider_line(settings: Settings) -> str:
    """The first line of a run: which provider and models it uses, and whether it costs money."""
    if settings.simulated:
        return ("LLM: the offline simulator (LLM_PROVIDER=simulated): no provider is called and no money is spent "
                "(the dollar figures are what the same calls would cost)")
    models = (f"closer {settings.closer_model}, sellers {settings.persona_model}, referee {settings.referee_model}, "
              f"scout {settings.scout_model}")
    where = (f"the OpenAI-compatible server at {settings.openai_base_url} (OPENAI_BASE_URL)" if settings.openai_base_url
             else "OpenAI's API (LLM_PROVIDER unset means openai)")
    return (f"LLM: {where}: {models}. Real calls that cost money: at most ${settings.cost_cap_usd} this batch "
            "(KILL_SWITCH_THRESHOLD_USD); LLM_PROVIDER=simulated runs offline for free")


NEXT_STEPS = ("next: python -m lib serve (with ADMIN_PASSWORD set) and open "
              "http://127.0.0.1:3000/admin/training-monitor; python -m lib status; python -m lib versions")


@contextmanager
def _finish_on_signals(interrupt: Interrupt) -> Iterator[None]:
    """The first Ctrl-C or SIGTERM finishes the run (see `Interrupt`); a second Ctrl-C quits at once."""
    def finish(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        interrupt.set(name)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        print(f"{name}: finishing the run (battles in flight are cut); Ctrl-C again quits at once", file=sys.stderr,
              flush=True)

    previous = {signum: signal.signal(signum, finish) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


INTERRUPTED_EXIT = {"SIGINT": 130, "SIGTERM": 143}  # 128 + the signal's number, as a shell reports it


def cmd_train(settings: Settings, args: argparse.Namespace) -> int:
    if args.simulate:
        settings = dataclasses.replace(settings, llm_provider="simulated", database=Database("embedded"))
    print(provider_line(settings), flush=True)
    llm = make_llm(settings)
    llm.warm_up()  # the SDK's import overlaps opening the database
    with _store(settings) as store:
        if args.simulate:
            store.migrate()
            if Queries(store).status()["personas"]["total"] == 0:
                upsert_catalog(store)
        printer = ProgressPrinter(sys.stdout)
        interrupt = Interrupt()
        try:
            with _finish_on_signals(interrupt):
                # No webhook to wait for here: the scout runs in this process.
                trained = train_once(settings, store, llm, trigger="cli", scout="in_process",
                                     requested_batch_size=args.batch_size, on_progress=printer.update,
                                     interrupt=interrupt)
        except RunRefused as refused:
            print(f"error: {refused}", file=sys.stderr)
            return 1
        finally:
            printer.close()
        print_summary(trained.batch, sys.stdout, billed=printer.spent)
        if trained.scan is not None:
            _print_scan(trained.scan, settings)
    if interrupt.reason is not None:
        return INTERRUPTED_EXIT[interrupt.reason]
    print(NEXT_STEPS)
    return 0 if trained.batch["status"] in ("completed", "timed_out") else 1


def cmd_recover(settings: Settings, args: argparse.Namespace) -> int:
    with _store(settings) as store:
        queries = Queries(store)
        gone = [run["id"] for run in queries.running_runs() if processes.gone(run["process"])]
        closed = queries.close_orphaned_runs(gone)
        left = queries.running_runs()
    print(f"closed {closed} run{'s' if closed != 1 else ''} ({len(gone)} whose process is gone)")
    for run in left:
        where = "its process is running" if run["process"] else "its process is unknown"
        print(f"  still running: {run['id']} ({where}; closed by a later run once past {run['deadline_at']})")
    return 0


def cmd_serve(settings: Settings | None, args: argparse.Namespace) -> int:
    serve(args.port, args.cron, args.idle_timeout)
    return 0


def cmd_scan(settings: Settings, args: argparse.Namespace) -> int:
    with _store(settings) as store:
        result = scan(settings, store, make_llm(settings), deadline=Deadline.for_run(settings).at)
    _print_scan(result, settings)
    return 0


def _nothing_to_do(result: dict[str, Any], settings: Settings) -> str:
    """Why a scan processed nothing: what it looked at, and why none of it needed work."""
    seen = result.get("triaged", 0)
    if not seen:
        return "no completed battle was new to the scout, and none had work left"
    return (f"{seen} new completed battle{'s' if seen != 1 else ''}: none scored {settings.scout_threshold} or more "
            f"(SCOUT_BREAKTHROUGH_THRESHOLD) and none was picked for a referee audit "
            f"(REFEREE_AUDIT_SHARE {settings.referee_audit_share})")


def _print_scan(result: dict[str, Any], settings: Settings) -> None:
    reason = f" ({_nothing_to_do(result, settings)})" if not result["processed"] else ""
    print(f"scout: {result['processed']} processed{reason}, {len(result['breakthroughs'])} new breakthroughs, "
          f"{result['alerted']} alerted")
    for item in result["breakthroughs"]:
        print(f"  {item['score']:>6}  {item['persona']}  {item['battleId']}")
    for item in result.get("unconfirmed", []):
        print(f"  unconfirmed {item['score']} → {item['confirmScore']}  {item['persona']}  {item['battleId']}: "
              f"{item['reason']}")
    for error in result["errors"]:
        print(f"  ! {error}")


CHECK_DEADLINE_S = 300  # referee-check runs from a terminal, not under a function's time limit


def cmd_referee_check(settings: Settings, args: argparse.Namespace) -> int:
    items = referee.load_calibration()
    model, cap = settings.referee_model, settings.referee_check_cap_usd
    bound = referee.calibration_bound(items, model, settings.model_prices)
    label = " (simulated)" if settings.simulated else ""
    print(f"referee-check: {len(items)} transcripts scored by {model}{label}: at most ${bound} "
          f"(REFEREE_CHECK_CAP_USD ${cap})", file=sys.stderr if args.json else sys.stdout, flush=True)
    if bound > cap:
        raise ConfigError(f"referee-check could cost up to ${bound}, more than REFEREE_CHECK_CAP_USD (${cap}): "
                          "raise it to run the check")
    llm = make_llm(settings)
    with _store(settings) as store:  # opened first: a result that cannot be stored is not paid for
        deadline = Deadline.after(CHECK_DEADLINE_S).at
        # Its block of the daily and monthly budget is what the check may cost at most.
        with spend(settings, store, "referee_check", bound, deadline, llm.simulated) as block:
            result = referee.run_calibration(llm, items, model, block, deadline)
        saved = Queries(store).record_calibration(
            model=model, simulated=llm.simulated, spearman=result["spearman"], in_band=result["inBand"],
            items=result["scored"], cost_usd=result["cost"], result=result)
    result["at"] = saved["at"]
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for row in result["results"]:
        low, high = row["band"]
        got = "failed" if row["score"] is None else f"{row['score']:6.2f}"
        mark = "" if row["inBand"] is None else ("in band" if row["inBand"] else "OUTSIDE")
        print(f"  {row['id']:<32} {low:>3}–{high:<3} {got}  {mark}")
    spearman = "-" if result["spearman"] is None else f"{result['spearman']:.3f}"
    in_band = "-" if result["inBand"] is None else f"{result['inBand'] * 100:.0f}%"
    print(f"Spearman {spearman} against the band centres · {in_band} inside their band "
          f"({result['scored']} of {result['items']} scored) · spent ${result['cost']:.6f}")
    for outlier in result["outliers"]:
        low, high = outlier["band"]
        print(f"  outside: {outlier['id']} scored {outlier['score']:.2f}, expected {low}–{high}: {outlier['reason']}")
    for failure in result["failed"]:
        print(f"  failed: {failure['id']}: {failure['error']}")
    return 0


def cmd_versions(settings: Settings, args: argparse.Namespace) -> int:
    with _store(settings) as store:
        listing = Queries(store).versions(settings.canary_max_pairs, settings.canary_verdict)
    if args.json:
        print(json.dumps(listing, indent=2))
        return 0
    print(f"{'version':>7}  {'status':<11} {'battles':>7} {'mean':>6}  {'decision':<12} {'pairs':>5} "
          f"{'diff':>6}  {'95% interval':<15} change")
    for v in listing["versions"]:
        mean = "-" if v["meanScore"] is None else f"{v['meanScore']:.1f}"
        diff = "-" if v["diff"] is None else f"{v['diff']:+.1f}"
        interval = "-" if v["ci95"] is None else f"[{v['ci95'][0]:+.1f}, {v['ci95'][1]:+.1f}]"
        print(f"{'v' + str(v['id']):>7}  {v['status']:<11} {v['battles']:>7} {mean:>6}  {v['decision'] or '-':<12} "
              f"{v['pairs']:>5} {diff:>6}  {interval:<15} {v['change']}")
    in_verdicts = [f"v{v['id']}" for v in listing["versions"] if v["unit"] == "head_to_head"]
    if in_verdicts:
        print(f"diff and interval in head-to-head verdicts (wins − losses per 100 pairs) for {', '.join(in_verdicts)}; "
              "in points for the others")
    canary = listing["canary"]
    if canary:
        unit = "head-to-head verdicts" if canary["unit"] == "head_to_head" else "points"
        print(f"canary: v{canary['candidateId']} against v{canary['activeId']}, {canary['pairs']} of at most "
              f"{canary['maxPairs']} pairs, measured in {unit}"
              + (f" (its first look's unit; CANARY_VERDICT={settings.canary_verdict} applies from the next candidate)"
                 if canary["unit"] != settings.canary_verdict else ""))
        if canary.get("outlookNote"):
            print(canary["outlookNote"])
        lean = canary["positionBias"]
        if lean is not None and "note" in lean:
            print(f"head-to-head: {lean['note']}")
        if canary["incomplete"].get("note"):
            print(canary["incomplete"]["note"])
    return 0


def cmd_promote(settings: Settings, args: argparse.Namespace) -> int:
    with _store(settings) as store:
        result = Queries(store).promote_breakthrough(args.battle_id, args.tactic, args.direct)
    print(result["message"])
    return 0


def cmd_rollback(settings: Settings, args: argparse.Namespace) -> int:
    with _store(settings) as store:
        result = Queries(store).rollback(args.version_id, args.force)
    print(result["message"])
    return 0


def cmd_proposals(settings: Settings, args: argparse.Namespace) -> int:
    with _store(settings) as store:
        listing = ProposalQueries(store).listing()
    if args.json:
        print(json.dumps(listing, indent=2))
        return 0
    canary = listing["canary"]
    print(f"under canary: #{canary['id']} (v{canary['versionId']}) {slack.describe_proposal(canary)}" if canary
          else "under canary: none")
    print(f"queue ({len(listing['queue'])}, next first):")
    for place, p in enumerate(listing["queue"], 1):
        mark = " [fast-tracked]" if p["fastTracked"] else ""
        print(f"  {place:>3}. #{p['id']} {p['source']:<12} {slack.describe_proposal(p)}{mark}")
    print("decided:")
    for p in listing["decided"]:
        print(f"  #{p['id']} {p['status']:<12} {slack.describe_proposal(p)}  ({p['outcome'] or '-'})")
    return 0


def cmd_propose(settings: Settings, args: argparse.Namespace) -> int:
    kind = "remove" if args.remove else "edit" if args.edit else "add"
    if kind != "remove" and args.text is None:
        print("error: name the tactic: python -m lib propose TEXT (or --remove TACTIC_ID)", file=sys.stderr)
        return 2
    if kind == "remove" and args.text:
        print("error: --remove takes no TEXT", file=sys.stderr)
        return 2
    with _store(settings) as store:
        result = ProposalQueries(store).propose(kind, text=args.text, tactic_id=args.remove or args.edit,
                                                proposed_by="a person (CLI)", reasoning=args.reason,
                                                fast_track=args.fast_track)
    print(result["message"])
    return 0


def cmd_veto(settings: Settings, args: argparse.Namespace) -> int:
    with _store(settings) as store:
        result = ProposalQueries(store).veto(args.proposal_id, args.reason)
    print(result["message"])
    return 0


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "proposals": cmd_proposals,
    "propose": cmd_propose,
    "veto": cmd_veto,
    "versions": cmd_versions,
    "promote": cmd_promote,
    "rollback": cmd_rollback,
    "serve": cmd_serve,
    "scan": cmd_scan,
    "referee-check": cmd_referee_check,
    "train": cmd_train,
    "migrate": cmd_migrate,
    "generate-personas": cmd_generate_personas,
    "status": cmd_status,
    "recover": cmd_recover,
    "pause": cmd_pause,
    "resume": cmd_resume,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            # serve reads the environment per request, as Vercel does: a bad value is each request's 500.
            return cmd_serve(None, args)
        settings = Settings.from_env()
        for warning in settings.ignored:
            print(f"warning: {warning}", file=sys.stderr)
        return COMMANDS[args.command](settings, args)
    except (ConfigError, StoreError, EmbeddedPostgresError, LLMError, InvalidPersona, CalibrationError, ServeError,
            migrations.MigrationError) as exc:
        print(f"error: {redact(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
