-- The second release, part 4: the dashboard's indexes and the daily and monthly budget.

-- The feed walks (updated_at, id) in both directions. The first release's index had the two
-- columns in opposite orders, which neither feed query could follow.
drop index if exists sandbox_battles_feed_idx;
create index if not exists sandbox_battles_updated_idx on sandbox_battles (updated_at, id);
-- Today's and the last 7 days' spend, scores and outcomes, read on every health poll: the columns
-- it sums ride in the index, so the poll never visits the table (or its transcripts).
create index if not exists sandbox_battles_started_idx on sandbox_battles (started_at)
    include (status, cost_usd, referee_score);

-- A run's block of the day's and month's budget (lib/sql/functions/budget.sql).
alter table training_runs add column if not exists budget_block numeric(20, 12) check (budget_block >= 0);
-- The UTC day of the last budget refusal that was alerted (Slack hears of it once a day).
alter table training_control add column if not exists budget_alerted_on date;
