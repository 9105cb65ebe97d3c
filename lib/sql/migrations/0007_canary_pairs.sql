-- Canary v2 (issue 19): each battle of a canary pair records its place in the pair's fair-coin
-- order, and a completed battle must have a score. A completed battle an older release left
-- without a score is marked failed first, saying why: PostgreSQL checks even a NOT VALID
-- constraint on every update of a row, so one such row would make every later update of it
-- (the scout's triage marks all unseen battles at once) fail for good.

alter table sandbox_battles add column pair_order smallint check (pair_order in (1, 2));

update sandbox_battles
set status = 'failed',
    error = coalesce(error || '; ', '')
            || 'completed without a score (written before scores were required); marked failed by migration 0007',
    audit_status = case when audit_status = 'pending' then null else audit_status end,
    updated_at = now()
where status = 'completed' and referee_score is null;

alter table sandbox_battles add constraint sandbox_battles_completed_has_score
    check (status <> 'completed' or referee_score is not null);
