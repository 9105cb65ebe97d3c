-- Autonomous training: tables, indexes and every function the app writes through.
--
-- The single source of data logic. Both transports (PostgREST `POST /rest/v1/rpc/<fn>` and
-- psycopg `select fn(arg => …)`) call these functions, so each call is one transaction with one
-- set of rules. Applying this file twice changes nothing.

select pg_advisory_xact_lock(hashtext('autonomous_training_schema'));

-- ---------------------------------------------------------------------------------------------
-- Tables
-- ---------------------------------------------------------------------------------------------

create table if not exists training_control (
    id boolean primary key default true check (id),
    paused boolean not null default false,
    reason text,
    updated_at timestamptz not null default now()
);
insert into training_control (id) values (true) on conflict (id) do nothing;

create table if not exists training_runs (
    id uuid primary key default gen_random_uuid(),
    trigger text not null check (trigger in ('cron', 'manual', 'cli')),
    status text not null default 'running'
        check (status in ('running', 'completed', 'killed', 'timed_out', 'failed')),
    simulated boolean not null default false,
    requested_batch_size integer check (requested_batch_size >= 1),
    batch_size integer not null check (batch_size >= 1),
    battles_started integer not null default 0 check (battles_started >= 0),
    battles_completed integer not null default 0 check (battles_completed >= 0),
    battles_failed integer not null default 0 check (battles_failed >= 0),
    battles_timed_out integer not null default 0 check (battles_timed_out >= 0),
    battles_killed integer not null default 0 check (battles_killed >= 0),
    total_cost numeric(12, 6) not null default 0 check (total_cost >= 0),
    cost_cap numeric(12, 6) not null check (cost_cap > 0),
    average_score numeric(5, 2) check (average_score between 0 and 100),
    breakthroughs integer not null default 0 check (breakthroughs >= 0),
    kill_switch_triggered boolean not null default false,
    timed_out boolean not null default false,
    scout_notified boolean,
    errors jsonb not null default '[]' check (jsonb_typeof(errors) = 'array'),
    duration_ms integer check (duration_ms >= 0),
    deadline_at timestamptz not null,
    started_at timestamptz not null default now(),
    finished_at timestamptz,
    error text,
    check ((status = 'running') = (finished_at is null))
);
create index if not exists training_runs_running_idx on training_runs (started_at) where status = 'running';
create index if not exists training_runs_started_idx on training_runs (started_at desc);

create table if not exists sandbox_personas (
    id uuid primary key default gen_random_uuid(),
    name text not null unique check (length(btrim(name)) between 1 and 200),
    persona_type text not null check (length(btrim(persona_type)) between 1 and 100),
    description text not null default '',
    system_prompt text not null check (length(btrim(system_prompt)) > 0),
    characteristics jsonb not null default '{}' check (jsonb_typeof(characteristics) = 'object'),
    attack_patterns jsonb not null default '[]' check (jsonb_typeof(attack_patterns) = 'array'),
    is_active boolean not null default true,
    source text not null default 'manual' check (source in ('catalog', 'llm', 'manual')),
    last_battled_at timestamptz,
    lease_run_id uuid references training_runs (id) on delete set null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
-- Persona rotation: active personas, least recently battled first.
create index if not exists sandbox_personas_rotation_idx
    on sandbox_personas (last_battled_at asc nulls first, name) where is_active;

create table if not exists sandbox_battles (
    id uuid primary key default gen_random_uuid(),
    run_id uuid not null references training_runs (id) on delete cascade,
    persona_id uuid not null references sandbox_personas (id) on delete restrict,
    status text not null default 'running'
        check (status in ('running', 'completed', 'failed', 'timed_out', 'killed')),
    transcript jsonb not null default '[]' check (jsonb_typeof(transcript) = 'array'),
    turns integer not null default 0 check (turns >= 0),
    referee_score numeric(5, 2) check (referee_score between 0 and 100),
    scores jsonb check (scores is null or jsonb_typeof(scores) = 'object'),
    referee_feedback text,
    winning_rebuttal text,
    seller_agreed boolean,
    prompt_tokens integer not null default 0 check (prompt_tokens >= 0),
    cached_tokens integer not null default 0 check (cached_tokens >= 0 and cached_tokens <= prompt_tokens),
    completion_tokens integer not null default 0 check (completion_tokens >= 0),
    cost_usd numeric(12, 6) not null default 0 check (cost_usd >= 0),
    error text,
    started_at timestamptz not null default now(),
    ended_at timestamptz,
    updated_at timestamptz not null default now(),
    breakthrough_status text
        check (breakthrough_status in ('pending_review', 'reviewed', 'promoted', 'rejected')),
    defining_moment text,
    tactical_snippet text,
    breakthrough_detected_at timestamptz,
    alerted_at timestamptz,
    check ((status = 'running') = (ended_at is null)),
    check (status = 'completed' or referee_score is null)
);
-- Columns added after the first release (kept apart so older databases gain them too).
alter table sandbox_battles add column if not exists scout_lease_until timestamptz;

create index if not exists sandbox_battles_run_idx on sandbox_battles (run_id);
create index if not exists sandbox_battles_feed_idx on sandbox_battles (updated_at desc, id);
create index if not exists sandbox_battles_persona_idx on sandbox_battles (persona_id, started_at desc);
create index if not exists sandbox_battles_breakthrough_idx
    on sandbox_battles (breakthrough_status, breakthrough_detected_at desc) where breakthrough_status is not null;

create table if not exists sandbox_tactics (
    id uuid primary key default gen_random_uuid(),
    battle_id uuid references sandbox_battles (id) on delete set null,
    tactic_text text not null check (length(btrim(tactic_text)) > 0),
    priority integer not null default 100,
    is_active boolean not null default true,
    promoted_at timestamptz not null default now()
);
create index if not exists sandbox_tactics_active_idx on sandbox_tactics (priority, promoted_at) where is_active;

-- Supabase exposes the public schema to the anon key: row level security with no policies keeps
-- these tables to the service role (which bypasses RLS) and to the owner.
alter table training_control enable row level security;
alter table training_runs enable row level security;
alter table sandbox_personas enable row level security;
alter table sandbox_battles enable row level security;
alter table sandbox_tactics enable row level security;

-- ---------------------------------------------------------------------------------------------
-- Personas
-- ---------------------------------------------------------------------------------------------

-- Upserts personas by name. Each element: {name, persona_type, description, system_prompt,
-- characteristics, attack_patterns, source}. One bad element rejects the whole call.
create or replace function upsert_personas(p_personas jsonb)
returns table (name text, action text)
language plpgsql as $$
declare
    item jsonb;
    existing sandbox_personas%rowtype;
begin
    if jsonb_typeof(p_personas) is distinct from 'array' then
        raise exception 'personas must be a JSON array' using errcode = 'P0001';
    end if;
    for item in select value from jsonb_array_elements(p_personas) loop
        if coalesce(btrim(item ->> 'name'), '') = '' then
            raise exception 'persona without a name' using errcode = 'P0001', detail = item::text;
        end if;
        if coalesce(btrim(item ->> 'system_prompt'), '') = '' then
            raise exception 'persona % has no system_prompt', item ->> 'name' using errcode = 'P0001';
        end if;
        select * into existing from sandbox_personas p where p.name = item ->> 'name' for update;
        if not found then
            insert into sandbox_personas as p
                (name, persona_type, description, system_prompt, characteristics, attack_patterns, source)
            values (item ->> 'name', item ->> 'persona_type', coalesce(item ->> 'description', ''),
                    item ->> 'system_prompt', coalesce(item -> 'characteristics', '{}'),
                    coalesce(item -> 'attack_patterns', '[]'), coalesce(item ->> 'source', 'manual'));
            name := item ->> 'name'; action := 'inserted';
        elsif (existing.persona_type, existing.description, existing.system_prompt,
               existing.characteristics, existing.attack_patterns)
              is not distinct from
              (item ->> 'persona_type', coalesce(item ->> 'description', ''), item ->> 'system_prompt',
               coalesce(item -> 'characteristics', '{}'), coalesce(item -> 'attack_patterns', '[]')) then
            name := existing.name; action := 'unchanged';
        else
            update sandbox_personas p set
                persona_type = item ->> 'persona_type',
                description = coalesce(item ->> 'description', ''),
                system_prompt = item ->> 'system_prompt',
                characteristics = coalesce(item -> 'characteristics', '{}'),
                attack_patterns = coalesce(item -> 'attack_patterns', '[]'),
                updated_at = now()
            where p.id = existing.id;
            name := existing.name; action := 'updated';
        end if;
        return next;
    end loop;
end;
$$;

create or replace function persona_names()
returns setof text
language sql stable as $$
    select name from sandbox_personas order by name;
$$;

-- ---------------------------------------------------------------------------------------------
-- Kill-switch and status
-- ---------------------------------------------------------------------------------------------

create or replace function set_training_paused(p_paused boolean, p_reason text default null)
returns jsonb
language plpgsql as $$
declare
    control training_control%rowtype;
begin
    if p_paused and coalesce(btrim(p_reason), '') = '' then
        raise exception 'a pause needs a reason' using errcode = 'P0001';
    end if;
    update training_control set
        paused = p_paused,
        reason = case when p_paused then p_reason end,
        updated_at = now()
    where id
    returning * into control;
    return jsonb_build_object('paused', control.paused, 'reason', control.reason,
                              'updatedAt', control.updated_at);
end;
$$;

-- The kill-switch alone: what a running batch polls to honour a pause within a call or so.
create or replace function training_pause_state()
returns jsonb
language sql stable as $$
    select jsonb_build_object('paused', paused, 'reason', reason, 'updatedAt', updated_at)
    from training_control where id;
$$;

create or replace function training_status()
returns jsonb
language sql stable as $$
    select jsonb_build_object(
        'paused', c.paused,
        'reason', c.reason,
        'updatedAt', c.updated_at,
        'personas', (select jsonb_build_object('active', count(*) filter (where is_active), 'total', count(*))
                     from sandbox_personas),
        'runsInProgress', (select count(*) from training_runs where status = 'running'),
        'lastRun', (select to_jsonb(r) - 'errors' from training_runs r order by started_at desc limit 1),
        'battles', (select coalesce(jsonb_object_agg(status, n), '{}')
                    from (select status, count(*) as n from sandbox_battles group by status) s),
        'pendingBreakthroughs', (select count(*) from sandbox_battles
                                 where breakthrough_status = 'pending_review'),
        'totalCost', (select coalesce(sum(total_cost), 0) from training_runs)
    )
    from training_control c where c.id;
$$;

-- ---------------------------------------------------------------------------------------------
-- Runs and battles
-- ---------------------------------------------------------------------------------------------

-- The batch figures of a run, in the shape of the HTTP response's `batch`.
create or replace function run_summary(p_run training_runs)
returns jsonb
language sql stable as $$
    select jsonb_build_object(
        'batchId', p_run.id, 'status', p_run.status, 'trigger', p_run.trigger,
        'simulated', p_run.simulated,
        'requestedBatchSize', p_run.requested_batch_size, 'batchSize', p_run.batch_size,
        'battlesStarted', p_run.battles_started, 'battlesCompleted', p_run.battles_completed,
        'battlesFailed', p_run.battles_failed, 'battlesTimedOut', p_run.battles_timed_out,
        'battlesKilled', p_run.battles_killed, 'totalCost', p_run.total_cost, 'costCap', p_run.cost_cap,
        'averageScore', p_run.average_score, 'breakthroughs', p_run.breakthroughs,
        'killSwitchTriggered', p_run.kill_switch_triggered, 'timedOut', p_run.timed_out,
        'durationMs', p_run.duration_ms, 'scoutNotified', p_run.scout_notified, 'errors', p_run.errors,
        'startedAt', p_run.started_at, 'finishedAt', p_run.finished_at, 'error', p_run.error);
$$;

-- Closes runs whose process died: still `running` well past their deadline. Their battles end
-- `failed` with whatever transcript they had, and their personas are released.
create or replace function close_orphaned_runs(p_grace_ms integer default 5000)
returns integer
language plpgsql as $$
declare
    orphan training_runs%rowtype;
    closed integer := 0;
begin
    for orphan in
        select * from training_runs
        where status = 'running' and deadline_at + make_interval(secs => p_grace_ms / 1000.0) < now()
        for update skip locked
    loop
        update sandbox_battles set status = 'failed', ended_at = now(), updated_at = now(),
            error = 'the run''s process died before this battle finished; closed by a later run'
        where run_id = orphan.id and status = 'running';
        perform tally_run(orphan.id);
        update training_runs set status = 'failed', finished_at = now(),
            error = 'the process died before the run finished; closed by a later run',
            duration_ms = (extract(epoch from now() - started_at) * 1000)::integer
        where id = orphan.id;
        update sandbox_personas set lease_run_id = null where lease_run_id = orphan.id;
        closed := closed + 1;
    end loop;
    return closed;
end;
$$;

-- Recomputes a run's figures from its battle rows: the rows are the truth.
create or replace function tally_run(p_run_id uuid, p_breakthrough_threshold integer default 95)
returns void
language sql as $$
    update training_runs r set
        battles_started = t.started, battles_completed = t.completed, battles_failed = t.failed,
        battles_timed_out = t.timed_out, battles_killed = t.killed, total_cost = t.cost,
        average_score = t.average, breakthroughs = t.breakthroughs
    from (
        select count(*) as started,
               count(*) filter (where status = 'completed') as completed,
               count(*) filter (where status = 'failed') as failed,
               count(*) filter (where status = 'timed_out') as timed_out,
               count(*) filter (where status = 'killed') as killed,
               coalesce(sum(cost_usd), 0) as cost,
               round(avg(referee_score), 2) as average,
               count(*) filter (where referee_score >= p_breakthrough_threshold) as breakthroughs
        from sandbox_battles where run_id = p_run_id
    ) t
    where r.id = p_run_id;
$$;

-- Starts a run, atomically: closes orphaned runs, honours the pause and MAX_CONCURRENT_RUNS,
-- and leases up to p_batch_size active personas, least recently battled first, that no running
-- run holds. Returns {"status": "started" | "paused" | "busy" | "no_personas" | "no_free_personas", …}.
create or replace function start_training_run(
    p_trigger text, p_requested_batch_size integer, p_batch_size integer, p_cost_cap numeric,
    p_max_concurrent_runs integer, p_deadline_ms integer, p_simulated boolean,
    p_default_battle_ms integer)
returns jsonb
language plpgsql as $$
declare
    control training_control%rowtype;
    run training_runs%rowtype;
    recovered integer;
    busy uuid;
    personas jsonb;
    expected_ms integer;
begin
    perform pg_advisory_xact_lock(hashtext('training_run_start'));
    recovered := close_orphaned_runs();
    select * into control from training_control where id;
    if control.paused then
        return jsonb_build_object('status', 'paused', 'reason', control.reason, 'since', control.updated_at);
    end if;
    select id into busy from training_runs where status = 'running' order by started_at
        offset greatest(p_max_concurrent_runs - 1, 0) limit 1;
    if busy is not null then
        return jsonb_build_object('status', 'busy', 'runId', busy);
    end if;
    if not exists (select 1 from sandbox_personas where is_active) then
        return jsonb_build_object('status', 'no_personas');
    end if;

    insert into training_runs (trigger, requested_batch_size, batch_size, cost_cap, simulated, deadline_at)
    values (p_trigger, p_requested_batch_size, p_batch_size, p_cost_cap, p_simulated,
            now() + make_interval(secs => p_deadline_ms / 1000.0))
    returning * into run;

    with free as (
        select p.id from sandbox_personas p
        where p.is_active
          and (p.lease_run_id is null
               or not exists (select 1 from training_runs r where r.id = p.lease_run_id and r.status = 'running'))
        order by p.last_battled_at asc nulls first, p.name
        limit p_batch_size
        for update of p skip locked
    ), leased as (
        update sandbox_personas p set lease_run_id = run.id from free where p.id = free.id returning p.*
    )
    select jsonb_agg(jsonb_build_object(
               'id', id, 'name', name, 'persona_type', persona_type, 'system_prompt', system_prompt,
               'characteristics', characteristics, 'attack_patterns', attack_patterns)
               order by last_battled_at asc nulls first, name)
    into personas from leased;

    if personas is null then
        delete from training_runs where id = run.id;
        return jsonb_build_object('status', 'no_free_personas');
    end if;

    select coalesce(round(avg(extract(epoch from b.ended_at - b.started_at) * 1000))::integer,
                    p_default_battle_ms)
    into expected_ms
    from (select b.started_at, b.ended_at from sandbox_battles b join training_runs r on r.id = b.run_id
          where b.status = 'completed' and r.simulated = p_simulated
          order by b.ended_at desc limit 20) b;

    return jsonb_build_object('status', 'started', 'run', run_summary(run), 'personas', personas,
                              'recovered', recovered, 'expectedBattleMs', expected_ms);
end;
$$;

create or replace function active_tactics()
returns table (id uuid, tactic_text text, priority integer)
language sql stable as $$
    select id, tactic_text, priority from sandbox_tactics where is_active order by priority, promoted_at;
$$;

-- Writes the battle row as the battle starts; the persona moves to the back of the rotation.
create or replace function start_battle(p_run_id uuid, p_persona_id uuid)
returns uuid
language plpgsql as $$
declare
    battle_id uuid;
begin
    if not exists (select 1 from training_runs where id = p_run_id and status = 'running') then
        raise exception 'run % is not running', p_run_id using errcode = 'P0001';
    end if;
    if not exists (select 1 from sandbox_personas where id = p_persona_id and lease_run_id = p_run_id) then
        raise exception 'persona % is not leased to run %', p_persona_id, p_run_id using errcode = 'P0001';
    end if;
    insert into sandbox_battles (run_id, persona_id) values (p_run_id, p_persona_id) returning id into battle_id;
    update sandbox_personas set last_battled_at = now() where id = p_persona_id;
    return battle_id;
end;
$$;

-- Saves a running battle's transcript and spend after each turn, so a process that dies mid-battle
-- loses at most the turn in flight: the next run closes the battle with what was saved.
create or replace function record_battle_progress(
    p_battle_id uuid, p_transcript jsonb, p_turns integer, p_prompt_tokens integer, p_cached_tokens integer,
    p_completion_tokens integer, p_cost_usd numeric)
returns boolean
language plpgsql as $$
begin
    update sandbox_battles set transcript = p_transcript, turns = p_turns, prompt_tokens = p_prompt_tokens,
        cached_tokens = p_cached_tokens, completion_tokens = p_completion_tokens, cost_usd = p_cost_usd,
        updated_at = now()
    where id = p_battle_id and status = 'running';
    return found;
end;
$$;

-- Ends a battle. Only a running battle changes: the first ending wins, so the runner closing a
-- battle at the deadline and its thread finishing late cannot overwrite each other.
create or replace function finish_battle(
    p_battle_id uuid, p_status text, p_transcript jsonb, p_turns integer,
    p_prompt_tokens integer, p_cached_tokens integer, p_completion_tokens integer, p_cost_usd numeric,
    p_referee_score numeric default null, p_scores jsonb default null, p_referee_feedback text default null,
    p_winning_rebuttal text default null, p_seller_agreed boolean default null, p_error text default null)
returns boolean
language plpgsql as $$
begin
    if p_status not in ('completed', 'failed', 'timed_out', 'killed') then
        raise exception 'finish_battle: % is not a terminal status', p_status using errcode = 'P0001';
    end if;
    update sandbox_battles set
        status = p_status, transcript = p_transcript, turns = p_turns,
        prompt_tokens = p_prompt_tokens, cached_tokens = p_cached_tokens,
        completion_tokens = p_completion_tokens, cost_usd = p_cost_usd,
        referee_score = p_referee_score, scores = p_scores, referee_feedback = p_referee_feedback,
        winning_rebuttal = p_winning_rebuttal, seller_agreed = p_seller_agreed, error = p_error,
        ended_at = now(), updated_at = now()
    where id = p_battle_id and status = 'running';
    return found;
end;
$$;

-- Ends a run: battles still running end with p_leftover_status, the figures are tallied from the
-- battle rows, personas are released, and a tripped kill-switch pauses training (persisted).
create or replace function finish_training_run(
    p_run_id uuid, p_status text, p_leftover_status text, p_kill_switch_triggered boolean,
    p_timed_out boolean, p_errors jsonb, p_breakthrough_threshold integer, p_duration_ms integer,
    p_error text default null, p_pause_reason text default null)
returns jsonb
language plpgsql as $$
declare
    run training_runs%rowtype;
begin
    update sandbox_battles set status = p_leftover_status, ended_at = now(), updated_at = now(),
        error = coalesce(error, 'still running when the run ended')
    where run_id = p_run_id and status = 'running';
    perform tally_run(p_run_id, p_breakthrough_threshold);
    update training_runs set status = p_status, kill_switch_triggered = p_kill_switch_triggered,
        timed_out = p_timed_out, errors = p_errors, duration_ms = p_duration_ms, error = p_error,
        finished_at = now()
    where id = p_run_id and status = 'running'
    returning * into run;
    if not found then
        raise exception 'run % is not running (closed by another process?)', p_run_id using errcode = 'P0001';
    end if;
    update sandbox_personas set lease_run_id = null where lease_run_id = p_run_id;
    if p_pause_reason is not null then
        perform set_training_paused(true, p_pause_reason);
    end if;
    return run_summary(run);
end;
$$;

-- ---------------------------------------------------------------------------------------------
-- Tactical Scout
-- ---------------------------------------------------------------------------------------------

create or replace function set_scout_notified(p_run_id uuid, p_notified boolean)
returns void
language sql as $$
    update training_runs set scout_notified = p_notified where id = p_run_id;
$$;

-- Flags completed battles at or above the threshold as breakthroughs (once each), then leases up
-- to p_limit breakthroughs that still need a defining moment or an alert. A lease keeps
-- overlapping scans off the same battle; it lapses on its own if a scan dies.
create or replace function claim_scout_work(p_threshold integer, p_limit integer, p_lease_seconds integer)
returns jsonb
language plpgsql as $$
declare
    flagged uuid[];
    work jsonb;
begin
    with fresh as (
        select id from sandbox_battles
        where status = 'completed' and referee_score >= p_threshold and breakthrough_status is null
        for update skip locked
    ), marked as (
        update sandbox_battles b set breakthrough_status = 'pending_review', breakthrough_detected_at = now(),
            updated_at = now()
        from fresh where b.id = fresh.id
        returning b.id
    )
    select coalesce(array_agg(id), '{}') into flagged from marked;

    with due as (
        select b.id from sandbox_battles b
        where b.breakthrough_status is not null
          and (b.defining_moment is null or b.alerted_at is null)
          and (b.scout_lease_until is null or b.scout_lease_until < now())
        order by b.breakthrough_detected_at
        limit p_limit
        for update skip locked
    ), leased as (
        update sandbox_battles b set scout_lease_until = now() + make_interval(secs => p_lease_seconds)
        from due where b.id = due.id
        returning b.*
    )
    select coalesce(jsonb_agg(jsonb_build_object(
        'id', l.id, 'runId', l.run_id, 'persona', p.name, 'score', l.referee_score,
        'transcript', l.transcript, 'winningRebuttal', l.winning_rebuttal,
        'refereeFeedback', l.referee_feedback, 'definingMoment', l.defining_moment,
        'tacticalSnippet', l.tactical_snippet, 'alerted', l.alerted_at is not null,
        'newlyFlagged', l.id = any(flagged), 'simulated', r.simulated)
        order by l.breakthrough_detected_at), '[]')
    into work
    from leased l
    join sandbox_personas p on p.id = l.persona_id
    join training_runs r on r.id = l.run_id;
    return work;
end;
$$;

create or replace function record_defining_moment(p_battle_id uuid, p_defining_moment text,
                                                   p_tactical_snippet text)
returns void
language plpgsql as $$
begin
    if coalesce(btrim(p_defining_moment), '') = '' or coalesce(btrim(p_tactical_snippet), '') = '' then
        raise exception 'a defining moment and a tactical snippet are both required' using errcode = 'P0001';
    end if;
    update sandbox_battles set defining_moment = p_defining_moment, tactical_snippet = p_tactical_snippet,
        updated_at = now()
    where id = p_battle_id;
end;
$$;

-- Records a Slack alert that Slack accepted; false if another scan already had (at most once).
create or replace function mark_alerted(p_battle_id uuid)
returns boolean
language plpgsql as $$
begin
    update sandbox_battles set alerted_at = now() where id = p_battle_id and alerted_at is null;
    return found;
end;
$$;

create or replace function release_scout_lease(p_battle_id uuid)
returns void
language sql as $$
    update sandbox_battles set scout_lease_until = null where id = p_battle_id;
$$;

-- ---------------------------------------------------------------------------------------------
-- Dashboard
-- ---------------------------------------------------------------------------------------------

-- The live feed. Without a cursor: the latest battles. With one (updated_at, id): the battles
-- changed after it, oldest first, so a poll that hits the limit resumes where it stopped.
create or replace function dashboard_feed(p_after_updated_at timestamptz default null,
                                          p_after_id uuid default null, p_limit integer default 50)
returns jsonb
language sql stable as $$
    with candidates as (
        select b.*, p.name as persona, r.simulated
        from sandbox_battles b
        join sandbox_personas p on p.id = b.persona_id
        join training_runs r on r.id = b.run_id
    ), picked as (
        (select * from candidates where p_after_updated_at is null
         order by updated_at desc, id desc limit least(greatest(p_limit, 1), 200))
        union all
        (select * from candidates
         where p_after_updated_at is not null
           and (updated_at, id) > (p_after_updated_at,
                                   coalesce(p_after_id, '00000000-0000-0000-0000-000000000000'::uuid))
         order by updated_at, id limit least(greatest(p_limit, 1), 200))
    )
    select jsonb_build_object(
        'battles', coalesce(jsonb_agg(jsonb_build_object(
            'id', id, 'runId', run_id, 'persona', persona, 'status', status, 'score', referee_score,
            'cost', cost_usd, 'turns', turns, 'simulated', simulated, 'breakthrough', breakthrough_status,
            'startedAt', started_at, 'updatedAt', updated_at,
            'durationMs', (extract(epoch from coalesce(ended_at, now()) - started_at) * 1000)::bigint)
            order by updated_at desc, id desc), '[]'),
        'cursor', (select jsonb_build_object('updatedAt', updated_at, 'id', id) from picked
                   order by updated_at desc, id desc limit 1))
    from picked;
$$;

create or replace function dashboard_battle(p_battle_id uuid)
returns jsonb
language sql stable as $$
    select jsonb_build_object(
        'id', b.id, 'runId', b.run_id, 'persona', p.name, 'status', b.status, 'score', b.referee_score,
        'scores', b.scores, 'feedback', b.referee_feedback, 'winningRebuttal', b.winning_rebuttal,
        'sellerAgreed', b.seller_agreed, 'transcript', b.transcript, 'turns', b.turns, 'cost', b.cost_usd,
        'error', b.error, 'simulated', r.simulated, 'startedAt', b.started_at, 'endedAt', b.ended_at,
        'breakthrough', b.breakthrough_status, 'definingMoment', b.defining_moment,
        'tacticalSnippet', b.tactical_snippet)
    from sandbox_battles b
    join sandbox_personas p on p.id = b.persona_id
    join training_runs r on r.id = b.run_id
    where b.id = p_battle_id;
$$;

create or replace function dashboard_breakthroughs(p_limit integer default 50)
returns jsonb
language sql stable as $$
    select jsonb_build_object(
        'pending', (select count(*) from sandbox_battles where breakthrough_status = 'pending_review'),
        'items', coalesce((select jsonb_agg(item order by detected desc) from (
            select jsonb_build_object(
                'id', b.id, 'persona', p.name, 'score', b.referee_score, 'status', b.breakthrough_status,
                'definingMoment', b.defining_moment, 'tacticalSnippet', b.tactical_snippet,
                'winningRebuttal', b.winning_rebuttal, 'detectedAt', b.breakthrough_detected_at,
                'simulated', r.simulated) as item, b.breakthrough_detected_at as detected
            from sandbox_battles b
            join sandbox_personas p on p.id = b.persona_id
            join training_runs r on r.id = b.run_id
            where b.breakthrough_status is not null
            order by (b.breakthrough_status = 'pending_review') desc, b.breakthrough_detected_at desc
            limit p_limit) x), '[]'));
$$;

create or replace function persona_analytics()
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

create or replace function run_history(p_limit integer default 30)
returns jsonb
language sql stable as $$
    select coalesce(jsonb_agg(run_summary(r) order by r.started_at), '[]')
    from (select * from training_runs order by started_at desc limit p_limit) r;
$$;

-- Promotes a breakthrough's tactic into the closer's prompt (the snippet unless edited).
create or replace function promote_breakthrough(p_battle_id uuid, p_tactic_text text default null,
                                                p_priority integer default 100)
returns jsonb
language plpgsql as $$
declare
    battle sandbox_battles%rowtype;
    tactic sandbox_tactics%rowtype;
begin
    select * into battle from sandbox_battles where id = p_battle_id for update;
    if not found or battle.breakthrough_status is null then
        raise exception 'battle % is not a breakthrough', p_battle_id using errcode = 'P0001';
    end if;
    if battle.breakthrough_status = 'promoted' then
        raise exception 'battle % is already promoted', p_battle_id using errcode = 'P0001';
    end if;
    if coalesce(btrim(coalesce(p_tactic_text, battle.tactical_snippet)), '') = '' then
        raise exception 'no tactic text: the scout has not extracted a snippet yet' using errcode = 'P0001';
    end if;
    insert into sandbox_tactics (battle_id, tactic_text, priority)
    values (p_battle_id, btrim(coalesce(p_tactic_text, battle.tactical_snippet)), p_priority)
    returning * into tactic;
    update sandbox_battles set breakthrough_status = 'promoted', updated_at = now() where id = p_battle_id;
    return to_jsonb(tactic);
end;
$$;

create or replace function set_breakthrough_status(p_battle_id uuid, p_status text)
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
-- Grants: Supabase calls these as service_role; elsewhere the role does not exist.
-- ---------------------------------------------------------------------------------------------

do $$
declare
    fn regprocedure;
begin
    for fn in
        select p.oid::regprocedure from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = current_schema()
          and p.proname in ('upsert_personas', 'persona_names', 'set_training_paused', 'training_pause_state',
                            'training_status', 'run_summary',
                            'close_orphaned_runs', 'tally_run', 'start_training_run', 'active_tactics',
                            'start_battle', 'record_battle_progress', 'finish_battle', 'finish_training_run', 'set_scout_notified',
                            'claim_scout_work', 'record_defining_moment', 'mark_alerted',
                            'release_scout_lease', 'dashboard_feed', 'dashboard_battle',
                            'dashboard_breakthroughs', 'persona_analytics', 'run_history',
                            'promote_breakthrough', 'set_breakthrough_status')
    loop
        execute format('revoke all on function %s from public', fn);
        if exists (select 1 from pg_roles where rolname = 'service_role') then
            execute format('grant execute on function %s to service_role', fn);
        end if;
    end loop;
    if exists (select 1 from pg_roles where rolname = 'service_role') then
        grant select, insert, update, delete on training_control, training_runs, sandbox_personas,
            sandbox_battles, sandbox_tactics to service_role;
    end if;
end;
$$;

notify pgrst, 'reload schema';
