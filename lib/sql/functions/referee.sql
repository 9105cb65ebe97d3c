-- SQL functions: the referee's consistency, precision, calibrations and drift alerts.
-- Re-applied by every `python -m lib migrate`, after the pending migrations (lib/sql/migrations/README.md):
-- `create or replace` only; a function whose arguments change gets `drop function if exists
-- name(old argument types)` here, above it.

-- The referee's consistency over the audit pairs of the last p_days: the mean absolute difference
-- of totals, the share of pairs on the same side of the cutoff, the mean absolute difference per
-- criterion. Audits only: confirmations re-score only high first scores, a biased sample.
create or replace function training_referee_consistency(p_days integer, p_threshold integer)
returns jsonb
language sql stable as $$
    with pairs as (
        select b.referee_score as first, r.score as second, b.scores as first_scores, r.scores as second_scores
        from training_rescores r
        join sandbox_battles b on b.id = r.battle_id
        where r.purpose = 'audit' and r.created_at > now() - make_interval(days => p_days)
          and b.referee_score is not null
    ), criteria as (
        select c.key, round(avg(abs((p.first_scores ->> c.key)::numeric - (p.second_scores ->> c.key)::numeric)), 2)
                   as diff
        from pairs p
        cross join lateral jsonb_object_keys(p.second_scores) as c(key)
        where jsonb_typeof(p.first_scores -> c.key) = 'number' and jsonb_typeof(p.second_scores -> c.key) = 'number'
        group by c.key
    )
    select jsonb_build_object(
        'days', p_days,
        'pairs', (select count(*) from pairs),
        'meanAbsDiff', (select round(avg(abs(first - second)), 2) from pairs),
        'agreement', (select round(avg(case when (first >= p_threshold) = (second >= p_threshold) then 1 else 0 end), 4)
                      from pairs),
        'perCriterion', coalesce((select jsonb_object_agg(key, diff) from criteria), '{}'));
$$;

-- Reviewers' decisions as labels over the breakthroughs flagged in the last p_days: promoted is a
-- real breakthrough, rejected is not, reviewed is neither. Per persona type, the precision needs
-- p_min_decisions decisions (else null).
create or replace function training_referee_precision(p_days integer, p_min_decisions integer)
returns jsonb
language sql stable as $$
    with decided as (
        select case when b.breakthrough_status = 'promoted' then 1.0 else 0.0 end as real, p.persona_type
        from sandbox_battles b
        join sandbox_personas p on p.id = b.persona_id
        where b.breakthrough_status in ('promoted', 'rejected')
          and b.breakthrough_detected_at > now() - make_interval(days => p_days)
    ), by_type as (
        select persona_type, count(*) as decisions, round(avg(real), 4) as precision
        from decided group by persona_type
    )
    select jsonb_build_object(
        'days', p_days,
        'decisions', (select count(*) from decided),
        'precision', (select round(avg(real), 4) from decided),
        'byPersonaType', coalesce((select jsonb_agg(jsonb_build_object(
            'type', persona_type, 'decisions', decisions,
            'precision', case when decisions >= p_min_decisions then precision end)
            order by decisions desc, persona_type) from by_type), '[]'));
$$;

-- The dashboard's Referee panel and the referee part of python -m lib status.
create or replace function training_referee_report(p_threshold integer, p_consistency_days integer,
                                                   p_precision_days integer, p_min_decisions integer)
returns jsonb
language sql stable as $$
    select jsonb_build_object(
        'consistency', training_referee_consistency(p_consistency_days, p_threshold),
        'precision', training_referee_precision(p_precision_days, p_min_decisions),
        'unconfirmed', coalesce((select jsonb_agg(item order by seen desc) from (
            select jsonb_build_object('id', b.id, 'persona', p.name, 'score', b.referee_score,
                                      'confirmScore', b.confirm_score, 'reason', b.confirm_reason,
                                      'detectedAt', b.scout_seen_at) as item, b.scout_seen_at as seen
            from sandbox_battles b join sandbox_personas p on p.id = b.persona_id
            where b.confirm_status = 'unconfirmed'
            order by b.scout_seen_at desc limit 20) x), '[]'),
        'calibration', (select jsonb_build_object('at', created_at, 'model', model, 'spearman', spearman,
                                                  'inBand', in_band, 'items', items)
                        from training_referee_calibrations order by created_at desc limit 1));
$$;

create or replace function training_record_calibration(p_model text, p_simulated boolean, p_spearman numeric,
                                                       p_in_band numeric, p_items integer, p_cost_usd numeric,
                                                       p_result jsonb)
returns jsonb
language sql as $$
    insert into training_referee_calibrations (model, simulated, spearman, in_band, items, cost_usd, result)
    values (p_model, p_simulated, p_spearman, p_in_band, p_items, p_cost_usd, p_result)
    returning jsonb_build_object('id', id, 'at', created_at, 'model', model, 'spearman', spearman,
                                 'inBand', in_band, 'items', items);
$$;

-- Claims today's drift alert: its id, or null when one was sent in the last 24 hours.
create or replace function training_claim_drift_alert(p_mean_abs_diff numeric, p_pairs integer)
returns uuid
language plpgsql as $$
declare
    claimed uuid;
begin
    perform pg_advisory_xact_lock(hashtext('training_referee_drift_alert'));
    if exists (select 1 from training_referee_drift_alerts where sent_at > now() - interval '1 day') then
        return null;
    end if;
    insert into training_referee_drift_alerts (mean_abs_diff, pairs) values (p_mean_abs_diff, p_pairs)
    returning id into claimed;
    return claimed;
end;
$$;

-- Slack did not take the drift alert (a transient failure): the next scan may try again.
create or replace function training_release_drift_alert(p_id uuid)
returns void
language sql as $$
    delete from training_referee_drift_alerts where id = p_id;
$$;
