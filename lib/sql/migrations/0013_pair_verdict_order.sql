-- Which call the head-to-head judge read first (lib/head_to_head.py: a fair coin per pair), kept
-- with the verdict on the candidate's battle, so the judge's lean to the first call is measured on
-- real verdicts (training_canary_pairs 'positionBias'). Null on verdicts judged before it was kept.

alter table sandbox_battles add column pair_verdict_candidate_first boolean
    constraint sandbox_battles_verdict_order_needs_verdict check (pair_verdict_candidate_first is null or pair_verdict is not null);
