-- Canary v2 (issue 19): each battle of a canary pair records its place in the pair's fair-coin
-- order, and a completed battle must have a score. The score rule is added NOT VALID so rows
-- written before it never fail the upgrade (training_canary_pairs skips them, saying so);
-- lib/sql/functions/upkeep.sql validates it once none is left.

alter table sandbox_battles add column pair_order smallint check (pair_order in (1, 2));

alter table sandbox_battles add constraint sandbox_battles_completed_has_score
    check (status <> 'completed' or referee_score is not null) not valid;
