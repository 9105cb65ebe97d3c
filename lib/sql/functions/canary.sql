-- SQL functions: the canary's pairs and their head-to-head verdicts.
-- Re-applied by every `python -m lib migrate`, after the pending migrations (lib/sql/migrations/README.md):
-- `create or replace` only; a function whose arguments change gets `drop function if exists
-- name(old argument types)` here, above it.

-- The canary's paired differences so far, oldest first: for each run and persona that battled both
-- the candidate and its parent to completion, one difference from the candidate's side. With
-- p_unit 'score' (CANARY_VERDICT=score), candidate score − parent score, in points; with
-- 'head_to_head', the pair's verdict (sandbox_battles.pair_verdict) × 100, so that it sits in
-- the same [−100, 100] the rule bets on (lib/canary.py). Null without a candidate. A pair without
-- its number (a side without a score, written before sandbox_battles_completed_has_score; a pair
-- not judged yet) is left out, and counted in `skipped` with the reason. `positionBias` (null
-- before a decisive verdict whose order was kept): of the candidate's decisive verdicts, how many
-- went to the call the judge read first; the fair-coin order cancels that lean from the decision.
drop function if exists training_canary_pairs();
create or replace function training_canary_pairs(p_unit text default 'score')
returns jsonb
language plpgsql stable as $$
begin
    if p_unit is null or p_unit not in ('score', 'head_to_head') then
        raise exception 'a canary unit is score or head_to_head, not %', coalesce(p_unit, 'null') using errcode = '22023';
    end if;
    return (
        with pairs as (
            select case when p_unit = 'head_to_head' then cb.pair_verdict * 100.0
                        else cb.referee_score - ab.referee_score end as diff,
                   greatest(cb.ended_at, ab.ended_at) as ended_at, cb.id
            from training_versions c
            join sandbox_battles cb on cb.version_id = c.id and cb.status = 'completed'
            join sandbox_battles ab on ab.run_id = cb.run_id and ab.persona_id = cb.persona_id
                                   and ab.version_id = c.parent_id and ab.status = 'completed'
            where c.status = 'candidate'
        )
        select jsonb_build_object('candidateId', c.id, 'activeId', c.parent_id, 'unit', p_unit,
            'diffs', coalesce((select jsonb_agg(diff order by ended_at, id) from pairs where diff is not null), '[]'),
            'skipped', (select count(*) from pairs where diff is null),
            'skippedReason', case when not exists (select 1 from pairs where diff is null) then null
                                  when p_unit = 'head_to_head' then 'not judged yet (judged at the next look)'
                                  else 'a completed battle without a score (written before scores were required)' end,
            'positionBias', (select case when count(*) > 0 then jsonb_build_object(
                                 'firstShownWon', count(*) filter (where (b.pair_verdict = 1) = b.pair_verdict_candidate_first),
                                 'decisive', count(*)) end
                             from sandbox_battles b
                             where b.version_id = c.id and b.pair_verdict <> 0 and b.pair_verdict_candidate_first is not null))
        from training_versions c where c.status = 'candidate');
end;
$$;

-- The candidate's complete pairs without a verdict yet, oldest first, at most p_limit: both
-- battles' ids and transcripts, for one head-to-head call each (lib/canary_verdicts.py).
create or replace function training_canary_unjudged(p_limit integer)
returns jsonb
language sql stable as $$
    select coalesce(jsonb_agg(jsonb_build_object('candidateBattleId', p.cid, 'activeBattleId', p.aid,
                                                 'candidateTranscript', p.ct, 'activeTranscript', p.at)
                              order by p.ended_at, p.cid), '[]')
    from (select cb.id as cid, ab.id as aid, cb.transcript as ct, ab.transcript as at,
                 greatest(cb.ended_at, ab.ended_at) as ended_at
          from training_versions c
          join sandbox_battles cb on cb.version_id = c.id and cb.status = 'completed' and cb.pair_verdict is null
          join sandbox_battles ab on ab.run_id = cb.run_id and ab.persona_id = cb.persona_id
                                 and ab.version_id = c.parent_id and ab.status = 'completed'
          where c.status = 'candidate'
          order by greatest(cb.ended_at, ab.ended_at), cb.id
          limit greatest(p_limit, 0)) p;
$$;

-- Stores a pair's verdict on the candidate's battle (+1 the candidate's call judged better, −1
-- worse, 0 a tie) and whether the judge read the candidate's call first. A verdict is final: true
-- when stored, false when the pair already had one.
drop function if exists training_record_pair_verdict(uuid, integer);
create or replace function training_record_pair_verdict(p_battle_id uuid, p_verdict integer, p_candidate_first boolean)
returns boolean
language plpgsql as $$
begin
    if p_verdict is null or p_verdict not in (-1, 0, 1) then
        raise exception 'a pair verdict is -1, 0 or 1, not %', coalesce(p_verdict::text, 'null') using errcode = '22023';
    end if;
    if p_candidate_first is null then
        raise exception 'a pair verdict needs the order the judge read the calls in (p_candidate_first)'
            using errcode = '22023';
    end if;
    update sandbox_battles set pair_verdict = p_verdict, pair_verdict_candidate_first = p_candidate_first,
                               updated_at = now()
    where id = p_battle_id and status = 'completed' and pair_verdict is null;
    return found;
end;
$$;
