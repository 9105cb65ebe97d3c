-- SQL functions: the Tactical Scout: triage, leases, confirmations, audits, Slack delivery state.
-- Re-applied by every `python -m lib migrate`, after the pending migrations (lib/sql/migrations/README.md):
-- `create or replace` only; a function whose arguments change gets `drop function if exists
-- name(old argument types)` here, above it.

-- ---------------------------------------------------------------------------------------------
-- Tactical Scout
-- ---------------------------------------------------------------------------------------------

create or replace function training_set_scout_notified(p_run_id uuid, p_notified boolean)
returns void
language sql as $$
    update training_runs set scout_notified = p_notified where id = p_run_id;
$$;

create or replace function training_record_defining_moment(p_battle_id uuid, p_defining_moment text,
                                                   p_tactical_snippet text)
returns void
language plpgsql as $$
begin
    if coalesce(btrim(p_defining_moment), '') = '' or coalesce(btrim(p_tactical_snippet), '') = '' then
        raise exception 'a defining moment and a tactical snippet are both required' using errcode = 'P0001';
    end if;
    update sandbox_battles set defining_moment = p_defining_moment, tactical_snippet = p_tactical_snippet,
        updated_at = now()
    where id = p_battle_id;
end;
$$;

-- Records a Slack alert that Slack accepted; false if another scan already had (at most once).
create or replace function training_mark_alerted(p_battle_id uuid)
returns boolean
language plpgsql as $$
begin
    update sandbox_battles set alerted_at = now(), slack_status = 'sent', slack_error = null
    where id = p_battle_id and alerted_at is null;
    return found;
end;
$$;

-- Slack refused the alert for good (a revoked webhook, a bad payload): never retried, reason kept.
create or replace function training_mark_alert_failed(p_battle_id uuid, p_reason text)
returns boolean
language plpgsql as $$
begin
    update sandbox_battles set slack_status = 'failed', slack_error = left(p_reason, 500)
    where id = p_battle_id and slack_status = 'pending';
    return found;
end;
$$;

create or replace function training_release_scout_lease(p_battle_id uuid)
returns void
language sql as $$
    update sandbox_battles set scout_lease_until = null where id = p_battle_id;
$$;

-- ---------------------------------------------------------------------------------------------
-- Referee and scout state: triage, confirmation and audit re-scores, reviewers' labels,
-- calibration results, the drift alert.
--
-- Each completed battle is triaged once (scout_seen_at): a score at or above the cutoff becomes
-- a candidate (confirm_status 'pending'); a share of the battles of the last days, picked by a
-- hash of their id, awaits an audit re-score (audit_status 'pending'). A confirmed candidate
-- becomes a breakthrough pending review and pending Slack delivery (slack_status); an
-- unconfirmed one keeps its reason. Every task is its own column and advances once, so a scan
-- never redoes work and a backlog drains oldest first whatever Slack does.
-- ---------------------------------------------------------------------------------------------

-- Whether a battle falls in the audited share: a stable, uniform pick by its id.
create or replace function training_audit_pick(p_battle_id uuid, p_share numeric)
returns boolean
language sql immutable as $$
    select (('x' || substr(md5(p_battle_id::text), 1, 8))::bit(32)::bigint)::numeric / 4294967296 < p_share;
$$;

-- Triages completed battles the scout has not seen, once each: candidates at or above the cutoff
-- await confirmation; of the battles ended in the last p_audit_days, p_audit_share await an audit.
create or replace function training_triage_battles(p_threshold integer, p_audit_share numeric,
                                                   p_audit_days integer)
returns jsonb
language sql as $$
    with fresh as (
        select id from sandbox_battles
        where status = 'completed' and scout_seen_at is null
          -- an unscored row (possible only before the score rule) could not be updated: left alone
          and referee_score is not null
        for update skip locked
    ), marked as (
        update sandbox_battles b set scout_seen_at = now(),
            confirm_status = case when b.referee_score >= p_threshold and b.breakthrough_status is null
                                  then 'pending' else b.confirm_status end,
            audit_status = case when b.ended_at > now() - make_interval(days => p_audit_days)
                                     and training_audit_pick(b.id, p_audit_share)
                                then 'pending' else b.audit_status end
        from fresh where b.id = fresh.id
        returning b.confirm_status, b.audit_status
    )
    select jsonb_build_object('triaged', count(*),
                              'candidates', count(*) filter (where confirm_status = 'pending'),
                              'audits', count(*) filter (where audit_status = 'pending'))
    from marked;
$$;

-- Whether a battle has scout work left: model work (a confirmation, an audit, a defining moment)
-- while it has failed fewer than p_max_attempts times, or, with Slack configured, an alert.
create or replace function training_scout_due(p_battle sandbox_battles, p_slack boolean, p_max_attempts integer)
returns boolean
language sql stable as $$
    select (p_battle.scout_attempts < p_max_attempts
            and (p_battle.confirm_status = 'pending' or p_battle.audit_status = 'pending'
                 or (p_battle.breakthrough_status is not null and p_battle.defining_moment is null)))
        or (p_slack and p_battle.breakthrough_status is not null and p_battle.slack_status = 'pending');
$$;

-- Leases up to p_limit battles with scout work left, oldest first, and says how many were due.
-- A lease keeps overlapping scans off the same battle; it lapses on its own if a scan dies.
create or replace function training_lease_scout_work(p_limit integer, p_lease_seconds integer, p_slack boolean,
                                                     p_max_attempts integer)
returns jsonb
language sql as $$
    with due as (
        select b.id, b.ended_at from sandbox_battles b
        where training_scout_due(b, p_slack, p_max_attempts)
          and (b.scout_lease_until is null or b.scout_lease_until < now())
        order by b.ended_at, b.id
        limit p_limit
        for update skip locked
    ), leased as (
        update sandbox_battles b set scout_lease_until = now() + make_interval(secs => p_lease_seconds)
        from due where b.id = due.id
        returning b.*
    )
    select jsonb_build_object(
        'due', (select count(*) from sandbox_battles b
                where training_scout_due(b, p_slack, p_max_attempts)
                  and (b.scout_lease_until is null or b.scout_lease_until < now())),
        'items', coalesce((select jsonb_agg(jsonb_build_object(
            'id', l.id, 'runId', l.run_id, 'persona', p.name, 'personaType', p.persona_type,
            'score', l.referee_score, 'scores', l.scores, 'transcript', l.transcript,
            'winningRebuttal', l.winning_rebuttal, 'refereeFeedback', l.referee_feedback,
            'definingMoment', l.defining_moment, 'tacticalSnippet', l.tactical_snippet,
            'breakthrough', l.breakthrough_status, 'confirmStatus', l.confirm_status,
            'confirmScore', l.confirm_score, 'auditStatus', l.audit_status, 'slackStatus', l.slack_status,
            'attempts', l.scout_attempts, 'simulated', r.simulated)
            order by l.ended_at, l.id)
            from leased l
            join sandbox_personas p on p.id = l.persona_id
            join training_runs r on r.id = l.run_id), '[]'));
$$;

-- Records a candidate's confirmation re-score and the rule's outcome; false if it was already
-- decided. A confirmed candidate becomes a breakthrough pending review and pending Slack
-- delivery. With p_as_audit, the same re-score also stands as the battle's audit pair.
create or replace function training_record_confirmation(
    p_battle_id uuid, p_model text, p_score numeric, p_scores jsonb, p_cost_usd numeric, p_confirmed boolean,
    p_reason text, p_as_audit boolean default false)
returns boolean
language plpgsql as $$
begin
    update sandbox_battles set
        confirm_status = case when p_confirmed then 'confirmed' else 'unconfirmed' end,
        confirm_score = p_score, confirm_reason = left(p_reason, 500), scout_error = null,
        breakthrough_status = case when p_confirmed then 'pending_review' else breakthrough_status end,
        breakthrough_detected_at = case when p_confirmed then now() else breakthrough_detected_at end,
        slack_status = case when p_confirmed then 'pending' else slack_status end,
        updated_at = now()
    where id = p_battle_id and confirm_status = 'pending';
    if not found then
        return false;
    end if;
    insert into training_rescores (battle_id, purpose, model, score, scores, cost_usd)
    values (p_battle_id, 'confirm', p_model, p_score, p_scores, p_cost_usd);
    if p_as_audit then
        perform training_record_audit(p_battle_id, p_model, p_score, p_scores, 0);
    end if;
    return true;
end;
$$;

-- Records an audit re-score; false if the battle awaited none (already audited, or not picked).
create or replace function training_record_audit(p_battle_id uuid, p_model text, p_score numeric,
                                                 p_scores jsonb, p_cost_usd numeric)
returns boolean
language plpgsql as $$
begin
    update sandbox_battles set audit_status = 'done', scout_error = null
    where id = p_battle_id and audit_status = 'pending';
    if not found then
        return false;
    end if;
    insert into training_rescores (battle_id, purpose, model, score, scores, cost_usd)
    values (p_battle_id, 'audit', p_model, p_score, p_scores, p_cost_usd);
    return true;
end;
$$;

-- A model call for this battle failed (not for lack of time or budget): counted, reason kept.
create or replace function training_record_scout_error(p_battle_id uuid, p_error text)
returns integer
language sql as $$
    update sandbox_battles set scout_attempts = scout_attempts + 1, scout_error = left(p_error, 500)
    where id = p_battle_id
    returning scout_attempts;
$$;

-- What the scout has left to do, what it gave up on, and where Slack delivery stands.
create or replace function training_scout_state(p_max_attempts integer)
returns jsonb
language sql stable as $$
    select jsonb_build_object(
        'confirmPending', count(*) filter (where confirm_status = 'pending' and scout_attempts < p_max_attempts),
        'auditPending', count(*) filter (where audit_status = 'pending' and scout_attempts < p_max_attempts),
        'momentsPending', count(*) filter (where breakthrough_status is not null and defining_moment is null
                                           and scout_attempts < p_max_attempts),
        'gaveUp', count(*) filter (where scout_attempts >= p_max_attempts
                                   and (confirm_status = 'pending' or audit_status = 'pending'
                                        or (breakthrough_status is not null and defining_moment is null))),
        'unconfirmed', count(*) filter (where confirm_status = 'unconfirmed'),
        'slack', jsonb_build_object(
            'pending', count(*) filter (where breakthrough_status is not null and slack_status = 'pending'),
            'sent', count(*) filter (where slack_status = 'sent'),
            'failed', count(*) filter (where slack_status = 'failed')),
        'lastSlackFailure', (select jsonb_build_object('battleId', id, 'reason', slack_error)
                             from sandbox_battles where slack_status = 'failed'
                             order by breakthrough_detected_at desc nulls last limit 1),
        'lastError', (select jsonb_build_object('battleId', id, 'error', scout_error, 'attempts', scout_attempts)
                      from sandbox_battles where scout_error is not null
                      order by updated_at desc limit 1),
        'rescoreCost7d', (select coalesce(sum(cost_usd), 0) from training_rescores
                          where created_at > now() - interval '7 days'))
    from sandbox_battles;
$$;
