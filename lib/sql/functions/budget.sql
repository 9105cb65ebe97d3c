-- SQL functions: the daily and monthly budget, and training_status.
-- Re-applied by every `python -m lib migrate`, after the pending migrations (lib/sql/migrations/README.md):
-- `create or replace` only; a function whose arguments change gets `drop function if exists
-- name(old argument types)` here, above it.

-- ---------------------------------------------------------------------------------------------
-- The daily and monthly budget (DAILY_BUDGET_USD, MONTHLY_BUDGET_USD), held across parallel runs
--
-- Every holder of model calls takes a block of it: a run (training_runs.budget_block), and a scout
-- scan, a persona generation or a referee check (training_spends). A holder's spend counts against
-- the UTC day and month it started in. Its block is at most its own cap, at most what the day and
-- the month have left, and its in-process cost cap becomes that block. While it runs the whole
-- block counts; once it is finished (or closed as an orphan) what it may have been billed does:
-- greatest(recorded, committed), where committed is the worst case of every attempt sent and not
-- answered plus the real cost of those answered, written before each attempt is sent. Blocks are
-- taken under training_start_run's advisory lock, so what the provider may bill for a day's holders
-- never passes the day's budget, however many start at once and whichever of them die.
-- ---------------------------------------------------------------------------------------------

-- Raises what a holder (a run or a spend, by id) may have been billed; `p_final` sets the exact
-- figure, once, as the holder finishes. Only a holder still open changes.
create or replace function training_commit_cost(p_holder_id uuid, p_committed numeric, p_final boolean default false)
returns void
language sql as $$
    update training_runs set committed_cost = case when p_final then p_committed
                                                   else greatest(coalesce(committed_cost, 0), p_committed) end
    where id = p_holder_id and status = 'running';
    update training_spends set committed = case when p_final then p_committed else greatest(committed, p_committed) end
    where id = p_holder_id and finished_at is null;
$$;

-- Takes a block for a holder other than a run (`p_purpose`: scout, personas, referee_check, proposer), under
-- the runs' lock, as training_start_run does. Returns the grant with the spend's `id`, or the
-- refusal (see training_budget_grant); with `p_refuse_when_paused` (the training loop's own
-- calls), status "paused" and its `reason` while training is paused, read under the same lock.
drop function if exists training_take_budget(text, numeric, numeric, numeric, integer, boolean);
create or replace function training_take_budget(p_purpose text, p_cap numeric, p_daily_budget numeric,
                                                p_monthly_budget numeric, p_deadline_ms integer,
                                                p_simulated boolean, p_refuse_when_paused boolean default false)
returns jsonb
language plpgsql as $$
declare
    grant_ jsonb;
    spend_id uuid;
    control training_control%rowtype;
begin
    perform pg_advisory_xact_lock(hashtext('training_run_start'));
    perform training_close_orphaned_runs();
    select * into control from training_control;
    -- Before the grant, whose refusal would use up the day's budget alert (as training_start_run).
    if p_refuse_when_paused and control.paused then
        return training_budget_state(p_daily_budget, p_monthly_budget)
               || jsonb_build_object('status', 'paused', 'reason', control.reason);
    end if;
    grant_ := training_budget_grant(p_cap, p_daily_budget, p_monthly_budget, p_simulated);
    if grant_ ->> 'status' <> 'granted' then
        return grant_;
    end if;
    insert into training_spends (purpose, block, deadline_at)
    values (p_purpose, (grant_ ->> 'block')::numeric, now() + make_interval(secs => p_deadline_ms / 1000.0))
    returning id into spend_id;
    return grant_ || jsonb_build_object('id', spend_id);
end;
$$;

-- Ends a spend: what it may have been billed (in-flight attempts at their worst case) and recorded.
create or replace function training_close_spend(p_spend_id uuid, p_committed numeric, p_recorded numeric)
returns void
language sql as $$
    update training_spends set committed = p_committed, recorded = p_recorded, finished_at = now()
    where id = p_spend_id and finished_at is null;
$$;

-- One period's figures: `spent` (recorded: what the answers reported), `billedUpTo` (what the
-- provider may have billed: greatest(recorded, committed) per holder), `reserved` (the rest of the
-- blocks of holders still open) and `limit` (null: no budget).
create or replace function training_budget_period(p_from timestamptz, p_to timestamptz, p_limit numeric)
returns jsonb
language sql stable as $$
    with holders as (
        select case when r.status = 'running' then coalesce(b.cost, 0) else r.total_cost end as recorded,
               greatest(case when r.status = 'running' then coalesce(b.cost, 0) else r.total_cost end,
                        coalesce(r.committed_cost, 0)) as billed,
               case when r.status = 'running' then coalesce(r.budget_block, r.cost_cap) end as block
        from training_runs r
        left join lateral (select sum(cost_usd) as cost from sandbox_battles
                           where run_id = r.id and r.status = 'running') b on true
        where r.started_at >= p_from and r.started_at < p_to
        union all
        select s.recorded, greatest(s.recorded, s.committed), case when s.finished_at is null then s.block end
        from training_spends s
        where s.started_at >= p_from and s.started_at < p_to
    )
    select jsonb_build_object(
        'spent', coalesce(sum(recorded), 0), 'billedUpTo', coalesce(sum(billed), 0),
        'reserved', coalesce(sum(greatest(block - billed, 0)), 0),
        'limit', p_limit, 'from', p_from, 'resetsAt', p_to)
    from holders;
$$;

-- `{"day": {spent, billedUpTo, reserved, limit, from, resetsAt}, "month": {…}}` for the current UTC day and month.
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
        left_ := (figures ->> 'limit')::numeric - (figures ->> 'billedUpTo')::numeric
                 - (figures ->> 'reserved')::numeric;
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
        -- The run in the HTTP response's `batch` shape (camelCase), without its errors.
        'lastRun', (select training_run_summary(r) - 'errors' from training_runs r order by started_at desc limit 1),
        'battles', (select coalesce(jsonb_object_agg(status, n), '{}')
                    from (select status, count(*) as n from sandbox_battles group by status) s),
        'pendingBreakthroughs', (select count(*) from sandbox_battles
                                 where breakthrough_status = 'pending_review'),
        'totalCost', (select coalesce(sum(total_cost), 0) from training_runs),
        'budget', training_budget_state(p_daily_budget, p_monthly_budget)
    )
    from training_control c where c.id;
$$;

-- Today's budget alert did not reach Slack: the mark training_budget_grant set goes, so the next
-- refusal today alerts again (a mark from another day is left alone).
create or replace function training_forget_budget_alert()
returns void
language sql as $$
    update training_control set budget_alerted_on = null
    where id and budget_alerted_on = (now() at time zone 'UTC')::date;
$$;
