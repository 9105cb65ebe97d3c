-- The head-to-head verdict on a complete canary pair (CANARY_VERDICT=head_to_head, lib/head_to_head.py),
-- kept on the candidate's battle: +1 the judge preferred the candidate's call, −1 the active
-- version's, 0 a tie; null until judged (and on every battle outside the verdict mode).

alter table sandbox_battles add column pair_verdict smallint check (pair_verdict between -1 and 1);

-- The verdicts' model calls take a block of the budget like the scout's (lib/spending.py).
alter table training_spends drop constraint training_spends_purpose_check;
alter table training_spends add constraint training_spends_purpose_check
    check (purpose in ('scout', 'personas', 'referee_check', 'proposer', 'canary_verdicts'));
