-- Autonomous training: the tables, indexes and constraints of a fresh install.
--
-- The single source of data logic is the SQL functions in lib/sql/functions/ (by subject): both
-- transports (PostgREST `POST /rest/v1/rpc/<fn>` and psycopg `select fn(arg => …)`) call them, so
-- each call is one transaction with one set of rules. `python -m lib migrate` applies this file to
-- an empty database, records every migration as applied, then applies the functions.
--
-- ---------------------------------------------------------------------------------------------
-- Rules for changing the schema (lib/sql/migrations/README.md says the same)
--
-- * This file is the fresh-install shape only: every column inside its `create table`, no upgrade
--   code, no history. A database holding data changes only through lib/sql/migrations/.
-- * A table or column change is two edits in one commit: a new lib/sql/migrations/NNNN_name.sql
--   (forward only; never edit a released one) and the same shape here, column order included
--   (a new column goes last in its `create table`).
-- * A function change is an edit of its file in lib/sql/functions/ (`drop function if exists` of
--   the old signature there when its arguments change). Every function is named training_… :
--   Supabase's public schema is shared with the host app.
-- * tests/migrations/test_migrations.py proves a database built by the migrations equals one built by this
--   file (tables, columns, constraints, indexes, functions, grants, comments), and
--   tests/migrations/test_schema_upgrade.py upgrades each release's frozen schema (tests/migrations/upgrade/) holding
--   rows.
-- ---------------------------------------------------------------------------------------------

create table training_control (
    id boolean primary key default true check (id),
    paused boolean not null default false,
    reason text,
    updated_at timestamptz not null default now(),
    -- Who paused: a person (CLI, dashboard) or a batch that reached its cost cap.
    paused_by text check (paused_by in ('person', 'cost_cap')),
    -- The UTC day of the last budget refusal that was alerted (Slack hears of it once a day).
    budget_alerted_on date,
    -- When the proposer last took its turn (every PROPOSER_EVERY completed battles).
    proposer_turn_at timestamptz
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
    total_cost numeric(20, 12) not null default 0 check (total_cost >= 0),
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
    -- The run's block of the day's and month's budget (lib/sql/functions/budget.sql).
    budget_block numeric(20, 12) check (budget_block >= 0),
    -- "host pid start-time" of the process running the run (set by the runner as the run starts).
    process text,
    -- What the run may have been billed: a worst-case pre-commit while it runs (written before each
    -- attempt is sent), the exact figure once it finished. Null: a run from before this column.
    committed_cost numeric(20, 12) check (committed_cost >= 0),
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

-- Closer versions: lib/sql/functions/versions.sql says what they are.
create table training_versions (
    id integer generated always as identity primary key,
    parent_id integer references training_versions (id),
    status text not null check (status in ('active', 'candidate', 'retired', 'rolled_back', 'withdrawn')),
    base_prompt text,
    base_prompt_sha256 text check (base_prompt_sha256 ~ '^[0-9a-f]{64}$'),
    tactic_ids uuid[] not null default '{}',
    change text not null check (length(btrim(change)) > 0),
    decision text check (decision in ('pending', 'adopted', 'rolled_back', 'inconclusive', 'direct', 'withdrawn')),
    pairs integer not null default 0 check (pairs >= 0),
    diff numeric(6, 2),
    ci_low numeric(6, 2),
    ci_high numeric(6, 2),
    note text,
    created_at timestamptz not null default now(),
    decided_at timestamptz,
    -- The canary look that recorded the decision: a retry of that call gets the same answer.
    decided_by_look uuid,
    -- What its canary measures (CANARY_VERDICT at its first look), for the rest of the canary.
    canary_unit text check (canary_unit in ('score', 'head_to_head')),
    check ((status = 'candidate') = (decision is not distinct from 'pending')),
    check ((base_prompt is null) = (base_prompt_sha256 is null)),
    check ((ci_low is null) = (ci_high is null) and ci_low <= ci_high)
);
create unique index training_versions_one_active on training_versions ((true)) where status = 'active';
create unique index training_versions_one_candidate on training_versions ((true))
    where status = 'candidate';

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
    cost_usd numeric(20, 12) not null default 0 check (cost_usd >= 0),
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
    -- The scout's state, one column per task: triaged once; a candidate's confirmation; an audit
    -- re-score; Slack delivery; LLM failures.
    scout_seen_at timestamptz,
    confirm_status text check (confirm_status in ('pending', 'confirmed', 'unconfirmed', 'legacy')),
    confirm_score numeric(5, 2) check (confirm_score between 0 and 100),
    confirm_reason text,
    audit_status text check (audit_status in ('pending', 'done')),
    slack_status text check (slack_status in ('pending', 'sent', 'failed')),
    slack_error text,
    scout_attempts integer not null default 0 check (scout_attempts >= 0),
    scout_error text,
    version_id integer references training_versions (id),
    -- A canary pair's battles: their planned order (1, 2), by a fair coin (training_plan_battles;
    -- with free slots both may start together); null for a battle outside a pair.
    pair_order smallint check (pair_order in (1, 2)),
    -- On the candidate's battle of a complete pair, the head-to-head verdict (CANARY_VERDICT=
    -- head_to_head): +1 the candidate's call judged better, −1 worse, 0 a tie; null until judged.
    pair_verdict smallint check (pair_verdict between -1 and 1),
    -- With the verdict: whether the judge read the candidate's call first (a fair coin per pair).
    pair_verdict_candidate_first boolean constraint sandbox_battles_verdict_order_needs_verdict
        check (pair_verdict_candidate_first is null or pair_verdict is not null),
    -- How many times the head-to-head judge failed on the pair: after 3 it is left out of the canary.
    pair_verdict_failures smallint check (pair_verdict_failures > 0),
    -- Until when a canary look has claimed the pair for its head-to-head call (one run judges it).
    pair_verdict_claimed_until timestamptz,
    check ((status = 'running') = (ended_at is null)),
    check (status = 'completed' or referee_score is null),
    -- A completed battle has a score: the canary and every average read it.
    constraint sandbox_battles_completed_has_score check (status <> 'completed' or referee_score is not null)
);

create index sandbox_battles_run_idx on sandbox_battles (run_id);
create index sandbox_battles_persona_idx on sandbox_battles (persona_id, started_at desc);
create index sandbox_battles_breakthrough_idx
    on sandbox_battles (breakthrough_status, breakthrough_detected_at desc) where breakthrough_status is not null;

-- The feed walks (updated_at, id) in both directions.
create index sandbox_battles_updated_idx on sandbox_battles (updated_at, id);
-- Today's and the last 7 days' spend, scores and outcomes, read on every health poll: the columns
-- it sums ride in the index, so the poll never visits the table (or its transcripts).
create index sandbox_battles_started_idx on sandbox_battles (started_at)
    include (status, cost_usd, referee_score);

create index sandbox_battles_untriaged_idx on sandbox_battles (ended_at)
    where status = 'completed' and scout_seen_at is null;

create table sandbox_tactics (
    id uuid primary key default gen_random_uuid(),
    battle_id uuid references sandbox_battles (id) on delete set null,
    tactic_text text not null check (length(btrim(tactic_text)) > 0),
    priority integer not null default 100,
    is_active boolean not null default true,
    promoted_at timestamptz not null default now(),
    -- Every active tactic goes into every closer prompt: at most 1000 characters (lib/dashboard.py
    -- MAX_TACTIC_CHARS refuses longer with a 400 first).
    constraint sandbox_tactics_active_text_at_most_1000_chars
        check (not is_active or char_length(tactic_text) <= 1000)
);
create index sandbox_tactics_active_idx on sandbox_tactics (priority, promoted_at) where is_active;

-- One row per re-score: the confirmation of a candidate, or an audit of the referee's consistency.
create table training_rescores (
    battle_id uuid not null references sandbox_battles (id) on delete cascade,
    purpose text not null check (purpose in ('confirm', 'audit')),
    model text not null check (length(btrim(model)) > 0),
    score numeric(5, 2) not null check (score between 0 and 100),
    scores jsonb not null check (jsonb_typeof(scores) = 'object'),
    cost_usd numeric(20, 12) not null default 0 check (cost_usd >= 0),
    created_at timestamptz not null default now(),
    primary key (battle_id, purpose)
);
create index training_rescores_recent_idx on training_rescores (purpose, created_at desc);

-- The results of python -m lib referee-check; the dashboard shows the latest.
create table training_referee_calibrations (
    id uuid primary key default gen_random_uuid(),
    model text not null check (length(btrim(model)) > 0),
    simulated boolean not null default false,
    spearman numeric(5, 4) check (spearman between -1 and 1),
    in_band numeric(5, 4) check (in_band between 0 and 1),
    items integer not null check (items >= 0),
    cost_usd numeric(20, 12) not null default 0 check (cost_usd >= 0),
    result jsonb not null default '{}' check (jsonb_typeof(result) = 'object'),
    created_at timestamptz not null default now()
);
create index training_referee_calibrations_recent_idx
    on training_referee_calibrations (created_at desc);

-- Drift alerts posted to Slack: at most one a day.
create table training_referee_drift_alerts (
    id uuid primary key default gen_random_uuid(),
    mean_abs_diff numeric(6, 2) not null,
    pairs integer not null check (pairs > 0),
    sent_at timestamptz not null default now()
);

-- Holders of model calls other than runs: each scout scan, persona generation and referee check
-- takes a block of the daily and monthly budget (lib/sql/functions/budget.sql).
create table training_spends (
    id uuid primary key default gen_random_uuid(),
    purpose text not null check (purpose in ('scout', 'personas', 'referee_check', 'proposer', 'canary_verdicts')),
    block numeric(20, 12) not null check (block >= 0),
    committed numeric(20, 12) not null default 0 check (committed >= 0),
    recorded numeric(20, 12) not null default 0 check (recorded >= 0),
    deadline_at timestamptz not null,
    started_at timestamptz not null default now(),
    finished_at timestamptz
);
create index training_spends_started_idx on training_spends (started_at);

-- The canary's pairs: completed battles of a version, matched by run and persona.
create index sandbox_battles_version_idx on sandbox_battles (version_id, run_id, persona_id)
    where status = 'completed';

-- The proposal queue: changes to the closer waiting for their canary (lib/sql/functions/proposals.sql).
create table training_proposals (
    id integer generated always as identity primary key,
    kind text not null check (kind in ('add', 'remove', 'edit')),
    source text not null check (source in ('breakthrough', 'person', 'proposer', 'max_tactics')),
    -- The new text (add, edit); null for a removal.
    tactic_text text check (tactic_text is null or char_length(tactic_text) between 1 and 1000),
    -- The active tactic removed or edited; null for an addition.
    tactic_id uuid references sandbox_tactics (id),
    battle_id uuid references sandbox_battles (id) on delete set null,
    -- The scout's confirmation score of a breakthrough's proposal: the queue's order after a person's.
    confirm_score numeric(5, 2) check (confirm_score between 0 and 100),
    reasoning text,
    proposed_by text not null check (length(btrim(proposed_by)) > 0),
    status text not null default 'queued'
        check (status in ('queued', 'canary', 'adopted', 'rolled_back', 'inconclusive', 'vetoed', 'refused',
                          'withdrawn')),
    -- A person's place for it in the queue (1 first); fast-tracked ones come before every other.
    position integer check (position >= 1),
    fast_tracked boolean not null default false,
    version_id integer references training_versions (id),
    outcome text,
    created_at timestamptz not null default now(),
    decided_at timestamptz,
    announced_at timestamptz,
    -- What proposing it cost (the proposer's call), USD.
    cost_usd numeric(20, 12) not null default 0 check (cost_usd >= 0),
    check ((kind = 'remove') = (tactic_text is null)),
    check ((kind = 'add') = (tactic_id is null)),
    check ((status in ('queued', 'canary')) = (decided_at is null))
);
create unique index training_proposals_one_per_breakthrough on training_proposals (battle_id)
    where source = 'breakthrough';
create index training_proposals_queue_idx on training_proposals (status, created_at);

-- Supabase exposes the public schema to the anon key: row level security with no policies keeps
-- these tables to the service role (which bypasses RLS) and to the owner.
alter table training_control enable row level security;
alter table training_runs enable row level security;
alter table sandbox_personas enable row level security;
alter table sandbox_battles enable row level security;
alter table sandbox_tactics enable row level security;
alter table training_rescores enable row level security;
alter table training_referee_calibrations enable row level security;
alter table training_referee_drift_alerts enable row level security;
alter table training_versions enable row level security;
alter table training_proposals enable row level security;
alter table training_spends enable row level security;

comment on table training_control is 'The persisted pause: one row; a paused switch refuses every new run.';
comment on table training_runs is 'One row per batch: its trigger, outcome, spend against its cost cap, and figures tallied from its battles.';
comment on table sandbox_personas is 'The simulated sellers the closer trains against, with their rotation time and the run leasing them.';
comment on table sandbox_battles is 'One conversation between the closer and a persona: transcript, referee verdict, spend, and breakthrough review state.';
comment on table sandbox_tactics is 'Tactics promoted from breakthroughs; the active ones are added to every closer prompt by priority.';
comment on table training_rescores is 'Independent re-scores of battles by the scout: confirmations of candidates and audits of the referee''s consistency.';
comment on table training_referee_calibrations is 'Results of python -m lib referee-check on the shipped calibration set.';
comment on table training_referee_drift_alerts is 'Referee drift alerts sent to Slack (at most one a day).';
comment on table training_versions is 'Closer versions: a base prompt and an ordered tactic list; one active, at most one candidate under canary, with each decision and its figures.';
comment on table training_proposals is 'The proposal queue: changes to the closer (add, remove or edit a tactic) waiting for their canary, with source, author and outcome.';
comment on table training_spends is 'Blocks of the daily and monthly budget taken by model calls outside a run (scout scans, persona generation, referee checks): what each may have been billed and recorded.';
