-- SQL functions: personas, the pause, runs and battles, and the errors appended after a run.
-- Re-applied by every `python -m lib migrate`, after the pending migrations (lib/sql/migrations/README.md):
-- `create or replace` only; a function whose arguments change gets `drop function if exists
-- name(old argument types)` here, above it.

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
        'runId', p_run.id, 'batchId', p_run.id, 'status', p_run.status, 'trigger', p_run.trigger,
        'simulated', p_run.simulated,
        'requestedBatchSize', p_run.requested_batch_size, 'batchSize', p_run.batch_size,
        'battlesStarted', p_run.battles_started, 'battlesCompleted', p_run.battles_completed,
        'battlesFailed', p_run.battles_failed, 'battlesTimedOut', p_run.battles_timed_out,
        'battlesKilled', p_run.battles_killed, 'totalCost', p_run.total_cost, 'costCap', p_run.cost_cap,
        'billedUpTo', greatest(p_run.total_cost, coalesce(p_run.committed_cost, 0)),
        'averageScore', p_run.average_score, 'breakthroughs', p_run.breakthroughs,
        'costCapReached', p_run.kill_switch_triggered, 'killSwitchTriggered', p_run.kill_switch_triggered,
        'timedOut', p_run.timed_out,
        'durationMs', p_run.duration_ms, 'scoutNotified', p_run.scout_notified, 'errors', p_run.errors,
        'startedAt', p_run.started_at, 'finishedAt', p_run.finished_at, 'error', p_run.error);
$$;

-- Closes runs whose process died: still `running` well past their deadline. Their battles end
-- `failed` with whatever transcript they had, and their personas are released. The run counts
-- what it had committed (written before each call was sent), or its whole block when nothing finer
-- is known (a run started before committed_cost existed). Budget holders other than runs
-- (training_spends) past their deadline are closed the same way.
-- p_gone: a JSON array of the ids of runs whose process is known to be gone (`python -m lib recover` checks the processes of
-- its own host), closed now whatever their deadline.
drop function if exists training_close_orphaned_runs(integer);
create or replace function training_close_orphaned_runs(p_grace_ms integer default 5000, p_gone jsonb default '[]')
returns integer
language plpgsql as $$
declare
    orphan training_runs%rowtype;
    closed integer := 0;
    closer text;
begin
    for orphan in
        select * from training_runs
        where status = 'running'
          and (deadline_at + make_interval(secs => p_grace_ms / 1000.0) < now() or p_gone ? id::text)
        for update skip locked
    loop
        closer := case when p_gone ? orphan.id::text then 'python -m lib recover' else 'a later run' end;
        update sandbox_battles set status = 'failed', ended_at = now(), updated_at = now(),
            error = format('the run''s process died before this battle finished; closed by %s', closer)
        where run_id = orphan.id and status = 'running';
        perform training_tally_run(orphan.id);
        update training_runs set status = 'failed', finished_at = now(),
            committed_cost = coalesce(committed_cost, budget_block, cost_cap),
            error = format('the process died before the run finished; closed by %s', closer),
            duration_ms = (extract(epoch from now() - started_at) * 1000)::integer
        where id = orphan.id;
        update sandbox_personas set lease_run_id = null where lease_run_id = orphan.id;
        closed := closed + 1;
    end loop;
    update training_spends set finished_at = now()
    where finished_at is null and deadline_at + make_interval(secs => p_grace_ms / 1000.0) < now();
    return closed;
end;
$$;

-- Records the process running a run ("host pid start-time"), so a refusal can tell it is gone.
create or replace function training_set_run_process(p_run_id uuid, p_process text)
returns void
language sql as $$
    update training_runs set process = p_process where id = p_run_id;
$$;

-- The runs in progress with their process, for `python -m lib recover`.
create or replace function training_running_runs()
returns table (id uuid, process text, deadline_at timestamptz)
language sql stable as $$
    select id, process, deadline_at from training_runs where status = 'running' order by started_at;
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
    busy training_runs%rowtype;
begin
    select * into control from training_control where id;
    if control.paused then
        return jsonb_build_object('status', 'paused', 'reason', control.reason, 'pausedBy', control.paused_by,
                                  'since', control.updated_at);
    end if;
    select * into busy from training_runs where status = 'running' order by started_at
        offset greatest(p_max_concurrent_runs - 1, 0) limit 1;
    if busy.id is not null then
        -- closesAt: when a later run closes it if its process is gone (training_close_orphaned_runs).
        return jsonb_build_object('status', 'busy', 'runId', busy.id, 'process', busy.process,
                                  'closesAt', busy.deadline_at + interval '5 seconds');
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
-- p_canary_share) personas, the least paired first (training_lease_pair_personas), battle both the
-- active version and the candidate (the canary's pairs); the rest of the batch follows the rotation.
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
                               budget_block, committed_cost)
    values (p_trigger, p_requested_batch_size, p_batch_size, p_cost_cap, p_simulated,
            now() + make_interval(secs => p_deadline_ms / 1000.0), (grant_ ->> 'block')::numeric, 0)
    returning * into run;

    if p_base_prompt is not null then
        perform training_record_base_prompt(p_base_prompt);
    end if;
    active := training_ensure_active_version();
    select * into candidate from training_versions where status = 'candidate';
    personas := '[]';
    if candidate.id is not null and floor(p_batch_size * p_canary_share) > 0 then
        personas := coalesce(training_lease_pair_personas(run.id, floor(p_batch_size * p_canary_share)::integer,
                                                          candidate.id), '[]');
        pairs := jsonb_array_length(personas);
    end if;
    if p_batch_size > 2 * pairs then
        personas := personas || coalesce(training_lease_personas(run.id, p_batch_size - 2 * pairs), '[]');
    end if;
    if jsonb_array_length(personas) = 0 then
        delete from training_runs where id = run.id;
        return jsonb_build_object('status', 'no_free_personas');
    end if;
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

-- p_pair_order added (a canary pair's order): the three-argument version goes.
drop function if exists training_start_battle(uuid, uuid, integer);
-- Writes the battle row as the battle starts, with the closer version it runs (the active one when
-- not given); the persona moves to the back of the rotation.
create or replace function training_start_battle(p_run_id uuid, p_persona_id uuid, p_version_id integer default null,
                                                  p_pair_order smallint default null)
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
    insert into sandbox_battles (run_id, persona_id, version_id, pair_order)
    values (p_run_id, p_persona_id, chosen, p_pair_order)
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
-- After the batch
-- ---------------------------------------------------------------------------------------------

-- Whether the JSON array p_list ends with the elements of p_tail, in order.
create or replace function training_ends_with(p_list jsonb, p_tail jsonb)
returns boolean
language sql immutable as $$
    select jsonb_array_length(p_list) >= jsonb_array_length(p_tail)
       and p_tail = coalesce((select jsonb_agg(item order by position) from jsonb_array_elements(p_list)
                              with ordinality as element(item, position)
                              where position > jsonb_array_length(p_list) - jsonb_array_length(p_tail)), '[]');
$$;

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
    -- The follow-ups append once per run, so errors that already end the list are this call's
    -- own, committed by an attempt whose answer was lost: a retry appends nothing.
    update training_runs set errors = case when jsonb_array_length(p_errors) > 0
                                            and training_ends_with(errors, p_errors)
                                           then errors else errors || p_errors end
    where id = p_run_id
    returning errors into appended;
    if not found then
        raise exception 'run % does not exist', p_run_id using errcode = 'P0001';
    end if;
    return appended;
end;
$$;
