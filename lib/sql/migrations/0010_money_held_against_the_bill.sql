-- Money held against the provider's bill (issue 18): what a run may have been billed, and the
-- blocks of the budget taken by model calls outside runs (lib/sql/functions/budget.sql).

-- Null for the runs before this step: an orphan of theirs counts its whole block.
alter table training_runs add column committed_cost numeric(20, 12) check (committed_cost >= 0);

create table training_spends (
    id uuid primary key default gen_random_uuid(),
    purpose text not null check (purpose in ('scout', 'personas', 'referee_check', 'proposer')),
    block numeric(20, 12) not null check (block >= 0),
    committed numeric(20, 12) not null default 0 check (committed >= 0),
    recorded numeric(20, 12) not null default 0 check (recorded >= 0),
    deadline_at timestamptz not null,
    started_at timestamptz not null default now(),
    finished_at timestamptz
);
create index training_spends_started_idx on training_spends (started_at);
alter table training_spends enable row level security;
comment on table training_spends is 'Blocks of the daily and monthly budget taken by model calls outside a run (scout scans, persona generation, referee checks): what each may have been billed and recorded.';
