-- Run first by every migrate (and at the top of `migrate --print`): the migrations table, and the
-- classification of a database from before it. See lib/sql/migrations/README.md.
--
-- * Empty (no training_runs): nothing is recorded; every migration is pending (python -m lib
--   migrate installs lib/sql/schema.sql instead and records them all).
-- * Tables but no recorded migration: a release from before this table. The second release
--   (commit e40f24c) is told from the first (f6740ef) by training_runs.budget_block, the last
--   column it added; the migrations each already holds are recorded, the rest stay pending. A
--   database from a commit between the two releases (some of the second release's tables and
--   columns, not budget_block) is taken for the first: 0002-0006 therefore create only what is
--   missing (`if not exists`), so replaying them over it completes it.

create table if not exists training_schema_migrations (
    name text primary key,
    applied_at timestamptz not null default now()
);
alter table training_schema_migrations enable row level security;
comment on table training_schema_migrations is 'The schema migrations (lib/sql/migrations/) applied to this database, by file name.';

do $$
begin
    if exists (select 1 from training_schema_migrations) or to_regclass('training_runs') is null then
        return;
    end if;
    insert into training_schema_migrations (name) values ('0001_first_release');
    if exists (select 1 from information_schema.columns where table_schema = current_schema()
               and table_name = 'training_runs' and column_name = 'budget_block') then
        insert into training_schema_migrations (name) values ('0002_prefixed_functions'),
            ('0003_referee_and_scout_state'), ('0004_cost_precision_and_tactic_limit'),
            ('0005_closer_versions'), ('0006_dashboard_indexes_and_budget');
    end if;
end;
$$;
