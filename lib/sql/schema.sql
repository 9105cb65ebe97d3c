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
    check ((status = 'running') = (finished_at is null)),
    check (total_cost <= cost_cap)
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
-- Grants: Supabase calls these as service_role; elsewhere the role does not exist.
-- ---------------------------------------------------------------------------------------------

do $$
declare
    fn regprocedure;
begin
    for fn in
        select p.oid::regprocedure from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = current_schema()
          and p.proname in ('upsert_personas', 'set_training_paused', 'training_status')
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
