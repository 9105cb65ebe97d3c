-- SQL functions: the proposal queue.
-- Re-applied by every `python -m lib migrate`, after the pending migrations (lib/sql/migrations/README.md):
-- `create or replace` only; a function whose arguments change gets `drop function if exists
-- name(old argument types)` here, above it.

-- ---------------------------------------------------------------------------------------------
-- The proposal queue (docs/versions.md, "Autonomous training")
--
-- A proposal is a change to the closer waiting for its canary: add a tactic, remove one, or edit
-- one. It comes from a confirmed breakthrough (AUTO_PROPOSE), a person, the proposer, or the
-- MAX_ACTIVE_TACTICS rule. The tactic checks of versions.sql run when it is proposed (and again
-- when it is taken: the active version may have changed meanwhile). When no candidate is under
-- canary, training_take_next_proposal makes the first queued proposal the candidate, in this
-- order: fast-tracked first, then a person's order (position), then the breakthrough's confirmed
-- score (highest first), then age (oldest first). The canary's decision becomes its outcome.
-- Every change takes the versions lock, as every change to the versions does.
-- ---------------------------------------------------------------------------------------------

-- One proposal as the CLI, the dashboard and the HTTP API show it.
create or replace function training_proposal_json(p training_proposals)
returns jsonb
language sql stable as $$
    select jsonb_build_object(
        'id', p.id, 'kind', p.kind, 'source', p.source, 'text', p.tactic_text, 'tacticId', p.tactic_id,
        'tacticText', (select t.tactic_text from sandbox_tactics t where t.id = p.tactic_id),
        'battleId', p.battle_id, 'confirmScore', p.confirm_score, 'reasoning', p.reasoning,
        'proposedBy', p.proposed_by, 'status', p.status, 'position', p.position, 'fastTracked', p.fast_tracked,
        'versionId', p.version_id, 'outcome', p.outcome, 'createdAt', p.created_at, 'decidedAt', p.decided_at,
        'costUsd', p.cost_usd);
$$;

-- What a proposal changes, in words: a version's `change` and a Slack line.
create or replace function training_proposal_change(p training_proposals)
returns text
language sql stable as $$
    select format('Proposal #%s (%s): ', p.id, p.source) || case p.kind
        when 'add' then 'add ' || training_quote_tactic(p.tactic_text)
        when 'remove' then 'remove ' || training_quote_tactic(
            coalesce((select t.tactic_text from sandbox_tactics t where t.id = p.tactic_id), '?'))
        else format('edit %s to %s',
                    training_quote_tactic(coalesce((select t.tactic_text from sandbox_tactics t where t.id = p.tactic_id),
                                                   '?')),
                    training_quote_tactic(p.tactic_text)) end;
$$;

-- The queued proposals in the order they become candidates.
create or replace function training_proposal_queue()
returns setof training_proposals
language sql stable as $$
    select * from training_proposals where status = 'queued'
    order by fast_tracked desc, position asc nulls last, confirm_score desc nulls last, created_at, id;
$$;

-- Why this change may not join the queue (or be taken from it), or null. p_ignore_id is the
-- proposal itself when it is edited or taken.
create or replace function training_proposal_refusal(p_kind text, p_text text, p_tactic_id uuid,
                                                     p_ignore_id integer default null)
returns text
language plpgsql as $$
declare
    active training_versions%rowtype := training_ensure_active_version();
    others uuid[];
    refusal text;
    other record;
begin
    if p_kind not in ('add', 'remove', 'edit') then
        return format('a proposal adds, removes or edits a tactic, not %s', coalesce(p_kind, 'nothing'));
    end if;
    if p_kind <> 'add' and (p_tactic_id is null or not (p_tactic_id = any(active.tactic_ids))) then
        return format('tactic %s is not in the active version v%s', coalesce(p_tactic_id::text, '(none)'), active.id);
    end if;
    if p_kind = 'remove' then
        select id into other from training_proposals
        where kind = 'remove' and tactic_id = p_tactic_id and status in ('queued', 'canary')
          and id is distinct from p_ignore_id;
        if found then
            return format('proposal #%s already proposes removing it', other.id);
        end if;
        return null;
    end if;
    others := case when p_kind = 'edit' then array_remove(active.tactic_ids, p_tactic_id) else active.tactic_ids end;
    if p_kind = 'edit' and training_normalise_tactic(p_text) = training_normalise_tactic(
            (select tactic_text from sandbox_tactics where id = p_tactic_id)) then
        return 'no change: the new text is the same tactic';
    end if;
    refusal := training_tactic_refusal(p_text, others);
    if refusal is not null then
        return refusal;
    end if;
    for other in
        select q.id, q.tactic_text, q.status from training_proposals q
        where q.tactic_text is not null and q.id is distinct from p_ignore_id
          and (q.status in ('queued', 'canary')
               or q.status in ('rolled_back', 'inconclusive') and q.kind = 'add')
        order by q.id
    loop
        if other.status in ('queued', 'canary') and (training_normalise_tactic(other.tactic_text) =
               training_normalise_tactic(p_text) or training_tactic_similarity(p_text, other.tactic_text) >= 0.6) then
            return format('this tactic repeats proposal #%s %s, which is %s', other.id,
                          training_quote_tactic(other.tactic_text),
                          case other.status when 'queued' then 'in the queue' else 'under canary' end);
        elsif other.status not in ('queued', 'canary')
              and training_normalise_tactic(other.tactic_text) = training_normalise_tactic(p_text) then
            return format('already tried: proposal #%s %s was %s', other.id, training_quote_tactic(other.tactic_text),
                          replace(other.status, '_', ' '));
        end if;
    end loop;
    return null;
end;
$$;

-- Adds a proposal to the queue, after the tactic checks: refused with the reason (P0001), or with
-- p_keep_refused (the proposer: its call was paid for) recorded as refused, with the reason.
-- p_cost_usd is what proposing it cost.
create or replace function training_propose(p_kind text, p_text text, p_tactic_id uuid, p_source text,
                                            p_proposed_by text, p_reasoning text default null,
                                            p_battle_id uuid default null, p_confirm_score numeric default null,
                                            p_fast_track boolean default false, p_cost_usd numeric default 0,
                                            p_keep_refused boolean default false)
returns jsonb
language plpgsql as $$
declare
    refusal text;
    fresh training_proposals%rowtype;
    new_text text := nullif(btrim(coalesce(p_text, '')), '');
begin
    perform pg_advisory_xact_lock(hashtext('training_versions'));
    if p_kind in ('add', 'edit') and new_text is null then
        raise exception 'refused: a tactic cannot be empty' using errcode = 'P0001';
    end if;
    refusal := training_proposal_refusal(p_kind, new_text, p_tactic_id);
    -- Only a row the table can hold is kept: an addition of at most 1000 characters, or the removal
    -- of a tactic that exists.
    if refusal is not null and not (coalesce(p_keep_refused, false)
            and (p_kind = 'add' and length(new_text) <= 1000
                 or p_kind = 'remove' and exists (select 1 from sandbox_tactics where id = p_tactic_id))) then
        raise exception 'refused: %', refusal using errcode = 'P0001';
    end if;
    insert into training_proposals (kind, source, tactic_text, tactic_id, battle_id, confirm_score, reasoning,
                                    proposed_by, fast_tracked, cost_usd, status, decided_at, outcome, announced_at)
    values (p_kind, p_source, case when p_kind = 'remove' then null else new_text end,
            case when p_kind = 'add' then null else p_tactic_id end, p_battle_id, p_confirm_score,
            nullif(btrim(coalesce(p_reasoning, '')), ''), p_proposed_by, coalesce(p_fast_track, false) and refusal is null,
            coalesce(p_cost_usd, 0), case when refusal is null then 'queued' else 'refused' end,
            case when refusal is not null then now() end, refusal, case when refusal is not null then now() end)
    returning * into fresh;
    if refusal is not null then
        return jsonb_build_object('message', format('proposal #%s refused: %s', fresh.id, refusal),
                                  'proposal', training_proposal_json(fresh));
    end if;
    return jsonb_build_object('message', format('proposal #%s queued: %s', fresh.id,
                                                regexp_replace(training_proposal_change(fresh), '^Proposal #\d+ \([a-z_]+\): ', '')),
                              'proposal', training_proposal_json(fresh));
end;
$$;

-- The queue in order, the proposal under canary, and the last p_recent decided ones (newest first).
create or replace function training_list_proposals(p_recent integer default 20)
returns jsonb
language sql stable as $$
    select jsonb_build_object(
        'queue', coalesce((select jsonb_agg(training_proposal_json(q)) from training_proposal_queue() q), '[]'),
        'canary', (select training_proposal_json(p) from training_proposals p where p.status = 'canary'),
        'decided', coalesce((select jsonb_agg(training_proposal_json(d) order by d.decided_at desc, d.id desc)
                             from (select * from training_proposals
                                   where status not in ('queued', 'canary')
                                   order by decided_at desc, id desc limit greatest(p_recent, 0)) d), '[]'));
$$;

-- A queued proposal, locked, or a refusal naming why it cannot be changed.
create or replace function training_queued_proposal(p_id integer)
returns training_proposals
language plpgsql as $$
declare
    found_row training_proposals%rowtype;
begin
    select * into found_row from training_proposals where id = p_id for update;
    if not found then
        raise exception 'there is no proposal #%', p_id using errcode = 'P0001';
    end if;
    if found_row.status <> 'queued' then
        raise exception 'proposal #% is %, not queued', p_id, replace(found_row.status, '_', ' ')
            using errcode = 'P0001';
    end if;
    return found_row;
end;
$$;

-- A person's order: the queued proposal moves to p_position (1 = next), and every queued
-- proposal keeps the place it now has (positions 1..n), so later arrivals queue behind them.
create or replace function training_move_proposal(p_id integer, p_position integer)
returns jsonb
language plpgsql as $$
declare
    moved training_proposals%rowtype;
begin
    perform pg_advisory_xact_lock(hashtext('training_versions'));
    moved := training_queued_proposal(p_id);
    if p_position is null or p_position < 1 then
        raise exception 'a position is 1 or more' using errcode = 'P0001';
    end if;
    with ordered as (select q.id, row_number() over (order by q.ordinality) as place
                     from training_proposal_queue() with ordinality q where q.id <> p_id),
         placed as (select id, case when place < p_position then place else place + 1 end as place from ordered
                    union all select p_id, least(p_position, (select count(*) from ordered) + 1))
    update training_proposals p set position = placed.place from placed where p.id = placed.id;
    select * into moved from training_proposals where id = p_id;
    return jsonb_build_object('message', format('proposal #%s is now number %s in the queue', p_id, moved.position),
                              'proposal', training_proposal_json(moved));
end;
$$;

-- Rewords a queued addition or edit; the tactic checks run again on the new text.
create or replace function training_edit_proposal(p_id integer, p_text text)
returns jsonb
language plpgsql as $$
declare
    edited training_proposals%rowtype;
    refusal text;
begin
    perform pg_advisory_xact_lock(hashtext('training_versions'));
    edited := training_queued_proposal(p_id);
    if edited.kind = 'remove' then
        raise exception 'proposal #% removes a tactic: there is no text to edit (veto it instead)', p_id
            using errcode = 'P0001';
    end if;
    if nullif(btrim(coalesce(p_text, '')), '') is null then
        raise exception 'refused: a tactic cannot be empty' using errcode = 'P0001';
    end if;
    refusal := training_proposal_refusal(edited.kind, btrim(p_text), edited.tactic_id, p_id);
    if refusal is not null then
        raise exception 'refused: %', refusal using errcode = 'P0001';
    end if;
    update training_proposals set tactic_text = btrim(p_text) where id = p_id returning * into edited;
    return jsonb_build_object('message', format('proposal #%s edited', p_id), 'proposal', training_proposal_json(edited));
end;
$$;

-- A person's fast-track: the proposal is next (before any other), once no candidate is under canary.
create or replace function training_fast_track_proposal(p_id integer)
returns jsonb
language plpgsql as $$
declare
    tracked training_proposals%rowtype;
begin
    perform pg_advisory_xact_lock(hashtext('training_versions'));
    tracked := training_queued_proposal(p_id);
    update training_proposals set fast_tracked = true where id = p_id returning * into tracked;
    return jsonb_build_object('message', format('proposal #%s fast-tracked: it is next', p_id),
                              'proposal', training_proposal_json(tracked));
end;
$$;

-- A person's veto: a queued proposal never runs; one under canary is withdrawn (its candidate
-- withdrawn, the active version stays).
create or replace function training_veto_proposal(p_id integer, p_reason text default null)
returns jsonb
language plpgsql as $$
declare
    vetoed training_proposals%rowtype;
    why text := coalesce('vetoed by a person: ' || nullif(btrim(coalesce(p_reason, '')), ''), 'vetoed by a person');
begin
    perform pg_advisory_xact_lock(hashtext('training_versions'));
    select * into vetoed from training_proposals where id = p_id for update;
    if not found then
        raise exception 'there is no proposal #%', p_id using errcode = 'P0001';
    end if;
    if vetoed.status not in ('queued', 'canary') then
        raise exception 'proposal #% is already %', p_id, replace(vetoed.status, '_', ' ') using errcode = 'P0001';
    end if;
    if vetoed.status = 'canary' then
        update training_versions set status = 'withdrawn', decision = 'withdrawn', decided_at = now(),
            note = format('withdrawn by a person: proposal #%s %s after %s pairs', p_id, why, pairs)
        where id = vetoed.version_id and status = 'candidate';
    end if;
    update training_proposals set status = 'vetoed', decided_at = now(), outcome = why where id = p_id
    returning * into vetoed;
    return jsonb_build_object('message', format('proposal #%s vetoed', p_id), 'proposal', training_proposal_json(vetoed));
end;
$$;

-- Each active tactic with its measured contribution: the score difference of the canary that
-- adopted it (null when it was never measured: the baseline's, or adopted directly).
create or replace function training_tactic_contributions()
returns table (id uuid, tactic_text text, contribution numeric)
language sql stable as $$
    select t.id, t.tactic_text,
           (select v.diff from training_versions v join training_versions p on p.id = v.parent_id
            where v.decision = 'adopted' and t.id = any(v.tactic_ids) and not (t.id = any(p.tactic_ids))
            order by v.id limit 1)
    from training_versions a
    cross join lateral unnest(a.tactic_ids) with ordinality as u(tactic_id, position)
    join sandbox_tactics t on t.id = u.tactic_id
    where a.status = 'active'
    order by u.position;
$$;

-- When no candidate is under canary: the next queued proposal becomes the candidate. A proposal
-- that the checks now refuse is closed as refused (with the reason) and the next one is tried. An
-- addition while the active version has p_max_tactics tactics first queues (fast-tracked) the
-- removal of the tactic with the weakest measured contribution whose removal was not already
-- measured, and that removal goes first. Returns {"taken": proposal | null, "refused": [...]}.
create or replace function training_take_next_proposal(p_max_tactics integer)
returns jsonb
language plpgsql as $$
declare
    next_one training_proposals%rowtype;
    weakest record;
    active training_versions%rowtype;
    refusal text;
    refused jsonb := '[]';
    tactic sandbox_tactics%rowtype;
    made jsonb;
    new_ids uuid[];
begin
    perform pg_advisory_xact_lock(hashtext('training_versions'));
    if exists (select 1 from training_versions where status = 'candidate') then
        return jsonb_build_object('taken', null, 'refused', refused);
    end if;
    loop
        select * into next_one from training_proposal_queue() limit 1;
        if not found then
            return jsonb_build_object('taken', null, 'refused', refused);
        end if;
        active := training_ensure_active_version();
        refusal := training_proposal_refusal(next_one.kind, next_one.tactic_text, next_one.tactic_id, next_one.id);
        if refusal is null and next_one.kind = 'add' and cardinality(active.tactic_ids) >= p_max_tactics then
            select c.id, c.tactic_text into weakest from training_tactic_contributions() c
            where not exists (select 1 from training_proposals r where r.kind = 'remove' and r.tactic_id = c.id
                              and r.status <> 'refused' and r.created_at > coalesce(
                                  (select max(v.decided_at) from training_versions v where v.decision = 'adopted'
                                   and c.id = any(v.tactic_ids)), '-infinity'))
            order by coalesce(c.contribution, 0), c.id limit 1;
            if found then
                insert into training_proposals (kind, source, tactic_id, reasoning, proposed_by, fast_tracked)
                values ('remove', 'max_tactics', weakest.id,
                        format('MAX_ACTIVE_TACTICS (%s) reached: the weakest measured contribution, to make room for '
                               'proposal #%s', p_max_tactics, next_one.id), 'MAX_ACTIVE_TACTICS', true);
                continue;
            end if;
            refusal := format('MAX_ACTIVE_TACTICS (%s) reached, and removing each active tactic was already measured',
                              p_max_tactics);
        end if;
        if refusal is not null then
            update training_proposals set status = 'refused', decided_at = now(), outcome = refusal
            where id = next_one.id returning * into next_one;
            refused := refused || training_proposal_json(next_one);
            continue;
        end if;
        if next_one.kind = 'remove' then
            new_ids := array_remove(active.tactic_ids, next_one.tactic_id);
        else
            insert into sandbox_tactics (battle_id, tactic_text, is_active)
            values (next_one.battle_id, next_one.tactic_text, false) returning * into tactic;
            new_ids := case when next_one.kind = 'add' then active.tactic_ids || tactic.id
                            else array_replace(active.tactic_ids, next_one.tactic_id, tactic.id) end;
        end if;
        made := training_new_version(new_ids, training_proposal_change(next_one), false);
        update training_proposals set status = 'canary', version_id = (made -> 'version' ->> 'id')::integer
        where id = next_one.id returning * into next_one;
        if next_one.battle_id is not null and next_one.source = 'breakthrough' then
            update sandbox_battles set breakthrough_status = 'promoted', updated_at = now()
            where id = next_one.battle_id and breakthrough_status = 'pending_review';
        end if;
        return jsonb_build_object('taken', training_proposal_json(next_one), 'refused', refused,
                                  'message', made ->> 'message');
    end loop;
end;
$$;

-- The canary's decision (or a person's withdrawal) becomes the outcome of the proposal it measured.
create or replace function training_close_proposal(p_version_id integer, p_status text, p_outcome text)
returns void
language sql as $$
    update training_proposals set status = p_status, decided_at = now(), outcome = p_outcome
    where version_id = p_version_id and status = 'canary';
$$;

-- AUTO_PROPOSE: the confirmed breakthroughs still pending review, with a snippet, each queued
-- once (a refused one is recorded as refused, with the reason, and not tried again).
create or replace function training_queue_breakthroughs()
returns integer
language plpgsql as $$
declare
    battle record;
    refusal text;
    queued integer := 0;
begin
    perform pg_advisory_xact_lock(hashtext('training_versions'));
    for battle in
        select b.id, btrim(b.tactical_snippet) as snippet, b.confirm_score from sandbox_battles b
        where b.breakthrough_status = 'pending_review' and b.confirm_status = 'confirmed'
          and btrim(coalesce(b.tactical_snippet, '')) <> ''
          and not exists (select 1 from training_proposals p where p.battle_id = b.id and p.source = 'breakthrough')
        order by b.breakthrough_detected_at, b.id
    loop
        refusal := training_proposal_refusal('add', left(battle.snippet, 1000), null);
        insert into training_proposals (kind, source, tactic_text, battle_id, confirm_score, proposed_by, status,
                                        decided_at, outcome, announced_at)
        values ('add', 'breakthrough', left(battle.snippet, 1000), battle.id, battle.confirm_score,
                'scout (AUTO_PROPOSE)', case when refusal is null then 'queued' else 'refused' end,
                case when refusal is null then null else now() end, refusal,
                case when refusal is null then null else now() end);
        if refusal is null then
            queued := queued + 1;
        end if;
    end loop;
    return queued;
end;
$$;

-- The proposals that entered the queue and were not announced yet (each is claimed once).
create or replace function training_claim_announcements()
returns jsonb
language sql as $$
    with claimed as (update training_proposals set announced_at = now()
                     where announced_at is null returning *)
    select coalesce(jsonb_agg(training_proposal_json(c) order by c.id), '[]') from claimed c
    where c.status in ('queued', 'canary');
$$;

-- The proposer's turn: due once p_every battles completed since its last turn (claimed here, so
-- two runs finishing together take one turn). When due, what it reads: the p_worst lowest-scoring
-- battles since then (transcript, feedback, sub-scores), the active tactics with their measured
-- contribution, and the last 20 decided proposals with their outcomes (its own refused ones too),
-- with `since` (the turn before) and `claimedAt` (this claim) to give the turn back. Null when not due.
create or replace function training_proposer_turn(p_every integer, p_worst integer)
returns jsonb
language plpgsql as $$
declare
    since timestamptz;
    completed integer;
begin
    select proposer_turn_at into since from training_control where id for update;
    select count(*) into completed from sandbox_battles
    where status = 'completed' and ended_at > coalesce(since, '-infinity');
    if completed < p_every then
        return null;
    end if;
    update training_control set proposer_turn_at = now() where id;
    return jsonb_build_object(
        'battles', completed, 'since', since, 'claimedAt', now(),
        'worst', coalesce((select jsonb_agg(jsonb_build_object('id', b.id, 'score', b.referee_score, 'scores', b.scores,
                                                              'feedback', b.referee_feedback,
                                                              'transcript', b.transcript) order by b.referee_score, b.id)
                           from (select * from sandbox_battles where status = 'completed'
                                 and ended_at > coalesce(since, '-infinity')
                                 order by referee_score, id limit p_worst) b), '[]'),
        'tactics', coalesce((select jsonb_agg(jsonb_build_object('id', c.id, 'text', c.tactic_text,
                                                                'contribution', c.contribution))
                             from training_tactic_contributions() c), '[]'),
        'past', coalesce((select jsonb_agg(jsonb_build_object('kind', p.kind, 'text', coalesce(p.tactic_text, t.tactic_text),
                                                             'outcome', p.status,
                                                             'reason', case when p.status = 'refused' then p.outcome end)
                                            order by p.decided_at desc)
                          from (select * from training_proposals
                                where status in ('adopted', 'rolled_back', 'inconclusive')
                                   or status = 'refused' and source = 'proposer'
                                order by decided_at desc limit 20) p
                          left join sandbox_tactics t on t.id = p.tactic_id), '[]'));
end;
$$;

-- A turn whose call brought no answer (the call failed; lib/proposer.py) is given
-- back: proposer_turn_at returns to p_since, so the next run takes the turn again, but only while
-- it still holds this claim's p_claimed_at (a newer claim is never undone). True when given back.
create or replace function training_give_back_proposer_turn(p_claimed_at timestamptz, p_since timestamptz)
returns boolean
language plpgsql as $$
begin
    update training_control set proposer_turn_at = p_since where id and proposer_turn_at = p_claimed_at;
    return found;
end;
$$;

-- The closer's quality over time (the dashboard's Autonomous training panel): the mean score of
-- each version's completed battles per hour over the last p_hours, and the canary's adoptions and
-- rollbacks in that time. With p_with_tactics (a simulated deployment), each version's tactics and
-- the active personas' difficulties too, from which the simulator's true quality is drawn.
create or replace function training_dashboard_quality(p_hours integer, p_with_tactics boolean default false)
returns jsonb
language sql stable as $$
    with points as (
        select date_trunc('hour', b.ended_at) as hour, b.version_id, count(*) as battles,
               round(avg(b.referee_score), 2) as mean_score
        from sandbox_battles b
        where b.status = 'completed' and b.ended_at > now() - make_interval(hours => p_hours)
          and b.version_id is not null
        group by 1, 2)
    select jsonb_build_object(
        'since', now() - make_interval(hours => p_hours), 'now', now(),
        'points', coalesce((select jsonb_agg(jsonb_build_object('at', p.hour, 'versionId', p.version_id,
                                                               'battles', p.battles, 'meanScore', p.mean_score)
                                             order by p.hour, p.version_id) from points p), '[]'),
        'decisions', coalesce((select jsonb_agg(jsonb_build_object('versionId', v.id, 'decision', v.decision,
                                                                  'at', v.decided_at, 'change', v.change)
                                                order by v.decided_at)
                               from training_versions v where v.decision in ('adopted', 'rolled_back')
                                 and v.decided_at > now() - make_interval(hours => p_hours)), '[]'),
        'versionTactics', case when p_with_tactics then coalesce((
            select jsonb_object_agg(v.id::text, coalesce((select jsonb_agg(t.tactic_text order by u.position)
                                                          from unnest(v.tactic_ids) with ordinality u(id, position)
                                                          join sandbox_tactics t on t.id = u.id), '[]'))
            from training_versions v where v.id in (select version_id from points)), '{}') end,
        'difficulties', case when p_with_tactics then coalesce((
            select jsonb_agg(coalesce((p.characteristics ->> 'difficulty')::int, 3))
            from sandbox_personas p where p.is_active), '[]') end);
$$;

-- The loop's step after a run, in one round trip (lib/proposals.py): with p_queue_breakthroughs
-- (AUTO_PROPOSE), the confirmed breakthroughs enter the queue; the next proposal becomes the
-- candidate when none is under canary; and the proposals that entered and were not announced are
-- claimed for Slack. Returns {"queued", "taken", "refused", "entered"}.
create or replace function training_proposal_step(p_max_tactics integer, p_queue_breakthroughs boolean)
returns jsonb
language plpgsql as $$
declare
    queued integer := 0;
    taken jsonb;
begin
    if p_queue_breakthroughs then
        queued := training_queue_breakthroughs();
    end if;
    taken := training_take_next_proposal(p_max_tactics);
    return jsonb_build_object('queued', queued, 'taken', taken -> 'taken', 'refused', taken -> 'refused',
                              'entered', training_claim_announcements());
end;
$$;
