-- SQL functions: the dashboard's reads (feed, battle, breakthroughs, analytics, health, run chart).
-- Re-applied by every `python -m lib migrate`, after the pending migrations (lib/sql/migrations/README.md):
-- `create or replace` only; a function whose arguments change gets `drop function if exists
-- name(old argument types)` here, above it.

-- ---------------------------------------------------------------------------------------------
-- Dashboard
-- ---------------------------------------------------------------------------------------------

-- The live feed. Without a cursor: the latest battles. With one (updated_at, id): the battles
-- changed after it, oldest first, so a poll that hits the limit resumes where it stopped.
-- Only the picked rows are joined and built: a poll where nothing changed is one probe of
-- sandbox_battles_updated_idx, whatever the table holds (transcripts are never read).
create or replace function training_dashboard_feed(p_after_updated_at timestamptz default null,
                                          p_after_id uuid default null, p_limit integer default 50)
returns jsonb
language sql stable as $$
    with picked as (
        (select b.id, b.updated_at from sandbox_battles b
         where p_after_updated_at is null
         order by b.updated_at desc, b.id desc limit least(greatest(p_limit, 1), 200))
        union all
        (select b.id, b.updated_at from sandbox_battles b
         where p_after_updated_at is not null
           and (b.updated_at, b.id) > (p_after_updated_at,
                                       coalesce(p_after_id, '00000000-0000-0000-0000-000000000000'::uuid))
         order by b.updated_at, b.id limit least(greatest(p_limit, 1), 200))
    )
    select jsonb_build_object(
        'battles', coalesce(jsonb_agg(jsonb_build_object(
            'id', b.id, 'runId', b.run_id, 'persona', p.name, 'status', b.status, 'score', b.referee_score,
            'cost', b.cost_usd, 'turns', b.turns, 'simulated', r.simulated, 'breakthrough', b.breakthrough_status,
            'startedAt', b.started_at, 'updatedAt', b.updated_at,
            'durationMs', (extract(epoch from coalesce(b.ended_at, now()) - b.started_at) * 1000)::bigint)
            order by b.updated_at desc, b.id desc), '[]'),
        'cursor', (select jsonb_build_object('updatedAt', updated_at, 'id', id) from picked
                   order by updated_at desc, id desc limit 1))
    from picked k
    join sandbox_battles b on b.id = k.id
    join sandbox_personas p on p.id = b.persona_id
    join training_runs r on r.id = b.run_id;
$$;

create or replace function training_dashboard_battle(p_battle_id uuid)
returns jsonb
language sql stable as $$
    select jsonb_build_object(
        'id', b.id, 'runId', b.run_id, 'persona', p.name, 'status', b.status, 'score', b.referee_score,
        'scores', b.scores, 'feedback', b.referee_feedback, 'winningRebuttal', b.winning_rebuttal,
        'sellerAgreed', b.seller_agreed, 'transcript', b.transcript, 'turns', b.turns, 'cost', b.cost_usd,
        'error', b.error, 'simulated', r.simulated, 'startedAt', b.started_at, 'endedAt', b.ended_at,
        'breakthrough', b.breakthrough_status, 'definingMoment', b.defining_moment,
        'tacticalSnippet', b.tactical_snippet, 'confirmStatus', b.confirm_status,
        'confirmScore', b.confirm_score, 'confirmReason', b.confirm_reason, 'slack', b.slack_status,
        'slackError', b.slack_error)
    from sandbox_battles b
    join sandbox_personas p on p.id = b.persona_id
    join training_runs r on r.id = b.run_id
    where b.id = p_battle_id;
$$;

create or replace function training_dashboard_breakthroughs(p_limit integer default 50)
returns jsonb
language sql stable as $$
    select jsonb_build_object(
        'pending', (select count(*) from sandbox_battles where breakthrough_status = 'pending_review'),
        'items', coalesce((select jsonb_agg(item order by pending desc, detected desc) from (
            select jsonb_build_object(
                'id', b.id, 'persona', p.name, 'score', b.referee_score, 'status', b.breakthrough_status,
                'definingMoment', b.defining_moment, 'tacticalSnippet', b.tactical_snippet,
                'winningRebuttal', b.winning_rebuttal, 'detectedAt', b.breakthrough_detected_at,
                'simulated', r.simulated, 'confirmScore', b.confirm_score, 'slack', b.slack_status,
                'slackError', b.slack_error, 'sellerAgreed', b.seller_agreed, 'runId', b.run_id) as item,
                b.breakthrough_status = 'pending_review' as pending, b.breakthrough_detected_at as detected
            from sandbox_battles b
            join sandbox_personas p on p.id = b.persona_id
            join training_runs r on r.id = b.run_id
            where b.breakthrough_status is not null
            order by (b.breakthrough_status = 'pending_review') desc, b.breakthrough_detected_at desc
            limit p_limit) x), '[]'));
$$;

create or replace function training_persona_analytics()
returns jsonb
language sql stable as $$
    select coalesce(jsonb_agg(jsonb_build_object(
        'id', p.id, 'name', p.name, 'type', p.persona_type, 'active', p.is_active,
        'battles', s.battles, 'averageScore', s.average, 'agreedRate', s.agreed_rate,
        'lastBattledAt', p.last_battled_at, 'recentScores', coalesce(s.recent, '[]'))
        order by p.name), '[]')
    from sandbox_personas p
    left join lateral (
        select count(*) as battles,
               round(avg(b.referee_score), 2) as average,
               round(avg(case when b.seller_agreed then 1.0 else 0.0 end)
                     filter (where b.status = 'completed'), 3) as agreed_rate,
               (select jsonb_agg(score order by started_at)
                from (select referee_score as score, started_at from sandbox_battles
                      where persona_id = p.id and status = 'completed'
                      order by started_at desc limit 12) recent) as recent
        from sandbox_battles b where b.persona_id = p.id
    ) s on true;
$$;

create or replace function training_set_breakthrough_status(p_battle_id uuid, p_status text)
returns void
language plpgsql as $$
begin
    if p_status not in ('reviewed', 'rejected', 'pending_review') then
        raise exception 'status must be reviewed, rejected or pending_review' using errcode = 'P0001';
    end if;
    update sandbox_battles set breakthrough_status = p_status, updated_at = now()
    where id = p_battle_id and breakthrough_status is not null and breakthrough_status <> 'promoted';
    if not found then
        raise exception 'battle % is not a breakthrough awaiting review', p_battle_id using errcode = 'P0001';
    end if;
end;
$$;

-- ---------------------------------------------------------------------------------------------
-- Dashboard v2: the health strip, the run chart, and the indexes their polls read
-- ---------------------------------------------------------------------------------------------

-- A run's figures as the dashboard shows them. A running run has not been tallied yet: its
-- battles and spend so far come from its battle rows.
create or replace function training_dashboard_run(p_run training_runs)
returns jsonb
language sql stable as $$
    select jsonb_build_object(
        'id', p_run.id, 'status', p_run.status, 'trigger', p_run.trigger, 'simulated', p_run.simulated,
        'startedAt', p_run.started_at, 'finishedAt', p_run.finished_at, 'durationMs', p_run.duration_ms,
        'batchSize', p_run.batch_size,
        'battles', case when p_run.status = 'running' then live.battles else p_run.battles_started end,
        'completed', p_run.battles_completed, 'failed', p_run.battles_failed, 'killed', p_run.battles_killed,
        'timedOutBattles', p_run.battles_timed_out,
        'cost', case when p_run.status = 'running' then live.cost else p_run.total_cost end,
        'costCap', p_run.cost_cap, 'averageScore', p_run.average_score, 'breakthroughs', p_run.breakthroughs,
        'costCapReached', p_run.kill_switch_triggered, 'killSwitchTriggered', p_run.kill_switch_triggered,
        'timedOut', p_run.timed_out, 'error', p_run.error)
    from (select count(*) as battles, coalesce(sum(cost_usd), 0) as cost from sandbox_battles
          where p_run.status = 'running' and run_id = p_run.id) live;
$$;

-- Everything the health strip shows, in one call cheap enough to poll every 2 seconds: the
-- switch, runs in progress, the last finished run, spend, scores and outcomes of battles started
-- today (UTC) and in the last 7 days, pending reviews, and persona counts (for the empty state).
create or replace function training_dashboard_health()
returns jsonb
language sql stable as $$
    select jsonb_build_object(
        'now', now(),
        'dayStart', date_trunc('day', now(), 'UTC'),
        'paused', c.paused, 'reason', c.reason, 'since', c.updated_at,
        'personas', (select jsonb_build_object('active', count(*) filter (where is_active), 'total', count(*))
                     from sandbox_personas),
        'running', (select coalesce(jsonb_agg(training_dashboard_run(r) order by r.started_at), '[]')
                    from training_runs r where r.status = 'running'),
        'lastRun', (select training_dashboard_run(r) from training_runs r where r.status <> 'running'
                    order by r.started_at desc limit 1),
        'today', t.today, 'week', t.week,
        'pendingReviews', (select count(*) from sandbox_battles where breakthrough_status = 'pending_review'))
    from training_control c
    cross join lateral (  -- one pass over the week's battles, through sandbox_battles_started_idx alone
        with d as materialized (select date_trunc('day', now(), 'UTC') as day_start)  -- computed once, not per row
        select jsonb_build_object(
                   'battles', count(*) filter (where b.started_at >= d.day_start),
                   'spend', coalesce(sum(b.cost_usd) filter (where b.started_at >= d.day_start), 0),
                   'averageScore', round(avg(b.referee_score) filter (where b.started_at >= d.day_start), 2),
                   'scored', count(b.referee_score) filter (where b.started_at >= d.day_start),
                   'completed', count(*) filter (where b.started_at >= d.day_start and b.status = 'completed'),
                   'killed', count(*) filter (where b.started_at >= d.day_start and b.status = 'killed'),
                   'failed', count(*) filter (where b.started_at >= d.day_start and b.status = 'failed'),
                   'timedOut', count(*) filter (where b.started_at >= d.day_start and b.status = 'timed_out')
               ) as today,
               jsonb_build_object('battles', count(*), 'spend', coalesce(sum(b.cost_usd), 0),
                                  'averageScore', round(avg(b.referee_score), 2), 'scored', count(b.referee_score)
               ) as week
        from d, sandbox_battles b
        -- the day starts at most 24 h ago: the last 7 days hold it
        where b.started_at >= now() - interval '7 days'
    ) t
    where c.id;
$$;

-- The run chart: runs started in the last p_hours, oldest first (at most p_limit, the latest).
create or replace function training_dashboard_runs(p_hours integer default 168, p_limit integer default 2000)
returns jsonb
language sql stable as $$
    select jsonb_build_object(
        'since', now() - make_interval(hours => least(greatest(p_hours, 1), 24 * 366)),
        'now', now(),
        'runs', coalesce(jsonb_agg(training_dashboard_run(r) order by r.started_at), '[]'))
    from (select * from training_runs
          where started_at >= now() - make_interval(hours => least(greatest(p_hours, 1), 24 * 366))
          order by started_at desc limit least(greatest(p_limit, 1), 5000)) r;
$$;
