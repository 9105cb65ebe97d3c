-- Autonomous training: tables, indexes and every function the app writes through.
--
-- The single source of data logic. Both transports (PostgREST `POST /rest/v1/rpc/<fn>` and
-- psycopg `select fn(arg => …)`) call these functions, so each call is one transaction with one
-- set of rules. Applying this file twice changes nothing.

select pg_advisory_xact_lock(hashtext('autonomous_training_schema'));

-- ---------------------------------------------------------------------------------------------
-- Rules for changing this file (it is applied again, in place, to databases holding data)
--
-- * Every function is named training_… : Supabase's public schema is shared with the host app.
-- * A new column is `alter table … add column if not exists`, never an edit of `create table`
--   (an existing table keeps its old definition); a new table is `create table if not exists`.
-- * A function whose arguments change gets `drop function if exists name(old argument types)`
--   below, in the same change: `create or replace` with new arguments makes a second overload,
--   and PostgREST then answers "function is not unique".
-- * tests/test_schema_upgrade.py applies the previous release's file to a database holding data,
--   then this one, and checks every row and every function.
-- ---------------------------------------------------------------------------------------------

-- Functions of the first release (unprefixed), renamed or split since.
drop function if exists upsert_personas(jsonb);
drop function if exists persona_names();
drop function if exists set_training_paused(boolean, text);
drop function if exists close_orphaned_runs(integer);
drop function if exists tally_run(uuid, integer);
drop function if exists start_training_run(text, integer, integer, numeric, integer, integer, boolean, integer);
drop function if exists active_tactics();
drop function if exists start_battle(uuid, uuid);
drop function if exists record_battle_progress(uuid, jsonb, integer, integer, integer, integer, numeric);
drop function if exists finish_battle(uuid, text, jsonb, integer, integer, integer, integer, numeric, numeric,
                                      jsonb, text, text, boolean, text);
drop function if exists finish_training_run(uuid, text, text, boolean, boolean, jsonb, integer, integer, text, text);
drop function if exists set_scout_notified(uuid, boolean);
drop function if exists claim_scout_work(integer, integer, integer);
drop function if exists record_defining_moment(uuid, text, text);
drop function if exists mark_alerted(uuid);
drop function if exists release_scout_lease(uuid);
drop function if exists dashboard_feed(timestamptz, uuid, integer);
drop function if exists dashboard_battle(uuid);
drop function if exists dashboard_breakthroughs(integer);
drop function if exists persona_analytics();
drop function if exists run_history(integer);
drop function if exists promote_breakthrough(uuid, text, integer);
drop function if exists set_breakthrough_status(uuid, text);
-- training_set_paused gained p_by (who paused).
drop function if exists training_set_paused(boolean, text);
-- Never released (development only), replaced by the referee's confirmation (triage, then a re-score before a battle is flagged).
drop function if exists training_flag_breakthroughs(integer);
drop function if exists training_lease_scout_work(integer, integer);
-- training_start_run gained the daily and monthly budgets; training_status gained them too.
drop function if exists training_start_run(text, integer, integer, numeric, integer, integer, boolean, integer);
drop function if exists training_status();
-- training_start_run gained the canary and the budgets at once: the development signatures go too.
drop function if exists training_start_run(text, integer, integer, numeric, integer, integer, boolean, integer, text,
                                           numeric);
drop function if exists training_start_run(text, integer, integer, numeric, integer, integer, boolean, integer, numeric,
                                           numeric);
-- Last: the first release's functions above took its row type.
drop function if exists run_summary(training_runs);
-- Signatures changed since (closer versions): a battle records its version, a run plans the canary.
drop function if exists training_start_run(text, integer, integer, numeric, integer, integer, boolean, integer);
drop function if exists training_start_battle(uuid, uuid);
drop function if exists training_promote_breakthrough(uuid, text, integer);

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
-- Who paused: a person (CLI, dashboard) or a batch that reached its cost cap.
alter table training_control add column if not exists paused_by text
    check (paused_by in ('person', 'cost_cap'));
-- A pause from before the column: the first release wrote the cost cap's reason as "Kill-switch …".
update training_control set paused_by = case when reason like 'Kill-switch activated%' then 'cost_cap'
                                             else 'person' end
where paused and paused_by is null;

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
-- The scout's state per battle, one column per task (see "Referee and scout state" below):
-- triaged once; a candidate's confirmation; an audit re-score; Slack delivery; LLM failures.
alter table sandbox_battles add column if not exists scout_seen_at timestamptz;
alter table sandbox_battles add column if not exists confirm_status text
    check (confirm_status in ('pending', 'confirmed', 'unconfirmed', 'legacy'));
alter table sandbox_battles add column if not exists confirm_score numeric(5, 2)
    check (confirm_score between 0 and 100);
alter table sandbox_battles add column if not exists confirm_reason text;
alter table sandbox_battles add column if not exists audit_status text check (audit_status in ('pending', 'done'));
alter table sandbox_battles add column if not exists slack_status text
    check (slack_status in ('pending', 'sent', 'failed'));
alter table sandbox_battles add column if not exists slack_error text;
alter table sandbox_battles add column if not exists scout_attempts integer not null default 0
    check (scout_attempts >= 0);
alter table sandbox_battles add column if not exists scout_error text;

create index if not exists sandbox_battles_run_idx on sandbox_battles (run_id);
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

comment on table training_control is 'The persisted pause: one row; a paused switch refuses every new run.';
comment on table training_runs is 'One row per batch: its trigger, outcome, spend against its cost cap, and figures tallied from its battles.';
comment on table sandbox_personas is 'The simulated sellers the closer trains against, with their rotation time and the run leasing them.';
comment on table sandbox_battles is 'One conversation between the closer and a persona: transcript, referee verdict, spend, and breakthrough review state.';
comment on table sandbox_tactics is 'Tactics promoted from breakthroughs; the active ones are added to every closer prompt by priority.';

-- ---------------------------------------------------------------------------------------------
-- Personas
-- ---------------------------------------------------------------------------------------------

-- Upserts personas by name. Each element: {name, persona_type, description, system_prompt,
-- characteristics, attack_patterns, source}. One bad element rejects the whole call.
create or replace function training_upsert_personas(p_personas jsonb)
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

create or replace function training_persona_names()
returns setof text
language sql stable as $$
    select name from sandbox_personas order by name;
$$;

-- ---------------------------------------------------------------------------------------------
-- Pause and status
-- ---------------------------------------------------------------------------------------------

create or replace function training_set_paused(p_paused boolean, p_reason text default null,
                                               p_by text default 'person')
returns jsonb
language plpgsql as $$
declare
    control training_control%rowtype;
begin
    if p_paused and coalesce(btrim(p_reason), '') = '' then
        raise exception 'a pause needs a reason' using errcode = 'P0001';
    end if;
    if p_paused and p_by not in ('person', 'cost_cap') then
        raise exception 'a pause is made by person or cost_cap, not %', p_by using errcode = 'P0001';
    end if;
    update training_control set
        paused = p_paused,
        reason = case when p_paused then p_reason end,
        paused_by = case when p_paused then p_by end,
        updated_at = now()
    where id
    returning * into control;
    return training_pause_state();
end;
$$;

-- The pause alone: what a running batch polls to honour a pause within a call or so.
create or replace function training_pause_state()
returns jsonb
language sql stable as $$
    select jsonb_build_object('paused', paused, 'reason', reason, 'pausedBy', paused_by, 'updatedAt', updated_at)
    from training_control where id;
$$;

-- training_status is defined with the budget below (it reports the day's and month's spend).

-- ---------------------------------------------------------------------------------------------
-- Runs and battles
-- ---------------------------------------------------------------------------------------------

-- The batch figures of a run, in the shape of the HTTP response's `batch`.
create or replace function training_run_summary(p_run training_runs)
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
create or replace function training_close_orphaned_runs(p_grace_ms integer default 5000)
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
        perform training_tally_run(orphan.id);
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
create or replace function training_tally_run(p_run_id uuid, p_breakthrough_threshold integer default 95)
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

-- Why a run may not start now, or null: paused, too many runs in progress, or no active persona.
create or replace function training_run_refusal(p_max_concurrent_runs integer)
returns jsonb
language plpgsql stable as $$
declare
    control training_control%rowtype;
    busy uuid;
begin
    select * into control from training_control where id;
    if control.paused then
        return jsonb_build_object('status', 'paused', 'reason', control.reason, 'pausedBy', control.paused_by,
                                  'since', control.updated_at);
    end if;
    select id into busy from training_runs where status = 'running' order by started_at
        offset greatest(p_max_concurrent_runs - 1, 0) limit 1;
    if busy is not null then
        return jsonb_build_object('status', 'busy', 'runId', busy);
    end if;
    if not exists (select 1 from sandbox_personas where is_active) then
        return jsonb_build_object('status', 'no_personas');
    end if;
    return null;
end;
$$;

-- Leases up to p_count active personas that no running run holds, least recently battled first.
create or replace function training_lease_personas(p_run_id uuid, p_count integer)
returns jsonb
language sql as $$
    with free as (
        select p.id from sandbox_personas p
        where p.is_active
          and (p.lease_run_id is null
               or not exists (select 1 from training_runs r where r.id = p.lease_run_id and r.status = 'running'))
        order by p.last_battled_at asc nulls first, p.name
        limit p_count
        for update of p skip locked
    ), leased as (
        update sandbox_personas p set lease_run_id = p_run_id from free where p.id = free.id returning p.*
    )
    select jsonb_agg(jsonb_build_object(
               'id', id, 'name', name, 'persona_type', persona_type, 'system_prompt', system_prompt,
               'characteristics', characteristics, 'attack_patterns', attack_patterns)
               order by last_battled_at asc nulls first, name)
    from leased;
$$;

-- How long a battle takes: the mean of the last 20 completed ones of the same kind (simulated or
-- not), or p_default_ms before there are any. The runner admits a battle only if it fits.
create or replace function training_expected_battle_ms(p_simulated boolean, p_default_ms integer)
returns integer
language sql stable as $$
    select coalesce(round(avg(extract(epoch from b.ended_at - b.started_at) * 1000))::integer, p_default_ms)
    from (select b.started_at, b.ended_at from sandbox_battles b join training_runs r on r.id = b.run_id
          where b.status = 'completed' and r.simulated = p_simulated
          order by b.ended_at desc limit 20) b;
$$;

-- Starts a run, atomically (one advisory lock, one transaction): closes orphaned runs, refuses if
-- it may not start, records the run, records the base prompt (see training_record_base_prompt),
-- leases its personas and plans its battles: with a candidate under canary, floor(batch size ×
-- p_canary_share) personas battle both the active version and the candidate (the canary's pairs).
-- Returns {"status": "started" | "paused" | "busy" | "no_personas" | "no_free_personas", …}; a
-- started run comes with `battles` [{persona, versionId}], `versions` {id: {id, basePrompt,
-- tactics}} and `canaryPairs`.
create or replace function training_start_run(
    p_trigger text, p_requested_batch_size integer, p_batch_size integer, p_cost_cap numeric,
    p_max_concurrent_runs integer, p_deadline_ms integer, p_simulated boolean,
    p_default_battle_ms integer, p_base_prompt text default null, p_canary_share numeric default 0.5,
    p_daily_budget numeric default null, p_monthly_budget numeric default null)
returns jsonb
language plpgsql as $$
declare
    run training_runs%rowtype;
    recovered integer;
    refusal jsonb;
    personas jsonb;
    active record;  -- not %rowtype: training_versions is created further down this file
    candidate record;
    pairs integer := 0;
    grant_ jsonb;
begin
    if p_canary_share is null or p_canary_share <= 0 or p_canary_share > 0.5 then
        raise exception 'canary share must be above 0 and at most 0.5, got %', p_canary_share using errcode = 'P0001';
    end if;
    perform pg_advisory_xact_lock(hashtext('training_run_start'));
    recovered := training_close_orphaned_runs();
    refusal := training_run_refusal(p_max_concurrent_runs);
    if refusal is not null then
        return refusal;
    end if;
    -- Under the lock above: no other run takes a block between this one's reckoning and its insert.
    grant_ := training_budget_grant(p_cost_cap, p_daily_budget, p_monthly_budget, p_simulated);
    if grant_ ->> 'status' = 'budget' then
        return grant_;
    end if;

    insert into training_runs (trigger, requested_batch_size, batch_size, cost_cap, simulated, deadline_at,
                               budget_block)
    values (p_trigger, p_requested_batch_size, p_batch_size, p_cost_cap, p_simulated,
            now() + make_interval(secs => p_deadline_ms / 1000.0), (grant_ ->> 'block')::numeric)
    returning * into run;

    if p_base_prompt is not null then
        perform training_record_base_prompt(p_base_prompt);
    end if;
    active := training_ensure_active_version();
    select * into candidate from training_versions where status = 'candidate';
    if candidate.id is not null then
        pairs := floor(p_batch_size * p_canary_share)::integer;
    end if;
    personas := training_lease_personas(run.id, p_batch_size - pairs);
    if personas is null then
        delete from training_runs where id = run.id;
        return jsonb_build_object('status', 'no_free_personas');
    end if;
    pairs := least(pairs, jsonb_array_length(personas));
    return jsonb_build_object('status', 'started', 'run', training_run_summary(run), 'personas', personas,
                              'recovered', recovered, 'budget', grant_,
                              'expectedBattleMs', training_expected_battle_ms(p_simulated, p_default_battle_ms),
                              'battles', training_plan_battles(personas, pairs, active.id, candidate.id),
                              'versions', jsonb_build_object(active.id::text, training_version_prompt(active.id))
                                  || case when candidate.id is null then '{}'::jsonb
                                          else jsonb_build_object(candidate.id::text,
                                                                  training_version_prompt(candidate.id)) end,
                              'canaryPairs', pairs);
end;
$$;

-- Writes the battle row as the battle starts, with the closer version it runs (the active one when
-- not given); the persona moves to the back of the rotation.
create or replace function training_start_battle(p_run_id uuid, p_persona_id uuid, p_version_id integer default null)
returns uuid
language plpgsql as $$
declare
    battle_id uuid;
    chosen integer := coalesce(p_version_id, (training_ensure_active_version()).id);
begin
    if not exists (select 1 from training_runs where id = p_run_id and status = 'running') then
        raise exception 'run % is not running', p_run_id using errcode = 'P0001';
    end if;
    if not exists (select 1 from sandbox_personas where id = p_persona_id and lease_run_id = p_run_id) then
        raise exception 'persona % is not leased to run %', p_persona_id, p_run_id using errcode = 'P0001';
    end if;
    insert into sandbox_battles (run_id, persona_id, version_id) values (p_run_id, p_persona_id, chosen)
    returning id into battle_id;
    update sandbox_personas set last_battled_at = now() where id = p_persona_id;
    return battle_id;
end;
$$;

-- Saves a running battle's transcript and spend after each turn, so a process that dies mid-battle
-- loses at most the turn in flight: the next run closes the battle with what was saved.
create or replace function training_record_battle_progress(
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
create or replace function training_finish_battle(
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
-- battle rows, personas are released, and a batch that reached its cost cap pauses training.
-- The one place a run's final status is decided from its battles: a run that would end
-- `completed` or `timed_out` with no completed battle and at least one failed battle is `failed`
-- (e.g. a price that breaks the arithmetic fails every battle), with the first failure as its error.
create or replace function training_finish_run(
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
    perform training_tally_run(p_run_id, p_breakthrough_threshold);
    update training_runs set
        status = case when p_status in ('completed', 'timed_out') and battles_completed = 0 and battles_failed > 0
                      then 'failed' else p_status end,
        kill_switch_triggered = p_kill_switch_triggered,
        timed_out = p_timed_out, errors = p_errors, duration_ms = p_duration_ms,
        error = coalesce(p_error, case when p_status in ('completed', 'timed_out') and battles_completed = 0
                                            and battles_failed > 0
            then format('no battle completed: %s failed (the first: %s)', battles_failed,
                        (select b.error from sandbox_battles b where b.run_id = p_run_id and b.status = 'failed'
                         order by b.ended_at, b.id limit 1)) end),
        finished_at = now()
    where id = p_run_id and status = 'running'
    returning * into run;
    if not found then
        raise exception 'run % is not running (closed by another process?)', p_run_id using errcode = 'P0001';
    end if;
    update sandbox_personas set lease_run_id = null where lease_run_id = p_run_id;
    if p_pause_reason is not null then
        perform training_set_paused(true, p_pause_reason, 'cost_cap');
    end if;
    return training_run_summary(run);
end;
$$;

-- ---------------------------------------------------------------------------------------------
-- Tactical Scout
-- ---------------------------------------------------------------------------------------------

create or replace function training_set_scout_notified(p_run_id uuid, p_notified boolean)
returns void
language sql as $$
    update training_runs set scout_notified = p_notified where id = p_run_id;
$$;

create or replace function training_record_defining_moment(p_battle_id uuid, p_defining_moment text,
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
create or replace function training_mark_alerted(p_battle_id uuid)
returns boolean
language plpgsql as $$
begin
    update sandbox_battles set alerted_at = now(), slack_status = 'sent', slack_error = null
    where id = p_battle_id and alerted_at is null;
    return found;
end;
$$;

-- Slack refused the alert for good (a revoked webhook, a bad payload): never retried, reason kept.
create or replace function training_mark_alert_failed(p_battle_id uuid, p_reason text)
returns boolean
language plpgsql as $$
begin
    update sandbox_battles set slack_status = 'failed', slack_error = left(p_reason, 500)
    where id = p_battle_id and slack_status = 'pending';
    return found;
end;
$$;

create or replace function training_release_scout_lease(p_battle_id uuid)
returns void
language sql as $$
    update sandbox_battles set scout_lease_until = null where id = p_battle_id;
$$;

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
-- After the batch (kept last, above the grants, which only see the functions defined before them)
-- ---------------------------------------------------------------------------------------------

-- Appends what went wrong after a run was finished (a Slack alert, the scout webhook) to its
-- errors, so the row says what the HTTP response and the CLI summary say. Returns the new array.
create or replace function training_append_run_errors(p_run_id uuid, p_errors jsonb)
returns jsonb
language plpgsql as $$
declare
    appended jsonb;
begin
    if jsonb_typeof(p_errors) is distinct from 'array' then
        raise exception 'errors must be a JSON array' using errcode = 'P0001';
    end if;
    update training_runs set errors = errors || p_errors where id = p_run_id
    returning errors into appended;
    if not found then
        raise exception 'run % does not exist', p_run_id using errcode = 'P0001';
    end if;
    return appended;
end;
$$;

-- ---------------------------------------------------------------------------------------------
-- Referee and scout state: triage, confirmation and audit re-scores, reviewers' labels,
-- calibration results, the drift alert.
--
-- Each completed battle is triaged once (scout_seen_at): a score at or above the cutoff becomes
-- a candidate (confirm_status 'pending'); a share of the battles of the last days, picked by a
-- hash of their id, awaits an audit re-score (audit_status 'pending'). A confirmed candidate
-- becomes a breakthrough pending review and pending Slack delivery (slack_status); an
-- unconfirmed one keeps its reason. Every task is its own column and advances once, so a scan
-- never redoes work and a backlog drains oldest first whatever Slack does.
-- ---------------------------------------------------------------------------------------------

-- One row per re-score: the confirmation of a candidate, or an audit of the referee's consistency.
create table if not exists training_rescores (
    battle_id uuid not null references sandbox_battles (id) on delete cascade,
    purpose text not null check (purpose in ('confirm', 'audit')),
    model text not null check (length(btrim(model)) > 0),
    score numeric(5, 2) not null check (score between 0 and 100),
    scores jsonb not null check (jsonb_typeof(scores) = 'object'),
    cost_usd numeric(12, 6) not null default 0 check (cost_usd >= 0),
    created_at timestamptz not null default now(),
    primary key (battle_id, purpose)
);
create index if not exists training_rescores_recent_idx on training_rescores (purpose, created_at desc);

-- The results of python -m lib referee-check; the dashboard shows the latest.
create table if not exists training_referee_calibrations (
    id uuid primary key default gen_random_uuid(),
    model text not null check (length(btrim(model)) > 0),
    simulated boolean not null default false,
    spearman numeric(5, 4) check (spearman between -1 and 1),
    in_band numeric(5, 4) check (in_band between 0 and 1),
    items integer not null check (items >= 0),
    cost_usd numeric(12, 6) not null default 0 check (cost_usd >= 0),
    result jsonb not null default '{}' check (jsonb_typeof(result) = 'object'),
    created_at timestamptz not null default now()
);
create index if not exists training_referee_calibrations_recent_idx
    on training_referee_calibrations (created_at desc);

-- Drift alerts posted to Slack: at most one a day.
create table if not exists training_referee_drift_alerts (
    id uuid primary key default gen_random_uuid(),
    mean_abs_diff numeric(6, 2) not null,
    pairs integer not null check (pairs > 0),
    sent_at timestamptz not null default now()
);

create index if not exists sandbox_battles_untriaged_idx on sandbox_battles (ended_at)
    where status = 'completed' and scout_seen_at is null;

alter table training_rescores enable row level security;
alter table training_referee_calibrations enable row level security;
alter table training_referee_drift_alerts enable row level security;
comment on table training_rescores is 'Independent re-scores of battles by the scout: confirmations of candidates and audits of the referee''s consistency.';
comment on table training_referee_calibrations is 'Results of python -m lib referee-check on the shipped calibration set.';
comment on table training_referee_drift_alerts is 'Referee drift alerts sent to Slack (at most one a day).';

-- Breakthroughs flagged before confirmation existed stay breakthroughs ('legacy'); their Slack
-- state follows alerted_at. Only rows without the new state change, so applying again is a no-op.
update sandbox_battles set confirm_status = 'legacy',
    scout_seen_at = coalesce(scout_seen_at, breakthrough_detected_at, ended_at, now())
where breakthrough_status is not null and confirm_status is null;
update sandbox_battles set slack_status = case when alerted_at is not null then 'sent' else 'pending' end
where breakthrough_status is not null and slack_status is null;

-- Whether a battle falls in the audited share: a stable, uniform pick by its id.
create or replace function training_audit_pick(p_battle_id uuid, p_share numeric)
returns boolean
language sql immutable as $$
    select (('x' || substr(md5(p_battle_id::text), 1, 8))::bit(32)::bigint)::numeric / 4294967296 < p_share;
$$;

-- Triages completed battles the scout has not seen, once each: candidates at or above the cutoff
-- await confirmation; of the battles ended in the last p_audit_days, p_audit_share await an audit.
create or replace function training_triage_battles(p_threshold integer, p_audit_share numeric,
                                                   p_audit_days integer)
returns jsonb
language sql as $$
    with fresh as (
        select id from sandbox_battles
        where status = 'completed' and scout_seen_at is null
        for update skip locked
    ), marked as (
        update sandbox_battles b set scout_seen_at = now(),
            confirm_status = case when b.referee_score >= p_threshold and b.breakthrough_status is null
                                  then 'pending' else b.confirm_status end,
            audit_status = case when b.ended_at > now() - make_interval(days => p_audit_days)
                                     and training_audit_pick(b.id, p_audit_share)
                                then 'pending' else b.audit_status end
        from fresh where b.id = fresh.id
        returning b.confirm_status, b.audit_status
    )
    select jsonb_build_object('triaged', count(*),
                              'candidates', count(*) filter (where confirm_status = 'pending'),
                              'audits', count(*) filter (where audit_status = 'pending'))
    from marked;
$$;

-- Whether a battle has scout work left: model work (a confirmation, an audit, a defining moment)
-- while it has failed fewer than p_max_attempts times, or, with Slack configured, an alert.
create or replace function training_scout_due(p_battle sandbox_battles, p_slack boolean, p_max_attempts integer)
returns boolean
language sql stable as $$
    select (p_battle.scout_attempts < p_max_attempts
            and (p_battle.confirm_status = 'pending' or p_battle.audit_status = 'pending'
                 or (p_battle.breakthrough_status is not null and p_battle.defining_moment is null)))
        or (p_slack and p_battle.breakthrough_status is not null and p_battle.slack_status = 'pending');
$$;

-- Leases up to p_limit battles with scout work left, oldest first, and says how many were due.
-- A lease keeps overlapping scans off the same battle; it lapses on its own if a scan dies.
create or replace function training_lease_scout_work(p_limit integer, p_lease_seconds integer, p_slack boolean,
                                                     p_max_attempts integer)
returns jsonb
language sql as $$
    with due as (
        select b.id, b.ended_at from sandbox_battles b
        where training_scout_due(b, p_slack, p_max_attempts)
          and (b.scout_lease_until is null or b.scout_lease_until < now())
        order by b.ended_at, b.id
        limit p_limit
        for update skip locked
    ), leased as (
        update sandbox_battles b set scout_lease_until = now() + make_interval(secs => p_lease_seconds)
        from due where b.id = due.id
        returning b.*
    )
    select jsonb_build_object(
        'due', (select count(*) from sandbox_battles b
                where training_scout_due(b, p_slack, p_max_attempts)
                  and (b.scout_lease_until is null or b.scout_lease_until < now())),
        'items', coalesce((select jsonb_agg(jsonb_build_object(
            'id', l.id, 'runId', l.run_id, 'persona', p.name, 'personaType', p.persona_type,
            'score', l.referee_score, 'scores', l.scores, 'transcript', l.transcript,
            'winningRebuttal', l.winning_rebuttal, 'refereeFeedback', l.referee_feedback,
            'definingMoment', l.defining_moment, 'tacticalSnippet', l.tactical_snippet,
            'breakthrough', l.breakthrough_status, 'confirmStatus', l.confirm_status,
            'confirmScore', l.confirm_score, 'auditStatus', l.audit_status, 'slackStatus', l.slack_status,
            'attempts', l.scout_attempts, 'simulated', r.simulated)
            order by l.ended_at, l.id)
            from leased l
            join sandbox_personas p on p.id = l.persona_id
            join training_runs r on r.id = l.run_id), '[]'));
$$;

-- Records a candidate's confirmation re-score and the rule's outcome; false if it was already
-- decided. A confirmed candidate becomes a breakthrough pending review and pending Slack
-- delivery. With p_as_audit, the same re-score also stands as the battle's audit pair.
create or replace function training_record_confirmation(
    p_battle_id uuid, p_model text, p_score numeric, p_scores jsonb, p_cost_usd numeric, p_confirmed boolean,
    p_reason text, p_as_audit boolean default false)
returns boolean
language plpgsql as $$
begin
    update sandbox_battles set
        confirm_status = case when p_confirmed then 'confirmed' else 'unconfirmed' end,
        confirm_score = p_score, confirm_reason = left(p_reason, 500), scout_error = null,
        breakthrough_status = case when p_confirmed then 'pending_review' else breakthrough_status end,
        breakthrough_detected_at = case when p_confirmed then now() else breakthrough_detected_at end,
        slack_status = case when p_confirmed then 'pending' else slack_status end,
        updated_at = now()
    where id = p_battle_id and confirm_status = 'pending';
    if not found then
        return false;
    end if;
    insert into training_rescores (battle_id, purpose, model, score, scores, cost_usd)
    values (p_battle_id, 'confirm', p_model, p_score, p_scores, p_cost_usd);
    if p_as_audit then
        perform training_record_audit(p_battle_id, p_model, p_score, p_scores, 0);
    end if;
    return true;
end;
$$;

-- Records an audit re-score; false if the battle awaited none (already audited, or not picked).
create or replace function training_record_audit(p_battle_id uuid, p_model text, p_score numeric,
                                                 p_scores jsonb, p_cost_usd numeric)
returns boolean
language plpgsql as $$
begin
    update sandbox_battles set audit_status = 'done', scout_error = null
    where id = p_battle_id and audit_status = 'pending';
    if not found then
        return false;
    end if;
    insert into training_rescores (battle_id, purpose, model, score, scores, cost_usd)
    values (p_battle_id, 'audit', p_model, p_score, p_scores, p_cost_usd);
    return true;
end;
$$;

-- A model call for this battle failed (not for lack of time or budget): counted, reason kept.
create or replace function training_record_scout_error(p_battle_id uuid, p_error text)
returns integer
language sql as $$
    update sandbox_battles set scout_attempts = scout_attempts + 1, scout_error = left(p_error, 500)
    where id = p_battle_id
    returning scout_attempts;
$$;

-- What the scout has left to do, what it gave up on, and where Slack delivery stands.
create or replace function training_scout_state(p_max_attempts integer)
returns jsonb
language sql stable as $$
    select jsonb_build_object(
        'confirmPending', count(*) filter (where confirm_status = 'pending' and scout_attempts < p_max_attempts),
        'auditPending', count(*) filter (where audit_status = 'pending' and scout_attempts < p_max_attempts),
        'momentsPending', count(*) filter (where breakthrough_status is not null and defining_moment is null
                                           and scout_attempts < p_max_attempts),
        'gaveUp', count(*) filter (where scout_attempts >= p_max_attempts
                                   and (confirm_status = 'pending' or audit_status = 'pending'
                                        or (breakthrough_status is not null and defining_moment is null))),
        'unconfirmed', count(*) filter (where confirm_status = 'unconfirmed'),
        'slack', jsonb_build_object(
            'pending', count(*) filter (where breakthrough_status is not null and slack_status = 'pending'),
            'sent', count(*) filter (where slack_status = 'sent'),
            'failed', count(*) filter (where slack_status = 'failed')),
        'lastSlackFailure', (select jsonb_build_object('battleId', id, 'reason', slack_error)
                             from sandbox_battles where slack_status = 'failed'
                             order by breakthrough_detected_at desc nulls last limit 1),
        'lastError', (select jsonb_build_object('battleId', id, 'error', scout_error, 'attempts', scout_attempts)
                      from sandbox_battles where scout_error is not null
                      order by updated_at desc limit 1),
        'rescoreCost7d', (select coalesce(sum(cost_usd), 0) from training_rescores
                          where created_at > now() - interval '7 days'))
    from sandbox_battles;
$$;

-- The referee's consistency over the audit pairs of the last p_days: the mean absolute difference
-- of totals, the share of pairs on the same side of the cutoff, the mean absolute difference per
-- criterion. Audits only: confirmations re-score only high first scores, a biased sample.
create or replace function training_referee_consistency(p_days integer, p_threshold integer)
returns jsonb
language sql stable as $$
    with pairs as (
        select b.referee_score as first, r.score as second, b.scores as first_scores, r.scores as second_scores
        from training_rescores r
        join sandbox_battles b on b.id = r.battle_id
        where r.purpose = 'audit' and r.created_at > now() - make_interval(days => p_days)
          and b.referee_score is not null
    ), criteria as (
        select c.key, round(avg(abs((p.first_scores ->> c.key)::numeric - (p.second_scores ->> c.key)::numeric)), 2)
                   as diff
        from pairs p
        cross join lateral jsonb_object_keys(p.second_scores) as c(key)
        where jsonb_typeof(p.first_scores -> c.key) = 'number' and jsonb_typeof(p.second_scores -> c.key) = 'number'
        group by c.key
    )
    select jsonb_build_object(
        'days', p_days,
        'pairs', (select count(*) from pairs),
        'meanAbsDiff', (select round(avg(abs(first - second)), 2) from pairs),
        'agreement', (select round(avg(case when (first >= p_threshold) = (second >= p_threshold) then 1 else 0 end), 4)
                      from pairs),
        'perCriterion', coalesce((select jsonb_object_agg(key, diff) from criteria), '{}'));
$$;

-- Reviewers' decisions as labels over the breakthroughs flagged in the last p_days: promoted is a
-- real breakthrough, rejected is not, reviewed is neither. Per persona type, the precision needs
-- p_min_decisions decisions (else null).
create or replace function training_referee_precision(p_days integer, p_min_decisions integer)
returns jsonb
language sql stable as $$
    with decided as (
        select case when b.breakthrough_status = 'promoted' then 1.0 else 0.0 end as real, p.persona_type
        from sandbox_battles b
        join sandbox_personas p on p.id = b.persona_id
        where b.breakthrough_status in ('promoted', 'rejected')
          and b.breakthrough_detected_at > now() - make_interval(days => p_days)
    ), by_type as (
        select persona_type, count(*) as decisions, round(avg(real), 4) as precision
        from decided group by persona_type
    )
    select jsonb_build_object(
        'days', p_days,
        'decisions', (select count(*) from decided),
        'precision', (select round(avg(real), 4) from decided),
        'byPersonaType', coalesce((select jsonb_agg(jsonb_build_object(
            'type', persona_type, 'decisions', decisions,
            'precision', case when decisions >= p_min_decisions then precision end)
            order by decisions desc, persona_type) from by_type), '[]'));
$$;

-- The dashboard's Referee panel and the referee part of python -m lib status.
create or replace function training_referee_report(p_threshold integer, p_consistency_days integer,
                                                   p_precision_days integer, p_min_decisions integer)
returns jsonb
language sql stable as $$
    select jsonb_build_object(
        'consistency', training_referee_consistency(p_consistency_days, p_threshold),
        'precision', training_referee_precision(p_precision_days, p_min_decisions),
        'unconfirmed', coalesce((select jsonb_agg(item order by seen desc) from (
            select jsonb_build_object('id', b.id, 'persona', p.name, 'score', b.referee_score,
                                      'confirmScore', b.confirm_score, 'reason', b.confirm_reason,
                                      'detectedAt', b.scout_seen_at) as item, b.scout_seen_at as seen
            from sandbox_battles b join sandbox_personas p on p.id = b.persona_id
            where b.confirm_status = 'unconfirmed'
            order by b.scout_seen_at desc limit 20) x), '[]'),
        'calibration', (select jsonb_build_object('at', created_at, 'model', model, 'spearman', spearman,
                                                  'inBand', in_band, 'items', items)
                        from training_referee_calibrations order by created_at desc limit 1));
$$;

create or replace function training_record_calibration(p_model text, p_simulated boolean, p_spearman numeric,
                                                       p_in_band numeric, p_items integer, p_cost_usd numeric,
                                                       p_result jsonb)
returns jsonb
language sql as $$
    insert into training_referee_calibrations (model, simulated, spearman, in_band, items, cost_usd, result)
    values (p_model, p_simulated, p_spearman, p_in_band, p_items, p_cost_usd, p_result)
    returning jsonb_build_object('id', id, 'at', created_at, 'model', model, 'spearman', spearman,
                                 'inBand', in_band, 'items', items);
$$;

-- Claims today's drift alert: its id, or null when one was sent in the last 24 hours.
create or replace function training_claim_drift_alert(p_mean_abs_diff numeric, p_pairs integer)
returns uuid
language plpgsql as $$
declare
    claimed uuid;
begin
    perform pg_advisory_xact_lock(hashtext('training_referee_drift_alert'));
    if exists (select 1 from training_referee_drift_alerts where sent_at > now() - interval '1 day') then
        return null;
    end if;
    insert into training_referee_drift_alerts (mean_abs_diff, pairs) values (p_mean_abs_diff, p_pairs)
    returning id into claimed;
    return claimed;
end;
$$;

-- Slack did not take the drift alert (a transient failure): the next scan may try again.
create or replace function training_release_drift_alert(p_id uuid)
returns void
language sql as $$
    delete from training_referee_drift_alerts where id = p_id;
$$;


-- ---------------------------------------------------------------------------------------------
-- Recorded cost at full precision: every recorded cost is usage × price as the provider bills it
-- (numeric(20, 12)), no longer rounded up per call to the micro-dollar. The tables above were
-- created with numeric(12, 6); widening keeps every value, and is skipped once done. The cost cap
-- stays numeric(12, 6) (KILL_SWITCH_THRESHOLD_USD has at most 6 decimals).
-- ---------------------------------------------------------------------------------------------

do $$
declare
    target record;
begin
    for target in
        select * from (values ('sandbox_battles', 'cost_usd'), ('training_runs', 'total_cost'),
                              ('training_rescores', 'cost_usd'), ('training_referee_calibrations', 'cost_usd'))
                      as t (table_name, column_name)
    loop
        if (select numeric_scale from information_schema.columns where table_schema = current_schema()
            and table_name = target.table_name and column_name = target.column_name) is distinct from 12 then
            execute format('alter table %I alter column %I type numeric(20, 12)', target.table_name,
                           target.column_name);
        end if;
    end loop;
end;
$$;

-- ---------------------------------------------------------------------------------------------
-- Input limits. Every active tactic goes into every closer prompt, so a long one multiplies the
-- cost of every battle: at most 1000 characters (the dashboard refuses longer with a 400 first,
-- lib/dashboard.py MAX_TACTIC_CHARS). Added NOT VALID so an upgrade never fails on rows written
-- before the limit, and validated once none is over it; deactivating an old, longer tactic
-- stays possible.
-- ---------------------------------------------------------------------------------------------

do $$
begin
    if not exists (select 1 from pg_constraint where conrelid = 'sandbox_tactics'::regclass
                   and conname = 'sandbox_tactics_active_text_at_most_1000_chars') then
        alter table sandbox_tactics add constraint sandbox_tactics_active_text_at_most_1000_chars
            check (not is_active or char_length(tactic_text) <= 1000) not valid;
    end if;
    if exists (select 1 from pg_constraint where conrelid = 'sandbox_tactics'::regclass
               and conname = 'sandbox_tactics_active_text_at_most_1000_chars' and not convalidated)
       and not exists (select 1 from sandbox_tactics where is_active and char_length(tactic_text) > 1000) then
        alter table sandbox_tactics validate constraint sandbox_tactics_active_text_at_most_1000_chars;
    end if;
end;
$$;

-- ---------------------------------------------------------------------------------------------
-- Closer versions and the canary
--
-- A version is immutable: its base prompt (text and SHA-256; recorded once by the first run for a
-- version made before any run read the prompt) and an ordered list of tactics. Exactly
-- one version is active and at most one is a candidate (two partial unique indexes); the others
-- are retired or rolled_back. Every battle records the version it ran, and its closer prompt is
-- built from that version alone. Promoting, deactivating or editing a tactic makes a candidate
-- from the active version; each run then pairs battles of both versions by persona (the canary),
-- and lib/canary.py decides after every run: adopted, rolled_back or inconclusive. A person may
-- adopt a change directly, or roll back to any earlier version; both are recorded as versions.
-- Every change to the versions takes one advisory lock, so two changes never interleave.
-- ---------------------------------------------------------------------------------------------

create table if not exists training_versions (
    id integer generated always as identity primary key,
    parent_id integer references training_versions (id),
    status text not null check (status in ('active', 'candidate', 'retired', 'rolled_back')),
    base_prompt text,
    base_prompt_sha256 text check (base_prompt_sha256 ~ '^[0-9a-f]{64}$'),
    tactic_ids uuid[] not null default '{}',
    change text not null check (length(btrim(change)) > 0),
    decision text check (decision in ('pending', 'adopted', 'rolled_back', 'inconclusive', 'direct')),
    pairs integer not null default 0 check (pairs >= 0),
    diff numeric(6, 2),
    ci_low numeric(6, 2),
    ci_high numeric(6, 2),
    note text,
    created_at timestamptz not null default now(),
    decided_at timestamptz,
    check ((status = 'candidate') = (decision is not distinct from 'pending')),
    check ((base_prompt is null) = (base_prompt_sha256 is null)),
    check ((ci_low is null) = (ci_high is null) and ci_low <= ci_high)
);
create unique index if not exists training_versions_one_active on training_versions ((true)) where status = 'active';
create unique index if not exists training_versions_one_candidate on training_versions ((true))
    where status = 'candidate';

alter table sandbox_battles add column if not exists version_id integer references training_versions (id);
-- The canary's pairs: completed battles of a version, matched by run and persona.
create index if not exists sandbox_battles_version_idx on sandbox_battles (version_id, run_id, persona_id)
    where status = 'completed';

alter table training_versions enable row level security;
comment on table training_versions is 'Closer versions: a base prompt and an ordered tactic list; one active, at most one candidate under canary, with each decision and its figures.';

-- Tactic text as compared for repeats: lower case, each run of characters other than letters and
-- digits one space, trimmed (lib/simulator.py normalises the same way for its hidden effects).
create or replace function training_normalise_tactic(p_text text)
returns text
language sql immutable as $$
    select btrim(regexp_replace(lower(coalesce(p_text, '')), '[^[:alnum:]]+', ' ', 'g'));
$$;

-- The character trigrams of a tactic's normalised text, each word padded as pg_trgm pads it (two
-- spaces before, one after), so word starts weigh more than word middles.
create or replace function training_tactic_trigrams(p_text text)
returns setof text
language sql immutable as $$
    select distinct substr(padded, i, 3)
    from regexp_split_to_table(training_normalise_tactic(p_text), ' ') as word,
         lateral (select '  ' || word || ' ' as padded) p,
         lateral generate_series(1, length(padded) - 2) as i
    where word <> '';
$$;

-- How alike two tactics are: the Jaccard index of their trigram sets (shared / all), 0 to 1.
create or replace function training_tactic_similarity(p_a text, p_b text)
returns numeric
language sql immutable as $$
    with a as (select training_tactic_trigrams(p_a) as g), b as (select training_tactic_trigrams(p_b) as g),
         counts as (select (select count(*) from (select g from a intersect select g from b) i) as shared,
                           (select count(*) from (select g from a union select g from b) u) as total)
    select case when total = 0 then 0 else round(shared::numeric / total, 2) end from counts;
$$;

-- A tactic's text quoted in a message: at most 80 characters.
create or replace function training_quote_tactic(p_text text)
returns text
language sql immutable as $$
    select '"' || case when length(p_text) > 80 then left(p_text, 77) || '...' else p_text end || '"';
$$;

-- Why a tactic may not join these tactics, or null: empty, longer than 1,000 characters, the same
-- as one of them once normalised, or a near-duplicate (trigram similarity 0.6 or more).
create or replace function training_tactic_refusal(p_text text, p_tactic_ids uuid[])
returns text
language plpgsql stable as $$
declare
    candidate text := btrim(coalesce(p_text, ''));
    other record;
    similarity numeric;
begin
    if training_normalise_tactic(candidate) = '' then
        return 'a tactic cannot be empty';
    end if;
    if length(candidate) > 1000 then
        return format('a tactic is at most 1000 characters; this one has %s', length(candidate));
    end if;
    for other in
        select t.tactic_text from unnest(p_tactic_ids) with ordinality as u(id, position)
        join sandbox_tactics t on t.id = u.id order by u.position
    loop
        if training_normalise_tactic(other.tactic_text) = training_normalise_tactic(candidate) then
            return format('this tactic repeats the active tactic %s', training_quote_tactic(other.tactic_text));
        end if;
        similarity := training_tactic_similarity(candidate, other.tactic_text);
        if similarity >= 0.6 then
            return format('this tactic nearly repeats the active tactic %s (similarity %s; 0.6 or more counts as '
                          'a repeat)', training_quote_tactic(other.tactic_text), similarity);
        end if;
    end loop;
    return null;
end;
$$;

-- Keeps sandbox_tactics.is_active meaning "in the active version" (older readers use it).
create or replace function training_sync_tactics()
returns void
language sql as $$
    update sandbox_tactics t set is_active = (t.id = any(v.tactic_ids))
    from training_versions v
    where v.status = 'active' and t.is_active is distinct from (t.id = any(v.tactic_ids));
$$;

-- The active version; without one (a fresh or upgraded database), the baseline: the tactics active
-- until now, by priority. Its base prompt is recorded by the first run (training_start_run).
create or replace function training_ensure_active_version()
returns training_versions
language plpgsql as $$
declare
    active training_versions%rowtype;
begin
    select * into active from training_versions where status = 'active';
    if found then
        return active;
    end if;
    perform pg_advisory_xact_lock(hashtext('training_versions'));
    select * into active from training_versions where status = 'active';
    if found then
        return active;
    end if;
    insert into training_versions (status, tactic_ids, change)
    select 'active', coalesce(array_agg(t.id order by t.priority, t.promoted_at), '{}'),
           format('Baseline: the closer as it was before versions (%s active tactics)', count(*))
    from sandbox_tactics t where t.is_active
    returning * into active;
    return active;
end;
$$;

-- Applying the schema: an upgraded database gets its baseline, and the battles run before versions
-- existed belong to it.
select training_ensure_active_version();
update sandbox_battles set version_id = (select min(id) from training_versions) where version_id is null;

-- Records the base prompt the runner read from CLOSER_PROMPT_PATH. The baseline takes it as its
-- own (and so does a candidate made on it before any run); a different prompt makes a new active version at once (decision `direct`), and a candidate
-- under canary restarts on it (its pairs no longer compare like with like).
create or replace function training_record_base_prompt(p_base_prompt text)
returns void
language plpgsql as $$
declare
    sha text := encode(sha256(convert_to(p_base_prompt, 'UTF8')), 'hex');
    active training_versions%rowtype;
    candidate training_versions%rowtype;
    fresh training_versions%rowtype;
begin
    active := training_ensure_active_version();
    if active.base_prompt_sha256 = sha then
        return;
    end if;
    perform pg_advisory_xact_lock(hashtext('training_versions'));
    select * into active from training_versions where status = 'active' for update;
    if active.base_prompt_sha256 is null then
        -- Made before any run read the prompt (the baseline, a candidate on it): they take this one.
        update training_versions set base_prompt = p_base_prompt, base_prompt_sha256 = sha
        where base_prompt_sha256 is null and status in ('active', 'candidate');
        return;
    elsif active.base_prompt_sha256 = sha then
        return;
    end if;
    select * into candidate from training_versions where status = 'candidate' for update;
    if found then
        update training_versions set status = 'retired', decision = 'inconclusive', decided_at = now(),
            note = 'superseded: the base prompt changed, so the canary restarted as a new candidate'
        where id = candidate.id;
    end if;
    update training_versions set status = 'retired' where id = active.id;
    insert into training_versions (parent_id, status, base_prompt, base_prompt_sha256, tactic_ids, change, decision,
                                   decided_at)
    values (active.id, 'active', p_base_prompt, sha, active.tactic_ids,
            format('Base prompt changed (CLOSER_PROMPT_PATH): sha256 %s… → %s…',
                   left(active.base_prompt_sha256, 8), left(sha, 8)), 'direct', now())
    returning * into fresh;
    if candidate.id is not null then
        insert into training_versions (parent_id, status, base_prompt, base_prompt_sha256, tactic_ids, change,
                                       decision)
        values (fresh.id, 'candidate', p_base_prompt, sha, candidate.tactic_ids,
                format('%s (restarted on the new base prompt; was v%s)', candidate.change, candidate.id), 'pending');
    end if;
end;
$$;

-- What a run needs of a version to build its closer prompt.
create or replace function training_version_prompt(p_version_id integer)
returns jsonb
language sql stable as $$
    select jsonb_build_object('id', v.id, 'basePrompt', v.base_prompt,
        'tactics', coalesce((select jsonb_agg(t.tactic_text order by u.position)
                             from unnest(v.tactic_ids) with ordinality as u(id, position)
                             join sandbox_tactics t on t.id = u.id), '[]'))
    from training_versions v where v.id = p_version_id;
$$;

-- The battles of a run: p_personas (leased, in rotation order), the first p_pairs of them battling
-- both versions (which one starts first alternates), the rest the active version only.
create or replace function training_plan_battles(p_personas jsonb, p_pairs integer, p_active_id integer,
                                                 p_candidate_id integer)
returns jsonb
language sql stable as $$
    select coalesce(jsonb_agg(jsonb_build_object('persona', persona, 'versionId', version_id)
                              order by position, turn), '[]')
    from jsonb_array_elements(p_personas) with ordinality as p(persona, position),
         lateral (select p_active_id as version_id, case when position % 2 = 0 then 1 else 0 end as turn
                  union all
                  select p_candidate_id, case when position % 2 = 0 then 0 else 1 end
                  where position <= p_pairs and p_candidate_id is not null) v;
$$;

-- The tactics of the active version, in its order (before there is one: those a baseline would take).
create or replace function training_active_tactics()
returns table (id uuid, tactic_text text, priority integer)
language sql stable as $$
    select x.id, x.tactic_text, x.priority from (
        select t.id, t.tactic_text, t.priority, u.position as rank
        from training_versions v
        cross join lateral unnest(v.tactic_ids) with ordinality as u(id, position)
        join sandbox_tactics t on t.id = u.id
        where v.status = 'active'
        union all
        select t.id, t.tactic_text, t.priority, row_number() over (order by t.priority, t.promoted_at)
        from sandbox_tactics t
        where t.is_active and not exists (select 1 from training_versions where status = 'active')
    ) x order by x.rank;
$$;

-- One version as the dashboard and `python -m lib versions` show it. `battles` and `meanScore`
-- count its completed battles; `pairs`, `diff` and `ci95` are its canary against its parent as of
-- the last look (the 95% confidence sequence of lib/canary.py).
create or replace function training_version_json(p_version training_versions)
returns jsonb
language sql stable as $$
    select jsonb_build_object(
        'id', p_version.id, 'status', p_version.status, 'parentId', p_version.parent_id,
        'change', p_version.change, 'createdAt', p_version.created_at,
        'battles', s.battles, 'meanScore', s.mean_score,
        'ci95', case when p_version.ci_low is null then null
                     else jsonb_build_array(p_version.ci_low, p_version.ci_high) end,
        'decision', p_version.decision, 'pairs', p_version.pairs, 'diff', p_version.diff,
        'decidedAt', p_version.decided_at, 'note', p_version.note)
    from (select count(*) as battles, round(avg(referee_score), 2) as mean_score
          from sandbox_battles where version_id = p_version.id and status = 'completed') s;
$$;

-- Every version, newest first (the baseline made first if need be), and the canary in progress
-- (null without a candidate).
create or replace function training_version_list(p_max_pairs integer)
returns jsonb
language plpgsql as $$
begin
    perform training_ensure_active_version();
    return jsonb_build_object(
        'versions', coalesce((select jsonb_agg(training_version_json(v) order by v.id desc)
                              from training_versions v), '[]'),
        'canary', (select jsonb_build_object(
                       'candidateId', c.id, 'activeId', c.parent_id, 'pairs', c.pairs, 'maxPairs', p_max_pairs,
                       'diff', c.diff,
                       'ci95', case when c.ci_low is null then null else jsonb_build_array(c.ci_low, c.ci_high) end)
                   from training_versions c where c.status = 'candidate'));
end;
$$;

-- A new version from the active one with these tactics: a candidate for the canary, or with
-- p_direct (a person's explicit choice) the active version at once. One candidate at a time. The
-- caller holds the versions lock.
create or replace function training_new_version(p_tactic_ids uuid[], p_change text, p_direct boolean)
returns jsonb
language plpgsql as $$
declare
    active training_versions%rowtype;
    pending training_versions%rowtype;
    fresh training_versions%rowtype;
begin
    active := training_ensure_active_version();
    select * into pending from training_versions where status = 'candidate';
    if found then
        raise exception 'v% is still under canary (%); wait for its decision, or withdraw it with: python -m lib '
                        'rollback %', pending.id, pending.change, active.id using errcode = 'P0001';
    end if;
    if p_tactic_ids = active.tactic_ids then
        raise exception 'no change: the active version v% already has exactly these tactics', active.id
            using errcode = 'P0001';
    end if;
    if p_direct then
        update training_versions set status = 'retired' where id = active.id;
    end if;
    insert into training_versions (parent_id, status, base_prompt, base_prompt_sha256, tactic_ids, change, decision,
                                   decided_at)
    values (active.id, case when p_direct then 'active' else 'candidate' end, active.base_prompt,
            active.base_prompt_sha256, p_tactic_ids, p_change, case when p_direct then 'direct' else 'pending' end,
            case when p_direct then now() end)
    returning * into fresh;
    perform training_sync_tactics();
    return jsonb_build_object(
        'message', case when p_direct then format('v%s adopted directly (no canary)', fresh.id)
                        else format('candidate v%s created, canary started against v%s', fresh.id, active.id) end,
        'version', training_version_json(fresh));
end;
$$;

-- Promotes a breakthrough's tactic (the snippet unless edited): a candidate = the active version
-- plus the tactic, or with p_direct the new active version. Refused, with the reason, for an empty,
-- too long or repeated tactic; the breakthrough then stays pending.
create or replace function training_promote_breakthrough(p_battle_id uuid, p_tactic_text text default null,
                                                         p_direct boolean default false)
returns jsonb
language plpgsql as $$
declare
    battle sandbox_battles%rowtype;
    tactic sandbox_tactics%rowtype;
    active training_versions%rowtype;
    new_text text;
    refusal text;
    result jsonb;
begin
    perform pg_advisory_xact_lock(hashtext('training_versions'));
    select * into battle from sandbox_battles where id = p_battle_id for update;
    if not found or battle.breakthrough_status is null then
        raise exception 'battle % is not a breakthrough', p_battle_id using errcode = 'P0001';
    end if;
    if battle.breakthrough_status = 'promoted' then
        raise exception 'battle % is already promoted', p_battle_id using errcode = 'P0001';
    end if;
    new_text := btrim(coalesce(p_tactic_text, battle.tactical_snippet, ''));
    if p_tactic_text is null and new_text = '' then
        raise exception 'no tactic text: the scout has not extracted a snippet yet' using errcode = 'P0001';
    end if;
    active := training_ensure_active_version();
    refusal := training_tactic_refusal(new_text, active.tactic_ids);
    if refusal is not null then
        raise exception 'refused: %', refusal using errcode = 'P0001';
    end if;
    insert into sandbox_tactics (battle_id, tactic_text, is_active) values (p_battle_id, new_text, false)
    returning * into tactic;
    result := training_new_version(active.tactic_ids || tactic.id,
                                   format('Promoted %s (battle %s)', training_quote_tactic(new_text),
                                          left(p_battle_id::text, 8)), coalesce(p_direct, false));
    update sandbox_battles set breakthrough_status = 'promoted', updated_at = now() where id = p_battle_id;
    select * into tactic from sandbox_tactics where id = tactic.id;
    return result || jsonb_build_object('tactic', to_jsonb(tactic));
end;
$$;

-- A candidate without one of the active version's tactics (or, with p_direct, at once).
create or replace function training_deactivate_tactic(p_tactic_id uuid, p_direct boolean default false)
returns jsonb
language plpgsql as $$
declare
    active training_versions%rowtype;
    tactic sandbox_tactics%rowtype;
begin
    perform pg_advisory_xact_lock(hashtext('training_versions'));
    active := training_ensure_active_version();
    select * into tactic from sandbox_tactics where id = p_tactic_id;
    if not found or not (p_tactic_id = any(active.tactic_ids)) then
        raise exception 'tactic % is not in the active version v%', p_tactic_id, active.id using errcode = 'P0001';
    end if;
    return training_new_version(array_remove(active.tactic_ids, p_tactic_id),
                                format('Deactivated %s', training_quote_tactic(tactic.tactic_text)),
                                coalesce(p_direct, false));
end;
$$;

-- A candidate with one of the active version's tactics reworded, in the same place (or, with
-- p_direct, at once). The new text is checked like a promotion's, against the other tactics.
create or replace function training_edit_tactic(p_tactic_id uuid, p_tactic_text text, p_direct boolean default false)
returns jsonb
language plpgsql as $$
declare
    active training_versions%rowtype;
    old sandbox_tactics%rowtype;
    edited sandbox_tactics%rowtype;
    refusal text;
begin
    perform pg_advisory_xact_lock(hashtext('training_versions'));
    active := training_ensure_active_version();
    select * into old from sandbox_tactics where id = p_tactic_id;
    if not found or not (p_tactic_id = any(active.tactic_ids)) then
        raise exception 'tactic % is not in the active version v%', p_tactic_id, active.id using errcode = 'P0001';
    end if;
    if training_normalise_tactic(p_tactic_text) = training_normalise_tactic(old.tactic_text)
       and training_normalise_tactic(p_tactic_text) <> '' then
        raise exception 'no change: the new text is the same tactic' using errcode = 'P0001';
    end if;
    refusal := training_tactic_refusal(p_tactic_text, array_remove(active.tactic_ids, p_tactic_id));
    if refusal is not null then
        raise exception 'refused: %', refusal using errcode = 'P0001';
    end if;
    insert into sandbox_tactics (battle_id, tactic_text, is_active)
    values (old.battle_id, btrim(p_tactic_text), false) returning * into edited;
    return training_new_version(array_replace(active.tactic_ids, p_tactic_id, edited.id),
                                format('Edited %s to %s', training_quote_tactic(old.tactic_text),
                                       training_quote_tactic(edited.tactic_text)), coalesce(p_direct, false));
end;
$$;

-- A person's roll back, immediate (no canary): a new active version with the tactics of
-- p_version_id (the base prompt stays the current one: it follows CLOSER_PROMPT_PATH); the version
-- it replaces is rolled_back, a candidate under canary is withdrawn. Rolling back to the active
-- version itself withdraws the candidate.
create or replace function training_rollback_version(p_version_id integer)
returns jsonb
language plpgsql as $$
declare
    active training_versions%rowtype;
    target training_versions%rowtype;
    pending training_versions%rowtype;
    fresh training_versions%rowtype;
begin
    perform pg_advisory_xact_lock(hashtext('training_versions'));
    active := training_ensure_active_version();
    select * into target from training_versions where id = p_version_id;
    if not found then
        raise exception 'there is no version v%', p_version_id using errcode = 'P0001';
    end if;
    if target.status = 'candidate' then
        raise exception 'v% is the candidate under canary: it becomes active only by its canary (or withdraw it '
                        'with: python -m lib rollback %)', target.id, active.id using errcode = 'P0001';
    end if;
    select * into pending from training_versions where status = 'candidate';
    if target.id = active.id and pending.id is null then
        raise exception 'v% is already the active version', active.id using errcode = 'P0001';
    end if;
    if pending.id is not null then
        update training_versions set status = 'rolled_back', decision = 'rolled_back', decided_at = now(),
            note = format('withdrawn by a person (rollback to v%s) after %s pairs', target.id, pending.pairs)
        where id = pending.id;
    end if;
    if target.id = active.id then
        return jsonb_build_object('message', format('candidate v%s withdrawn; v%s stays active', pending.id, active.id),
                                  'version', training_version_json(active));
    end if;
    update training_versions set status = 'rolled_back', note = format('rolled back by a person to v%s', target.id)
    where id = active.id;
    insert into training_versions (parent_id, status, base_prompt, base_prompt_sha256, tactic_ids, change, decision,
                                   decided_at)
    values (active.id, 'active', active.base_prompt, active.base_prompt_sha256, target.tactic_ids,
            format('Rolled back to v%s', target.id), 'direct', now())
    returning * into fresh;
    perform training_sync_tactics();
    return jsonb_build_object('message', format('rolled back to v%s: v%s is active', target.id, fresh.id),
                              'version', training_version_json(fresh));
end;
$$;

-- The canary's paired differences so far, oldest first: for each run and persona that battled both
-- the candidate and its parent to completion, candidate score − parent score. Null without one.
create or replace function training_canary_pairs()
returns jsonb
language sql stable as $$
    select jsonb_build_object('candidateId', c.id, 'activeId', c.parent_id, 'diffs', coalesce((
        select jsonb_agg(cb.referee_score - ab.referee_score order by greatest(cb.ended_at, ab.ended_at), cb.id)
        from sandbox_battles cb
        join sandbox_battles ab on ab.run_id = cb.run_id and ab.persona_id = cb.persona_id
        where cb.version_id = c.id and cb.status = 'completed'
          and ab.version_id = c.parent_id and ab.status = 'completed'), '[]'))
    from training_versions c where c.status = 'candidate';
$$;

-- Records a look at the canary (lib/canary.py decides): the figures, and a decision other than
-- pending changes the versions: adopted (the candidate becomes active, its parent retired),
-- rolled_back, or inconclusive (the candidate retired, the active version stays). Returns
-- {"recorded": false} if it is no longer the candidate (another look or a person got there first).
create or replace function training_record_canary(p_candidate_id integer, p_decision text, p_pairs integer,
                                                  p_diff numeric, p_ci_low numeric, p_ci_high numeric,
                                                  p_max_pairs integer)
returns jsonb
language plpgsql as $$
declare
    candidate training_versions%rowtype;
    parent training_versions%rowtype;
begin
    if p_decision not in ('pending', 'adopted', 'rolled_back', 'inconclusive') then
        raise exception 'a canary decision is pending, adopted, rolled_back or inconclusive, not %', p_decision
            using errcode = 'P0001';
    end if;
    perform pg_advisory_xact_lock(hashtext('training_versions'));
    select * into candidate from training_versions where id = p_candidate_id for update;
    if not found or candidate.status <> 'candidate' then
        return jsonb_build_object('recorded', false, 'decided', false);
    end if;
    select * into parent from training_versions where id = candidate.parent_id;
    update training_versions set pairs = p_pairs, diff = p_diff, ci_low = p_ci_low, ci_high = p_ci_high
    where id = candidate.id;
    if p_decision = 'pending' then
        return jsonb_build_object('recorded', true, 'decided', false);
    end if;
    if p_decision = 'adopted' then
        update training_versions set status = 'retired' where id = parent.id and status = 'active';
    end if;
    update training_versions set
        status = case p_decision when 'adopted' then 'active' when 'rolled_back' then 'rolled_back' else 'retired' end,
        decision = p_decision, decided_at = now(),
        note = case p_decision
            when 'adopted' then format('adopted by the canary after %s pairs', p_pairs)
            when 'rolled_back' then format('rolled back by the canary after %s pairs', p_pairs)
            else format('no clear difference after %s pairs (CANARY_MAX_PAIRS %s); v%s stays active', p_pairs,
                        p_max_pairs, parent.id) end
    where id = candidate.id
    returning * into candidate;
    perform training_sync_tactics();
    return jsonb_build_object(
        'recorded', true, 'decided', true,
        'message', case p_decision
            when 'adopted' then format('v%s adopted: it beat v%s', candidate.id, parent.id)
            when 'rolled_back' then format('v%s rolled back: it did worse than v%s, which stays active',
                                            candidate.id, parent.id)
            else format('v%s inconclusive: no clear difference from v%s, which stays active', candidate.id,
                        parent.id) end,
        'version', training_version_json(candidate), 'parent', training_version_json(parent));
end;
$$;

-- The active version's tactics and base prompt (the dashboard builds the prompt preview from them).
create or replace function training_dashboard_tactics()
returns jsonb
language plpgsql as $$
declare
    active training_versions%rowtype := training_ensure_active_version();
begin
    return jsonb_build_object(
        'versionId', active.id, 'basePrompt', active.base_prompt,
        'tactics', coalesce((select jsonb_agg(jsonb_build_object('id', t.id, 'text', t.tactic_text,
                                                                 'battleId', t.battle_id, 'promotedAt', t.promoted_at)
                                              order by u.position)
                             from unnest(active.tactic_ids) with ordinality as u(id, position)
                             join sandbox_tactics t on t.id = u.id), '[]'));
end;
$$;

-- ---------------------------------------------------------------------------------------------
-- Dashboard v2: the health strip, the run chart, and the indexes their polls read
-- ---------------------------------------------------------------------------------------------

-- The feed walks (updated_at, id) in both directions. The first release's index had the two
-- columns in opposite orders, which neither feed query could follow.
drop index if exists sandbox_battles_feed_idx;
create index if not exists sandbox_battles_updated_idx on sandbox_battles (updated_at, id);
-- Today's and the last 7 days' spend, scores and outcomes, read on every health poll: the columns
-- it sums ride in the index, so the poll never visits the table (or its transcripts).
create index if not exists sandbox_battles_started_idx on sandbox_battles (started_at)
    include (status, cost_usd, referee_score);

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
        'killSwitchTriggered', p_run.kill_switch_triggered, 'timedOut', p_run.timed_out, 'error', p_run.error)
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

-- ---------------------------------------------------------------------------------------------
-- The daily and monthly budget (DAILY_BUDGET_USD, MONTHLY_BUDGET_USD), held across parallel runs
--
-- A run's spend counts against the UTC day and month it started in. When it starts it takes a
-- block: at most its cost cap, at most what the day and the month have left, and its in-process
-- cost cap becomes that block. While it runs the whole block counts as spent; once it is
-- finished (or closed as an orphan) only its recorded spend does. Blocks are taken under
-- training_start_run's advisory lock, so the recorded spend of a day never passes its budget,
-- however many runs start at once and whichever of them die.
-- ---------------------------------------------------------------------------------------------

alter table training_runs add column if not exists budget_block numeric(20, 12) check (budget_block >= 0);
-- The UTC day of the last budget refusal that was alerted (Slack hears of it once a day).
alter table training_control add column if not exists budget_alerted_on date;

-- One period's figures: `spent` (recorded by the battles of the runs started in it), `reserved`
-- (the unspent part of the blocks of runs still running) and `limit` (null: no budget).
create or replace function training_budget_period(p_from timestamptz, p_to timestamptz, p_limit numeric)
returns jsonb
language sql stable as $$
    select jsonb_build_object(
        'spent', coalesce(sum(case when r.status = 'running' then coalesce(b.cost, 0) else r.total_cost end), 0),
        'reserved', coalesce(sum(case when r.status = 'running'
                                      then greatest(coalesce(r.budget_block, r.cost_cap) - coalesce(b.cost, 0), 0)
                                      else 0 end), 0),
        'limit', p_limit, 'from', p_from, 'resetsAt', p_to)
    from training_runs r
    left join lateral (select sum(cost_usd) as cost from sandbox_battles
                       where run_id = r.id and r.status = 'running') b on true
    where r.started_at >= p_from and r.started_at < p_to;
$$;

-- `{"day": {spent, reserved, limit, from, resetsAt}, "month": {…}}` for the current UTC day and month.
create or replace function training_budget_state(p_daily_budget numeric default null,
                                                 p_monthly_budget numeric default null)
returns jsonb
language sql stable as $$
    with bounds as (
        select date_trunc('day', now() at time zone 'UTC') at time zone 'UTC' as day_from,
               date_trunc('month', now() at time zone 'UTC') at time zone 'UTC' as month_from
    )
    select jsonb_build_object(
        'day', training_budget_period(day_from, day_from + interval '1 day', p_daily_budget),
        'month', training_budget_period(month_from, month_from + interval '1 month', p_monthly_budget))
    from bounds;
$$;

-- What a battle of this kind has cost lately: the mean of the last 20 that ended having spent
-- something (0 before any). A run is granted a block only if it holds at least that much.
create or replace function training_expected_battle_cost(p_simulated boolean)
returns numeric
language sql stable as $$
    select coalesce(avg(b.cost_usd), 0)
    from (select b.cost_usd from sandbox_battles b join training_runs r on r.id = b.run_id
          where b.status <> 'running' and b.cost_usd > 0 and r.simulated = p_simulated
          order by b.ended_at desc limit 20) b;
$$;

-- The block a starting run may take (called by training_start_run, under its lock). Returns
-- {"status": "granted", "block", "limitedBy": "cap" | "day" | "month", "exhausted": <the message
-- for when the block is spent, or null>, "day", "month"}, or, when the day or the month has less
-- left than one battle costs, the refusal {"status": "budget", "error", "reason", "period",
-- "retryAfterS", "alert" (true for the first budget refusal of the UTC day), "day", "month"}.
create or replace function training_budget_grant(p_cost_cap numeric, p_daily_budget numeric,
                                                 p_monthly_budget numeric, p_simulated boolean)
returns jsonb
language plpgsql as $$
declare
    state jsonb := training_budget_state(p_daily_budget, p_monthly_budget);
    period text;
    left_ numeric;
    block numeric := p_cost_cap;
    limited_by text := 'cap';
    names constant jsonb := '{"day": ["Daily", "resets at 00:00 UTC"],
                              "month": ["Monthly", "resets on the 1st at 00:00 UTC"]}';
    figures jsonb;
    wording text;
    alert boolean;
begin
    foreach period in array array['day', 'month'] loop
        figures := state -> period;
        continue when figures ->> 'limit' is null;
        left_ := (figures ->> 'limit')::numeric - (figures ->> 'spent')::numeric - (figures ->> 'reserved')::numeric;
        if left_ < block then
            block := greatest(left_, 0);
            limited_by := period;
        end if;
    end loop;
    if limited_by = 'cap' then
        return state || jsonb_build_object('status', 'granted', 'block', block, 'limitedBy', limited_by,
                                           'exhausted', null);
    end if;
    figures := state -> limited_by;
    wording := format('$%s of $%s; %s', to_char((figures ->> 'limit')::numeric - block, 'FM999999990.00'),
                      to_char((figures ->> 'limit')::numeric, 'FM999999990.00'), names -> limited_by ->> 1);
    if block > 0 and block >= training_expected_battle_cost(p_simulated) then
        return state || jsonb_build_object(
            'status', 'granted', 'block', block, 'limitedBy', limited_by,
            'exhausted', format('%s budget reached: $%s of $%s; %s', names -> limited_by ->> 0,
                                to_char((figures ->> 'limit')::numeric, 'FM999999990.00'),
                                to_char((figures ->> 'limit')::numeric, 'FM999999990.00'),
                                names -> limited_by ->> 1));
    end if;
    update training_control set budget_alerted_on = (now() at time zone 'UTC')::date
    where id and budget_alerted_on is distinct from (now() at time zone 'UTC')::date;
    alert := found;
    return state || jsonb_build_object(
        'status', 'budget', 'error', format('%s budget reached', names -> limited_by ->> 0), 'reason', wording,
        'period', limited_by, 'alert', alert,
        'retryAfterS', ceil(extract(epoch from (figures ->> 'resetsAt')::timestamptz - now()))::integer);
end;
$$;

create or replace function training_status(p_daily_budget numeric default null,
                                           p_monthly_budget numeric default null)
returns jsonb
language sql stable as $$
    select jsonb_build_object(
        'paused', c.paused,
        'reason', c.reason,
        'pausedBy', c.paused_by,
        'updatedAt', c.updated_at,
        'personas', (select jsonb_build_object('active', count(*) filter (where is_active), 'total', count(*))
                     from sandbox_personas),
        'runsInProgress', (select count(*) from training_runs where status = 'running'),
        'lastRun', (select to_jsonb(r) - 'errors' from training_runs r order by started_at desc limit 1),
        'battles', (select coalesce(jsonb_object_agg(status, n), '{}')
                    from (select status, count(*) as n from sandbox_battles group by status) s),
        'pendingBreakthroughs', (select count(*) from sandbox_battles
                                 where breakthrough_status = 'pending_review'),
        'totalCost', (select coalesce(sum(total_cost), 0) from training_runs),
        'budget', training_budget_state(p_daily_budget, p_monthly_budget)
    )
    from training_control c where c.id;
$$;

-- ---------------------------------------------------------------------------------------------
-- Grants. Supabase's default privileges give anon and authenticated EXECUTE on every new function
-- and access to every new table; only the service role may use ours. Granted by prefix, so a new
-- function is covered without editing a list. Elsewhere these roles do not exist.
-- ---------------------------------------------------------------------------------------------

do $$
declare
    fn regprocedure;
    tbl regclass;
    outsider text;
    has_service_role boolean := exists (select 1 from pg_roles where rolname = 'service_role');
begin
    for fn in
        select p.oid::regprocedure from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = current_schema() and p.proname like 'training\_%'
    loop
        execute format('revoke all on function %s from public', fn);
        foreach outsider in array array['anon', 'authenticated'] loop
            if exists (select 1 from pg_roles where rolname = outsider) then
                execute format('revoke all on function %s from %I', fn, outsider);
            end if;
        end loop;
        if has_service_role then
            execute format('grant execute on function %s to service_role', fn);
        end if;
    end loop;
    for tbl in
        select c.oid::regclass from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = current_schema() and c.relkind = 'r'
          and (c.relname like 'training\_%' or c.relname in ('sandbox_personas', 'sandbox_battles', 'sandbox_tactics'))
    loop
        foreach outsider in array array['anon', 'authenticated'] loop
            if exists (select 1 from pg_roles where rolname = outsider) then
                execute format('revoke all on %s from %I', tbl, outsider);
            end if;
        end loop;
        if has_service_role then
            execute format('grant select, insert, update, delete on %s to service_role', tbl);
        end if;
    end loop;
end;
$$;

notify pgrst, 'reload schema';
