-- SQL functions: upkeep that every migrate repeats once the data allows it.
-- Re-applied by every `python -m lib migrate`, after the pending migrations (lib/sql/migrations/README.md):
-- `create or replace` only; a function whose arguments change gets `drop function if exists
-- name(old argument types)` here, above it.

-- The tactic limit (0004_cost_precision_and_tactic_limit) was added NOT VALID so an upgrade never
-- fails on a longer tactic written before it; it is validated once no active tactic is over it
-- (deactivating the old tactic stays possible meanwhile).
do $$
begin
    if exists (select 1 from pg_constraint where conrelid = 'sandbox_tactics'::regclass
               and conname = 'sandbox_tactics_active_text_at_most_1000_chars' and not convalidated)
       and not exists (select 1 from sandbox_tactics where is_active and char_length(tactic_text) > 1000) then
        alter table sandbox_tactics validate constraint sandbox_tactics_active_text_at_most_1000_chars;
    end if;
end;
$$;

-- The score rule: a database that applied the first draft of 0007_canary_pairs (on main before
-- it was released) holds it NOT VALID; it is validated once no completed battle lacks a score.
do $$
begin
    if exists (select 1 from pg_constraint where conrelid = 'sandbox_battles'::regclass
               and conname = 'sandbox_battles_completed_has_score' and not convalidated)
       and not exists (select 1 from sandbox_battles where status = 'completed' and referee_score is null) then
        alter table sandbox_battles validate constraint sandbox_battles_completed_has_score;
    end if;
end;
$$;
