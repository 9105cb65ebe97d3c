"""Rows written directly, for tests and bench: many battles fast (one INSERT … generate_series per
table), and a canary in progress."""
import psycopg


def seed_battles(url: str, battles: int, per_run: int = 5, transcript_chars: int = 1500) -> None:
    """`battles` finished battles in runs of `per_run`, over the last 30 days, each with a
    transcript of about `transcript_chars` characters: one INSERT … generate_series per table."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("""
            insert into training_runs (trigger, status, batch_size, battles_started, battles_completed,
                                       total_cost, cost_cap, average_score, deadline_at, started_at, finished_at)
            select 'cron', 'completed', %(per_run)s, %(per_run)s, %(per_run)s, 0.05, 5, 70,
                   t + interval '1 minute', t, t + interval '40 seconds'
            from (select now() - make_interval(secs => 30 * 86400.0 * g / %(runs)s) as t
                  from generate_series(1, %(runs)s) g) s""",
                     {"per_run": per_run, "runs": -(-battles // per_run)})
        conn.execute("""
            with runs as (select id, started_at, row_number() over (order by started_at) - 1 as k from training_runs),
                 personas as (select id, row_number() over (order by name) - 1 as k, count(*) over () as n
                              from sandbox_personas)
            insert into sandbox_battles (run_id, persona_id, status, transcript, turns, referee_score, scores,
                                         referee_feedback, seller_agreed, cost_usd, started_at, ended_at, updated_at)
            select r.id, p.id, 'completed',
                   jsonb_build_array(jsonb_build_object('speaker', 'closer', 'text', repeat(md5(g::text), %(chunks)s)),
                                     jsonb_build_object('speaker', 'persona', 'text', repeat(md5((g + 1)::text), %(chunks)s))),
                   2, 50 + (g * 37) %% 50, '{"rapport": 70}', 'fine', g %% 4 = 0, 0.01,
                   r.started_at + make_interval(secs => g %% %(per_run)s),
                   r.started_at + make_interval(secs => 30 + g %% %(per_run)s),
                   r.started_at + make_interval(secs => 30 + g %% %(per_run)s)
            from generate_series(0, %(battles)s - 1) g
            join runs r on r.k = g / %(per_run)s
            join personas p on p.k = g %% p.n""",
                     {"per_run": per_run, "battles": battles, "chunks": max(1, transcript_chars // 64)})
        conn.execute("vacuum analyze")  # as autovacuum would, soon after


def seed_canary(db, store, won_pairs: int = 0) -> int:
    """A candidate version under canary (returned), with `won_pairs` clear wins over the active one on
    record: with 10 or more, the next run's look adopts it. Needs two personas (a run's pair)."""
    from lib.personas import CATALOG, upsert_catalog
    from lib.store.queries import Queries

    upsert_catalog(store, CATALOG[:2])
    persona_id = db.execute("select id from sandbox_personas order by name limit 1").fetchone()[0]
    breakthrough_run = db.execute(
        "insert into training_runs (trigger, batch_size, cost_cap, deadline_at, status, finished_at) "
        "values ('cron', 1, 5, now(), 'completed', now()) returning id").fetchone()[0]
    battle = db.execute(
        "insert into sandbox_battles (run_id, persona_id, status, transcript, referee_score, ended_at, "
        "breakthrough_status, breakthrough_detected_at, tactical_snippet) values (%s, %s, 'completed', '[]', 97, "
        "now(), 'pending_review', now(), 'Confirm it in writing.') returning id",
        (breakthrough_run, persona_id)).fetchone()[0]
    change = Queries(store).promote_breakthrough(str(battle))
    candidate = change["version"]["id"]
    for index in range(won_pairs):
        run_id = db.execute(
            "insert into training_runs (trigger, batch_size, cost_cap, deadline_at, status, finished_at) "
            "values ('cron', 2, 5, now(), 'completed', now()) returning id").fetchone()[0]
        for version, score in ((candidate, 90 + index % 3), (candidate - 1, 50 + index % 2)):
            db.execute("insert into sandbox_battles (run_id, persona_id, status, transcript, referee_score, "
                       "ended_at, version_id) values (%s, %s, 'completed', '[]', %s, now(), %s)",
                       (run_id, persona_id, score, version))
    return candidate
