-- The canary's head-to-head records and its unit (docs/versions.md):
-- * which call the judge read first (lib/head_to_head.py: a fair coin per pair), kept with the
--   verdict on the candidate's battle, so the judge's lean to the first call is measured on real
--   verdicts (training_canary_pairs 'positionBias'); null on verdicts judged before it was kept;
-- * how many times the judge failed on a pair: a pair it keeps failing on goes to the back of the
--   queue and, after 3, is left out (counted in `skipped`) instead of blocking every later verdict;
-- * until when a look has claimed the pair for its head-to-head call, so that runs finishing
--   together never judge (and pay for) the same pair twice;
-- * the unit a candidate's canary measures in (CANARY_VERDICT at its first look), kept for the
--   rest of its canary: changing the setting applies from the next candidate.

alter table sandbox_battles add column pair_verdict_candidate_first boolean
    constraint sandbox_battles_verdict_order_needs_verdict check (pair_verdict_candidate_first is null or pair_verdict is not null);
alter table sandbox_battles add column pair_verdict_failures smallint check (pair_verdict_failures > 0);
alter table sandbox_battles add column pair_verdict_claimed_until timestamptz;
alter table training_versions add column canary_unit text check (canary_unit in ('score', 'head_to_head'));
