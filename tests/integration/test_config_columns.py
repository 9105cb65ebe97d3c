"""Every numeric setting at its bounds fits the PostgreSQL columns it lands in."""
from decimal import Decimal

from tests.unit.test_config import settings


def test_every_numeric_setting_at_its_bounds_fits_the_columns_it_lands_in(psycopg_store, db):
    """The ranges above are the columns' ranges: the largest and smallest values start a run and end it."""
    from lib.store.queries import BattleStatus, Queries, RunStatus, Trigger
    from tests.conftest import seed_personas

    seed_personas(psycopg_store, 1)
    queries = Queries(psycopg_store)
    for bound in ("low", "high"):
        s = settings(**({"KILL_SWITCH_THRESHOLD_USD": "0.01", "MAX_TRAINING_BATCH_SIZE": "1",
                         "MAX_TRAINING_EXECUTION_TIME_MS": "1000", "SCOUT_BREAKTHROUGH_THRESHOLD": "0"}
                        if bound == "low" else
                        {"KILL_SWITCH_THRESHOLD_USD": "10000", "MAX_TRAINING_BATCH_SIZE": "1000",
                         "TRAINING_BATCH_SIZE": "1000", "MAX_TRAINING_EXECUTION_TIME_MS": "3600000",
                         "MAX_CONCURRENT_RUNS": "100", "SCOUT_BREAKTHROUGH_THRESHOLD": "100"}))
        started = queries.start_run(trigger=Trigger.CLI, requested_batch_size=s.max_batch_size,
                                    batch_size=s.batch_size, cost_cap=s.cost_cap_usd,
                                    max_concurrent_runs=s.max_concurrent_runs, deadline_ms=s.max_execution_ms,
                                    simulated=True, default_battle_ms=min(15_000, s.max_execution_ms))
        assert started["status"] == "started", started
        summary = queries.finish_run(started["run"]["batchId"], status=RunStatus.COMPLETED,
                                     leftover_status=BattleStatus.FAILED, cost_cap_reached=False, timed_out=False,
                                     errors=[], breakthrough_threshold=s.scout_threshold,
                                     duration_ms=s.max_execution_ms + 1000, error=None, pause_reason=None)
        assert Decimal(str(summary["costCap"])) == s.cost_cap_usd
