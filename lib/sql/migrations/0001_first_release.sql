-- The first release's tables (commit f6740ef; its functions are not migrations).
-- A database of that release holds exactly these: migrate records this step as applied.

create table training_control (
    id boolean primary key default true check (id),
    paused boolean not null default false,
    reason text,
    updated_at timestamptz not null default now()
);
insert into training_control (id) values (true) on conflict (id) do nothing;

create table training_runs (
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
create index training_runs_running_idx on training_runs (started_at) where status = 'running';
create index training_runs_started_idx on training_runs (started_at desc);

create table sandbox_personas (
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
create index sandbox_personas_rotation_idx
    on sandbox_personas (last_battled_at asc nulls first, name) where is_active;

create table sandbox_battles (
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
    scout_lease_until timestamptz,
    check ((status = 'running') = (ended_at is null)),
    check (status = 'completed' or referee_score is null)
);
create index sandbox_battles_run_idx on sandbox_battles (run_id);
create index sandbox_battles_feed_idx on sandbox_battles (updated_at desc, id);
create index sandbox_battles_persona_idx on sandbox_battles (persona_id, started_at desc);
create index sandbox_battles_breakthrough_idx
    on sandbox_battles (breakthrough_status, breakthrough_detected_at desc) where breakthrough_status is not null;

create table sandbox_tactics (
    id uuid primary key default gen_random_uuid(),
    battle_id uuid references sandbox_battles (id) on delete set null,
    tactic_text text not null check (length(btrim(tactic_text)) > 0),
    priority integer not null default 100,
    is_active boolean not null default true,
    promoted_at timestamptz not null default now()
);
create index sandbox_tactics_active_idx on sandbox_tactics (priority, promoted_at) where is_active;

-- Supabase exposes the public schema to the anon key: row level security with no policies keeps
-- these tables to the service role (which bypasses RLS) and to the owner.
alter table training_control enable row level security;
alter table training_runs enable row level security;
alter table sandbox_personas enable row level security;
alter table sandbox_battles enable row level security;
alter table sandbox_tactics enable row level security;
