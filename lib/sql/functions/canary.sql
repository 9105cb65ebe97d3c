-- SQL functions: the canary's pairs and their head-to-head verdicts.
-- Re-applied by every `python -m lib migrate`, after the pending migrations (lib/sql/migrations/README.md):
-- `create or replace` only; a function whose arguments change gets `drop function if exists
-- name(old argument types)` here, above it.

-- How many times the head-to-head judge may fail on a pair before the pair is left out (counted
-- in `skipped`), so that one pair it cannot judge never blocks the verdicts after it.
create or replace function training_verdict_failures_max()
returns integer
language sql immutable as $$ select 3 $$;

-- The canary's paired differences so far, oldest first: for each run and persona that battled both
-- the candidate and its parent to completion, one difference from the candidate's side, in the
-- canary's unit: the candidate's own (training_versions.canary_unit, fixed at its first look),
-- else p_unit (CANARY_VERDICT). With 'score', candidate score − parent score, in points; with
-- 'head_to_head', the pair's verdict (sandbox_battles.pair_verdict) × 100, so that it sits in
-- the same [−100, 100] the rule bets on (lib/canary.py). Null without a candidate. A pair without
-- its number (a side without a score, written before sandbox_battles_completed_has_score; a pair
-- not judged yet, or that the judge failed on too often) is left out, and counted in `skipped`
-- with the reason. `incomplete`: the finished runs' pairs with one side completed, by the side
-- that is missing (`candidateMissing`: the candidate's battle failed, timed out, was cut or never
-- started; `activeMissing`); left out of the decision, shown because a candidate that loses
-- more of its pairs is one the decision cannot see. `positionBias` (null before a decisive verdict whose order was kept): of the
-- candidate's decisive verdicts, how many went to the call the judge read first; the fair-coin
-- order cancels a lean that depends only on position.
drop function if exists training_canary_pairs();
create or replace function training_canary_pairs(p_unit text default 'score')
returns jsonb
language plpgsql stable as $$
declare
    candidate training_versions%rowtype;
    unit text;
begin
    if p_unit is null or p_unit not in ('score', 'head_to_head') then
        raise exception 'a canary unit is score or head_to_head, not %', coalesce(p_unit, 'null') using errcode = '22023';
    end if;
    select * into candidate from training_versions where status = 'candidate';
    if not found then
        return null;
    end if;
    unit := coalesce(candidate.canary_unit, p_unit);
    return (
        with pairs as (
            select case when unit = 'head_to_head' then cb.pair_verdict * 100.0
                        else cb.referee_score - ab.referee_score end as diff,
                   coalesce(cb.pair_verdict_failures, 0) >= training_verdict_failures_max() as given_up,
                   greatest(cb.ended_at, ab.ended_at) as ended_at, cb.id
            from sandbox_battles cb
            join sandbox_battles ab on ab.run_id = cb.run_id and ab.persona_id = cb.persona_id
                                   and ab.version_id = candidate.parent_id and ab.status = 'completed'
            where cb.version_id = candidate.id and cb.status = 'completed'
        ),
        missing as (
            select count(*) filter (where unit = 'head_to_head' and given_up) as given_up,
                   count(*) filter (where not (unit = 'head_to_head' and given_up)) as other
            from pairs where diff is null
        )
        select jsonb_build_object('candidateId', candidate.id, 'activeId', candidate.parent_id, 'unit', unit,
            'diffs', coalesce((select jsonb_agg(diff order by ended_at, id) from pairs where diff is not null), '[]'),
            'skipped', m.given_up + m.other,
            'skippedReason', case when m.given_up + m.other = 0 then null
                                  when unit = 'score'
                                      then 'a completed battle without a score (written before scores were required)'
                                  else concat_ws('; ',
                                      case when m.given_up > 0 then format('%s the judge failed on %s times (left out)',
                                                                           m.given_up, training_verdict_failures_max()) end,
                                      case when m.other > 0 then format('%s not judged yet (judged at the next look)',
                                                                        m.other) end) end,
            'positionBias', (select case when count(*) > 0 then jsonb_build_object(
                                 'firstShownWon', count(*) filter (where (b.pair_verdict = 1) = b.pair_verdict_candidate_first),
                                 'decisive', count(*)) end
                             from sandbox_battles b
                             where b.version_id = candidate.id and b.pair_verdict <> 0
                               and b.pair_verdict_candidate_first is not null),
            'incomplete', (select jsonb_build_object(
                               'candidateMissing', count(*) filter (where b.version_id = candidate.parent_id),
                               'activeMissing', count(*) filter (where b.version_id = candidate.id))
                           from sandbox_battles b join training_runs r on r.id = b.run_id
                           where b.pair_order is not null and b.status = 'completed'
                             and b.version_id in (candidate.id, candidate.parent_id)
                             and r.started_at >= candidate.created_at and r.status <> 'running'
                             and not exists (select 1 from sandbox_battles o
                                             where o.run_id = b.run_id and o.persona_id = b.persona_id
                                               and o.id <> b.id and o.status = 'completed'
                                               and o.version_id in (candidate.id, candidate.parent_id))))
        from missing m);
end;
$$;

-- The candidate's complete pairs without a verdict yet, at most p_limit, claimed for
-- p_claim_seconds (a pair another look has claimed, and not yet judged, is skipped until its claim
-- ends, so runs finishing together never judge the same pair twice): the ones the judge has failed
-- on least first, then oldest first (a pair it keeps failing on waits at the back, and is left out
-- after training_verdict_failures_max() failures); both battles' ids and transcripts, for one
-- head-to-head call each (lib/canary_verdicts.py).
drop function if exists training_canary_unjudged(integer);
create or replace function training_canary_unjudged(p_limit integer, p_claim_seconds double precision)
returns jsonb
language plpgsql as $$
declare
    claimed jsonb;
begin
    with picked as (
        select cb.id as cid, ab.id as aid, cb.transcript as ct, ab.transcript as at,
               coalesce(cb.pair_verdict_failures, 0) as failures, greatest(cb.ended_at, ab.ended_at) as ended_at
        from training_versions c
        join sandbox_battles cb on cb.version_id = c.id and cb.status = 'completed' and cb.pair_verdict is null
                               and coalesce(cb.pair_verdict_failures, 0) < training_verdict_failures_max()
                               and (cb.pair_verdict_claimed_until is null or cb.pair_verdict_claimed_until <= now())
        join sandbox_battles ab on ab.run_id = cb.run_id and ab.persona_id = cb.persona_id
                               and ab.version_id = c.parent_id and ab.status = 'completed'
        where c.status = 'candidate'
        order by coalesce(cb.pair_verdict_failures, 0), greatest(cb.ended_at, ab.ended_at), cb.id
        limit greatest(p_limit, 0)
        for update of cb skip locked
    ), claim as (
        update sandbox_battles b set pair_verdict_claimed_until = now() + make_interval(secs => greatest(p_claim_seconds, 0))
        from picked p where b.id = p.cid
        returning b.id
    )
    select coalesce(jsonb_agg(jsonb_build_object('candidateBattleId', p.cid, 'activeBattleId', p.aid,
                                                 'candidateTranscript', p.ct, 'activeTranscript', p.at)
                              order by p.failures, p.ended_at, p.cid), '[]')
    into claimed
    from picked p join claim k on k.id = p.cid;
    return claimed;
end;
$$;

-- A head-to-head call on this pair (the candidate's battle) ended without a verdict: its claim is
-- released for the next look, and with p_failed (a failure of the pair's own) it is counted, so
-- the pair waits at the back of the queue and, after training_verdict_failures_max() failures, is
-- left out. Returns the pair's failures so far.
create or replace function training_release_pair(p_battle_id uuid, p_failed boolean)
returns integer
language plpgsql as $$
declare
    failures integer;
begin
    update sandbox_battles
    set pair_verdict_failures = case when p_failed then coalesce(pair_verdict_failures, 0) + 1
                                     else pair_verdict_failures end,
        pair_verdict_claimed_until = null, updated_at = now()
    where id = p_battle_id and status = 'completed' and pair_verdict is null
    returning pair_verdict_failures into failures;
    return coalesce(failures, 0);
end;
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
