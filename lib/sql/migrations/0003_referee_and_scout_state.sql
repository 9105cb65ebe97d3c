-- The second release, part 1: who paused, table comments, and the scout's and referee's state.

-- Who paused: a person (CLI, dashboard) or a batch that reached its cost cap.
alter table training_control add column if not exists paused_by text check (paused_by in ('person', 'cost_cap'));
-- A pause from before the column: the first release wrote the cost cap's reason as "Kill-switch …".
update training_control set paused_by = case when reason like 'Kill-switch activated%' then 'cost_cap'
                                             else 'person' end
where paused and paused_by is null;

comment on table training_control is 'The persisted pause: one row; a paused switch refuses every new run.';
comment on table training_runs is 'One row per batch: its trigger, outcome, spend against its cost cap, and figures tallied from its battles.';
comment on table sandbox_personas is 'The simulated sellers the closer trains against, with their rotation time and the run leasing them.';
comment on table sandbox_battles is 'One conversation between the closer and a persona: transcript, referee verdict, spend, and breakthrough review state.';
comment on table sandbox_tactics is 'Tactics promoted from breakthroughs; the active ones are added to every closer prompt by priority.';

-- The scout's state per battle, one column per task: triaged once; a candidate's confirmation;
-- an audit re-score; Slack delivery; LLM failures.
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
