-- SQL functions: closer versions, tactics and the canary.
-- Re-applied by every `python -m lib migrate`, after the pending migrations (lib/sql/migrations/README.md):
-- `create or replace` only; a function whose arguments change gets `drop function if exists
-- name(old argument types)` here, above it.

-- ---------------------------------------------------------------------------------------------
-- Closer versions and the canary
--
-- A version is immutable: its base prompt (text and SHA-256; recorded once by the first run for a
-- version made before any run read the prompt) and an ordered list of tactics. Exactly
-- one version is active and at most one is a candidate (two partial unique indexes); the others
-- are retired or rolled_back. Every battle records the version it ran, and its closer prompt is
-- built from that version alone. Promoting, deactivating or editing a tactic makes a candidate
-- from the active version; each run then pairs battles of both versions by persona (the canary),
-- and lib/canary.py decides after every run: adopted, rolled_back or inconclusive. A person may
-- adopt a change directly, or roll back to any earlier version; both are recorded as versions.
-- Every change to the versions takes one advisory lock, so two changes never interleave.
-- ---------------------------------------------------------------------------------------------

-- Tactic text as compared for repeats: lower case, each run of characters other than letters and
-- digits one space, trimmed (lib/simulator.py normalises the same way for its hidden effects).
create or replace function training_normalise_tactic(p_text text)
returns text
language sql immutable as $$
    select btrim(regexp_replace(lower(coalesce(p_text, '')), '[^[:alnum:]]+', ' ', 'g'));
$$;

-- The character trigrams of a tactic's normalised text, each word padded as pg_trgm pads it (two
-- spaces before, one after), so word starts weigh more than word middles.
create or replace function training_tactic_trigrams(p_text text)
returns setof text
language sql immutable as $$
    select distinct substr(padded, i, 3)
    from regexp_split_to_table(training_normalise_tactic(p_text), ' ') as word,
         lateral (select '  ' || word || ' ' as padded) p,
         lateral generate_series(1, length(padded) - 2) as i
    where word <> '';
$$;

-- How alike two tactics are: the Jaccard index of their trigram sets (shared / all), 0 to 1.
create or replace function training_tactic_similarity(p_a text, p_b text)
returns numeric
language sql immutable as $$
    with a as (select training_tactic_trigrams(p_a) as g), b as (select training_tactic_trigrams(p_b) as g),
         counts as (select (select count(*) from (select g from a intersect select g from b) i) as shared,
                           (select count(*) from (select g from a union select g from b) u) as total)
    select case when total = 0 then 0 else round(shared::numeric / total, 2) end from counts;
$$;

-- A tactic's text quoted in a message: at most 80 characters.
create or replace function training_quote_tactic(p_text text)
returns text
language sql immutable as $$
    select '"' || case when length(p_text) > 80 then left(p_text, 77) || '...' else p_text end || '"';
$$;

-- Why a tactic may not join these tactics, or null: empty, longer than 1,000 characters, the same
-- as one of them once normalised, or a near-duplicate (trigram similarity 0.6 or more).
create or replace function training_tactic_refusal(p_text text, p_tactic_ids uuid[])
returns text
language plpgsql stable as $$
declare
    candidate text := btrim(coalesce(p_text, ''));
    other record;
    similarity numeric;
begin
    if training_normalise_tactic(candidate) = '' then
        return 'a tactic cannot be empty';
    end if;
    if length(candidate) > 1000 then
        return format('a tactic is at most 1000 characters; this one has %s', length(candidate));
    end if;
    for other in
        select t.tactic_text from unnest(p_tactic_ids) with ordinality as u(id, position)
        join sandbox_tactics t on t.id = u.id order by u.position
    loop
        if training_normalise_tactic(other.tactic_text) = training_normalise_tactic(candidate) then
            return format('this tactic repeats the active tactic %s', training_quote_tactic(other.tactic_text));
        end if;
        similarity := training_tactic_similarity(candidate, other.tactic_text);
        if similarity >= 0.6 then
            return format('this tactic nearly repeats the active tactic %s (similarity %s; 0.6 or more counts as '
                          'a repeat)', training_quote_tactic(other.tactic_text), similarity);
        end if;
    end loop;
    return null;
end;
$$;

-- Keeps sandbox_tactics.is_active meaning "in the active version" (older readers use it).
create or replace function training_sync_tactics()
returns void
language sql as $$
    update sandbox_tactics t set is_active = (t.id = any(v.tactic_ids))
    from training_versions v
    where v.status = 'active' and t.is_active is distinct from (t.id = any(v.tactic_ids));
$$;

-- The active version; without one (a fresh or upgraded database), the baseline: the tactics active
-- until now, by priority. Its base prompt is recorded by the first run (training_start_run).
create or replace function training_ensure_active_version()
returns training_versions
language plpgsql as $$
declare
    active training_versions%rowtype;
begin
    select * into active from training_versions where status = 'active';
    if found then
        return active;
    end if;
    perform pg_advisory_xact_lock(hashtext('training_versions'));
    select * into active from training_versions where status = 'active';
    if found then
        return active;
    end if;
    insert into training_versions (status, tactic_ids, change)
    select 'active', coalesce(array_agg(t.id order by t.priority, t.promoted_at), '{}'),
           format('Baseline: the closer as it was before versions (%s active tactics)', count(*))
    from sandbox_tactics t where t.is_active
    returning * into active;
    return active;
end;
$$;

-- Records the base prompt the runner read from CLOSER_PROMPT_PATH. The baseline takes it as its
-- own (and so does a candidate made on it before any run); a different prompt makes a new active version at once (decision `direct`), and a candidate
-- under canary restarts on it (its pairs no longer compare like with like).
create or replace function training_record_base_prompt(p_base_prompt text)
returns void
language plpgsql as $$
declare
    sha text := encode(sha256(convert_to(p_base_prompt, 'UTF8')), 'hex');
    active training_versions%rowtype;
    candidate training_versions%rowtype;
    fresh training_versions%rowtype;
begin
    active := training_ensure_active_version();
    if active.base_prompt_sha256 = sha then
        return;
    end if;
    perform pg_advisory_xact_lock(hashtext('training_versions'));
    select * into active from training_versions where status = 'active' for update;
    if active.base_prompt_sha256 is null then
        -- Made before any run read the prompt (the baseline, a candidate on it): they take this one.
        update training_versions set base_prompt = p_base_prompt, base_prompt_sha256 = sha
        where base_prompt_sha256 is null and status in ('active', 'candidate');
        return;
    elsif active.base_prompt_sha256 = sha then
        return;
    end if;
    select * into candidate from training_versions where status = 'candidate' for update;
    if found then
        update training_versions set status = 'retired', decision = 'inconclusive', decided_at = now(),
            note = 'superseded: the base prompt changed, so the canary restarted as a new candidate'
        where id = candidate.id;
    end if;
    update training_versions set status = 'retired' where id = active.id;
    insert into training_versions (parent_id, status, base_prompt, base_prompt_sha256, tactic_ids, change, decision,
                                   decided_at)
    values (active.id, 'active', p_base_prompt, sha, active.tactic_ids,
            format('Base prompt changed (CLOSER_PROMPT_PATH): sha256 %s… → %s…',
                   left(active.base_prompt_sha256, 8), left(sha, 8)), 'direct', now())
    returning * into fresh;
    if candidate.id is not null then
        insert into training_versions (parent_id, status, base_prompt, base_prompt_sha256, tactic_ids, change,
                                       decision)
        values (fresh.id, 'candidate', p_base_prompt, sha, candidate.tactic_ids,
                format('%s (restarted on the new base prompt; was v%s)', candidate.change, candidate.id), 'pending')
        returning * into fresh;
        update training_proposals set version_id = fresh.id where version_id = candidate.id and status = 'canary';
    end if;
end;
$$;

-- What a run needs of a version to build its closer prompt.
create or replace function training_version_prompt(p_version_id integer)
returns jsonb
language sql stable as $$
    select jsonb_build_object('id', v.id, 'basePrompt', v.base_prompt,
        'tactics', coalesce((select jsonb_agg(t.tactic_text order by u.position)
                             from unnest(v.tactic_ids) with ordinality as u(id, position)
                             join sandbox_tactics t on t.id = u.id), '[]'))
    from training_versions v where v.id = p_version_id;
$$;

-- Leases up to p_count free active personas for the canary's pairs: those the candidate has battled
-- least first, ties at random, so every persona's pair count stays within one of the others' and
-- does not follow the rotation order. Returned in random order.
create or replace function training_lease_pair_personas(p_run_id uuid, p_count integer, p_candidate_id integer)
returns jsonb
language sql as $$
    with paired as (
        select persona_id, count(*) as pairs from sandbox_battles where version_id = p_candidate_id
        group by persona_id
    ), free as (
        select p.id from sandbox_personas p
        left join paired on paired.persona_id = p.id
        where p.is_active
          and (p.lease_run_id is null
               or not exists (select 1 from training_runs r where r.id = p.lease_run_id and r.status = 'running'))
        order by coalesce(paired.pairs, 0), random()
        limit p_count
        for update of p skip locked
    ), leased as (
        update sandbox_personas p set lease_run_id = p_run_id from free where p.id = free.id returning p.*
    )
    select jsonb_agg(jsonb_build_object(
               'id', id, 'name', name, 'persona_type', persona_type, 'system_prompt', system_prompt,
               'characteristics', characteristics, 'attack_patterns', attack_patterns)
               order by random())
    from leased;
$$;

-- The battles of a run: the first p_pairs of p_personas battle both versions, each pair's two
-- battles one after the other in an order drawn by a fair coin (`pairOrder` 1 and 2, recorded on
-- the battles), so a deadline that cuts late starters cuts either version equally often; then the
-- rest battle the active version only.
create or replace function training_plan_battles(p_personas jsonb, p_pairs integer, p_active_id integer,
                                                 p_candidate_id integer)
returns jsonb
language sql volatile as $$
    select coalesce(jsonb_agg(jsonb_build_object('persona', persona, 'versionId', version_id, 'pairOrder', pair_order)
                              order by position, pair_order), '[]')
    from (select persona, position, random() < 0.5 as candidate_first
          from jsonb_array_elements(p_personas) with ordinality as p(persona, position)) p,
         lateral (select p_active_id as version_id,
                         case when position > p_pairs or p_candidate_id is null then null
                              when candidate_first then 2 else 1 end::smallint as pair_order
                  union all
                  select p_candidate_id, case when candidate_first then 1 else 2 end::smallint
                  where position <= p_pairs and p_candidate_id is not null) v;
$$;

-- The tactics of the active version, in its order (before there is one: those a baseline would take).
create or replace function training_active_tactics()
returns table (id uuid, tactic_text text, priority integer)
language sql stable as $$
    select x.id, x.tactic_text, x.priority from (
        select t.id, t.tactic_text, t.priority, u.position as rank
        from training_versions v
        cross join lateral unnest(v.tactic_ids) with ordinality as u(id, position)
        join sandbox_tactics t on t.id = u.id
        where v.status = 'active'
        union all
        select t.id, t.tactic_text, t.priority, row_number() over (order by t.priority, t.promoted_at)
        from sandbox_tactics t
        where t.is_active and not exists (select 1 from training_versions where status = 'active')
    ) x order by x.rank;
$$;

-- One version as the dashboard and `python -m lib versions` show it. `battles` and `meanScore`
-- count its completed battles; `pairs`, `diff` and `ci95` are its canary against its parent as of
-- the last look (the test's boundary turned around, lib/canary.py).
create or replace function training_version_json(p_version training_versions)
returns jsonb
language sql stable as $$
    select jsonb_build_object(
        'id', p_version.id, 'status', p_version.status, 'parentId', p_version.parent_id,
        'change', p_version.change, 'createdAt', p_version.created_at,
        'battles', s.battles, 'meanScore', s.mean_score,
        'ci95', case when p_version.ci_low is null then null
                     else jsonb_build_array(p_version.ci_low, p_version.ci_high) end,
        'decision', p_version.decision, 'pairs', p_version.pairs, 'diff', p_version.diff,
        'unit', p_version.canary_unit, 'decidedAt', p_version.decided_at, 'note', p_version.note)
    from (select count(*) as battles, round(avg(referee_score), 2) as mean_score
          from sandbox_battles where version_id = p_version.id and status = 'completed') s;
$$;

-- Every version, newest first (the baseline made first if need be), and the canary in progress
-- (null without a candidate) with the spread (standard deviation) of its pairs' differences in
-- its unit (fixed at its first look, else p_unit, CANARY_VERDICT: score points, or head-to-head
-- verdicts × 100), and that unit.
drop function if exists training_version_list(integer);
create or replace function training_version_list(p_max_pairs integer, p_unit text default 'score')
returns jsonb
language plpgsql as $$
declare
    so_far jsonb;  -- the canary's pairs (training_canary_pairs)
begin
    perform training_ensure_active_version();
    so_far := training_canary_pairs(p_unit);
    return jsonb_build_object(
        'versions', coalesce((select jsonb_agg(training_version_json(v) order by v.id desc)
                              from training_versions v), '[]'),
        'canary', (select jsonb_build_object(
                       'candidateId', c.id, 'activeId', c.parent_id, 'pairs', c.pairs, 'maxPairs', p_max_pairs,
                       'diff', c.diff, 'unit', coalesce(so_far ->> 'unit', p_unit),
                       'ci95', case when c.ci_low is null then null else jsonb_build_array(c.ci_low, c.ci_high) end,
                       'spread', (select round(stddev_samp(d::numeric), 2)
                                  from jsonb_array_elements_text(so_far -> 'diffs') as d),
                       'positionBias', so_far -> 'positionBias', 'incomplete', so_far -> 'incomplete')
                   from training_versions c where c.status = 'candidate'));
end;
$$;

-- A new version from the active one with these tactics: a candidate for the canary, or with
-- p_direct (a person's explicit choice) the active version at once. One candidate at a time. The
-- caller holds the versions lock.
create or replace function training_new_version(p_tactic_ids uuid[], p_change text, p_direct boolean)
returns jsonb
language plpgsql as $$
declare
    active training_versions%rowtype;
    pending training_versions%rowtype;
    fresh training_versions%rowtype;
begin
    active := training_ensure_active_version();
    select * into pending from training_versions where status = 'candidate';
    if found then
        raise exception 'v% is still under canary (%); wait for its decision, or withdraw it with: python -m lib '
                        'rollback %', pending.id, pending.change, active.id using errcode = 'P0001';
    end if;
    if p_tactic_ids = active.tactic_ids then
        raise exception 'no change: the active version v% already has exactly these tactics', active.id
            using errcode = 'P0001';
    end if;
    if p_direct then
        update training_versions set status = 'retired' where id = active.id;
    end if;
    insert into training_versions (parent_id, status, base_prompt, base_prompt_sha256, tactic_ids, change, decision,
                                   decided_at)
    values (active.id, case when p_direct then 'active' else 'candidate' end, active.base_prompt,
            active.base_prompt_sha256, p_tactic_ids, p_change, case when p_direct then 'direct' else 'pending' end,
            case when p_direct then now() end)
    returning * into fresh;
    perform training_sync_tactics();
    return jsonb_build_object(
        'message', case when p_direct then format('v%s adopted directly (no canary)', fresh.id)
                        else format('candidate v%s created, canary started against v%s', fresh.id, active.id) end,
        'version', training_version_json(fresh));
end;
$$;

-- Promotes a breakthrough's tactic (the snippet unless edited): a candidate = the active version
-- plus the tactic, or with p_direct the new active version. Refused, with the reason, for an empty,
-- too long or repeated tactic; the breakthrough then stays pending.
create or replace function training_promote_breakthrough(p_battle_id uuid, p_tactic_text text default null,
                                                         p_direct boolean default false)
returns jsonb
language plpgsql as $$
declare
    battle sandbox_battles%rowtype;
    tactic sandbox_tactics%rowtype;
    active training_versions%rowtype;
    new_text text;
    refusal text;
    result jsonb;
begin
    perform pg_advisory_xact_lock(hashtext('training_versions'));
    select * into battle from sandbox_battles where id = p_battle_id for update;
    if not found then
        raise exception 'no such battle %', p_battle_id using errcode = 'P0001';
    end if;
    if battle.breakthrough_status is null then
        raise exception 'battle % is not a breakthrough', p_battle_id using errcode = 'P0001';
    end if;
    if battle.breakthrough_status = 'promoted' then
        raise exception 'battle % is already promoted', p_battle_id using errcode = 'P0001';
    end if;
    new_text := btrim(coalesce(p_tactic_text, battle.tactical_snippet, ''));
    if p_tactic_text is null and new_text = '' then
        raise exception 'no tactic text: the scout has not extracted a snippet yet' using errcode = 'P0001';
    end if;
    active := training_ensure_active_version();
    refusal := training_tactic_refusal(new_text, active.tactic_ids);
    if refusal is not null then
        raise exception 'refused: %', refusal using errcode = 'P0001';
    end if;
    insert into sandbox_tactics (battle_id, tactic_text, is_active) values (p_battle_id, new_text, false)
    returning * into tactic;
    result := training_new_version(active.tactic_ids || tactic.id,
                                   format('Promoted %s (battle %s)', training_quote_tactic(new_text),
                                          left(p_battle_id::text, 8)), coalesce(p_direct, false));
    update sandbox_battles set breakthrough_status = 'promoted', updated_at = now() where id = p_battle_id;
    select * into tactic from sandbox_tactics where id = tactic.id;
    return result || jsonb_build_object('tactic', to_jsonb(tactic));
end;
$$;

-- A candidate without one of the active version's tactics (or, with p_direct, at once).
create or replace function training_deactivate_tactic(p_tactic_id uuid, p_direct boolean default false)
returns jsonb
language plpgsql as $$
declare
    active training_versions%rowtype;
    tactic sandbox_tactics%rowtype;
begin
    perform pg_advisory_xact_lock(hashtext('training_versions'));
    active := training_ensure_active_version();
    select * into tactic from sandbox_tactics where id = p_tactic_id;
    if not found or not (p_tactic_id = any(active.tactic_ids)) then
        raise exception 'tactic % is not in the active version v%', p_tactic_id, active.id using errcode = 'P0001';
    end if;
    return training_new_version(array_remove(active.tactic_ids, p_tactic_id),
                                format('Deactivated %s', training_quote_tactic(tactic.tactic_text)),
                                coalesce(p_direct, false));
end;
$$;

-- A candidate with one of the active version's tactics reworded, in the same place (or, with
-- p_direct, at once). The new text is checked like a promotion's, against the other tactics.
create or replace function training_edit_tactic(p_tactic_id uuid, p_tactic_text text, p_direct boolean default false)
returns jsonb
language plpgsql as $$
declare
    active training_versions%rowtype;
    old sandbox_tactics%rowtype;
    edited sandbox_tactics%rowtype;
    refusal text;
begin
    perform pg_advisory_xact_lock(hashtext('training_versions'));
    active := training_ensure_active_version();
    select * into old from sandbox_tactics where id = p_tactic_id;
    if not found or not (p_tactic_id = any(active.tactic_ids)) then
        raise exception 'tactic % is not in the active version v%', p_tactic_id, active.id using errcode = 'P0001';
    end if;
    if training_normalise_tactic(p_tactic_text) = training_normalise_tactic(old.tactic_text)
       and training_normalise_tactic(p_tactic_text) <> '' then
        raise exception 'no change: the new text is the same tactic' using errcode = 'P0001';
    end if;
    refusal := training_tactic_refusal(p_tactic_text, array_remove(active.tactic_ids, p_tactic_id));
    if refusal is not null then
        raise exception 'refused: %', refusal using errcode = 'P0001';
    end if;
    insert into sandbox_tactics (battle_id, tactic_text, is_active)
    values (old.battle_id, btrim(p_tactic_text), false) returning * into edited;
    return training_new_version(array_replace(active.tactic_ids, p_tactic_id, edited.id),
                                format('Edited %s to %s', training_quote_tactic(old.tactic_text),
                                       training_quote_tactic(edited.tactic_text)), coalesce(p_direct, false));
end;
$$;

-- A person's roll back, immediate (no canary): a new active version with the tactics of
-- p_version_id (the base prompt stays the current one: it follows CLOSER_PROMPT_PATH); the version
-- it replaces is rolled_back, a candidate under canary is withdrawn. Rolling back to the active
-- version itself withdraws the candidate. Only to a version that was once active (the baseline,
-- or adopted or made active directly): any other would be adopted with no canary, so it takes
-- p_force (a person's explicit choice).
drop function if exists training_rollback_version(integer);
create or replace function training_rollback_version(p_version_id integer, p_force boolean default false)
returns jsonb
language plpgsql as $$
declare
    active training_versions%rowtype;
    target training_versions%rowtype;
    pending training_versions%rowtype;
    fresh training_versions%rowtype;
begin
    perform pg_advisory_xact_lock(hashtext('training_versions'));
    active := training_ensure_active_version();
    select * into target from training_versions where id = p_version_id;
    if not found then
        raise exception 'there is no version v%', p_version_id using errcode = 'P0001';
    end if;
    if target.status = 'candidate' then
        raise exception 'v% is the candidate under canary: it becomes active only by its canary (or withdraw it '
                        'with: python -m lib rollback %)', target.id, active.id using errcode = 'P0001';
    end if;
    if not p_force and target.decision is not null and target.decision not in ('adopted', 'direct') then
        raise exception 'v% was never active (%): rolling back to it would adopt it without a canary; promote its '
                        'change as a candidate instead, or force it (python -m lib rollback % --force, or the '
                        'dashboard action with "force": true)',
                        target.id, case target.decision when 'withdrawn' then 'a withdrawn candidate'
                                                          when 'rolled_back' then 'its canary rolled it back'
                                                          else 'its canary was inconclusive' end,
                        target.id using errcode = 'P0001';
    end if;
    select * into pending from training_versions where status = 'candidate';
    if target.id = active.id and pending.id is null then
        raise exception 'v% is already the active version', active.id using errcode = 'P0001';
    end if;
    if pending.id is not null then
        update training_versions set status = 'withdrawn', decision = 'withdrawn', decided_at = now(),
            note = format('withdrawn by a person (rollback to v%s) after %s pairs', target.id, pending.pairs)
        where id = pending.id;
        perform training_close_proposal(pending.id, 'withdrawn', format('withdrawn by a person (rollback to v%s)', target.id));
    end if;
    if target.id = active.id then
        return jsonb_build_object('message', format('candidate v%s withdrawn; v%s stays active', pending.id, active.id),
                                  'version', training_version_json(active));
    end if;
    update training_versions set status = 'rolled_back', note = format('rolled back by a person to v%s', target.id)
    where id = active.id;
    insert into training_versions (parent_id, status, base_prompt, base_prompt_sha256, tactic_ids, change, decision,
                                   decided_at)
    values (active.id, 'active', active.base_prompt, active.base_prompt_sha256, target.tactic_ids,
            format('Rolled back to v%s', target.id)
                || case when target.decision not in ('adopted', 'direct') then ' (forced: it was never active)' else '' end,
            'direct', now())
    returning * into fresh;
    perform training_sync_tactics();
    return jsonb_build_object('message', format('rolled back to v%s: v%s is active', target.id, fresh.id),
                              'version', training_version_json(fresh));
end;
$$;

-- Records a look at the canary (lib/canary.py decides): the figures, and a decision other than
-- pending changes the versions: adopted (the candidate becomes active, its parent retired),
-- rolled_back, or inconclusive (the candidate retired, the active version stays). Returns
-- {"recorded": false} if it is no longer the candidate (another look or a person got there first),
-- and also ("stale": true) if an earlier look recorded more pairs than this one counted. The look
-- that decided, called again with its p_look_id (a retry whose first answer was lost), gets the
-- same answer, so its Slack message still goes out. p_unit (the look's unit, 'score' or
-- 'head_to_head') is fixed on the candidate at its first look: a look in another unit (the
-- setting changed mid-canary) records nothing ("unit": the canary's).
drop function if exists training_record_canary(integer, text, integer, numeric, numeric, numeric, integer);
drop function if exists training_record_canary(integer, text, integer, numeric, numeric, numeric, integer, uuid);
create or replace function training_record_canary(p_candidate_id integer, p_decision text, p_pairs integer,
                                                  p_diff numeric, p_ci_low numeric, p_ci_high numeric,
                                                  p_max_pairs integer, p_look_id uuid default null,
                                                  p_unit text default 'score')
returns jsonb
language plpgsql as $$
declare
    candidate training_versions%rowtype;
    parent training_versions%rowtype;
begin
    if p_decision not in ('pending', 'adopted', 'rolled_back', 'inconclusive') then
        raise exception 'a canary decision is pending, adopted, rolled_back or inconclusive, not %', p_decision
            using errcode = 'P0001';
    end if;
    perform pg_advisory_xact_lock(hashtext('training_versions'));
    select * into candidate from training_versions where id = p_candidate_id for update;
    if not found then
        return jsonb_build_object('recorded', false, 'decided', false);
    end if;
    select * into parent from training_versions where id = candidate.parent_id;
    if candidate.status <> 'candidate' then
        if p_look_id is null or candidate.decided_by_look is distinct from p_look_id then
            return jsonb_build_object('recorded', false, 'decided', false);
        end if;
        p_decision := candidate.decision;  -- this look decided: the same answer again
    else
        if p_unit is null or p_unit not in ('score', 'head_to_head') then
            raise exception 'a canary unit is score or head_to_head, not %', coalesce(p_unit, 'null')
                using errcode = '22023';
        end if;
        if candidate.canary_unit <> p_unit then  -- null (before its first look): any unit
            return jsonb_build_object('recorded', false, 'decided', false, 'unit', candidate.canary_unit);
        end if;
        -- Pairs only accumulate: a look that counted fewer than the recorded figures is stale (a
        -- slower run's look finishing after a newer one) and changes nothing.
        if p_pairs < candidate.pairs then
            return jsonb_build_object('recorded', false, 'decided', false, 'stale', true);
        end if;
        update training_versions set pairs = p_pairs, diff = p_diff, ci_low = p_ci_low, ci_high = p_ci_high,
                                     canary_unit = p_unit
        where id = candidate.id;
        if p_decision = 'pending' then
            return jsonb_build_object('recorded', true, 'decided', false);
        end if;
        if p_decision = 'adopted' then
            update training_versions set status = 'retired' where id = parent.id and status = 'active';
        end if;
        update training_versions set
            status = case p_decision when 'adopted' then 'active' when 'rolled_back' then 'rolled_back'
                                     else 'retired' end,
            decision = p_decision, decided_at = now(), decided_by_look = p_look_id,
            note = case p_decision
                when 'adopted' then format('adopted by the canary after %s pairs', p_pairs)
                when 'rolled_back' then format('rolled back by the canary after %s pairs', p_pairs)
                else format('no clear difference after %s pairs (CANARY_MAX_PAIRS %s); v%s stays active',
                            p_pairs, p_max_pairs, parent.id) end
        where id = candidate.id
        returning * into candidate;
        perform training_close_proposal(candidate.id, p_decision, candidate.note);
        perform training_sync_tactics();
    end if;
    return jsonb_build_object(
        'recorded', true, 'decided', true,
        'message', case p_decision
            when 'adopted' then format('v%s adopted: it beat v%s', candidate.id, parent.id)
            when 'rolled_back' then format('v%s rolled back: it did worse than v%s, which stays active',
                                            candidate.id, parent.id)
            else format('v%s inconclusive: no clear difference from v%s, which stays active', candidate.id,
                        parent.id) end,
        'version', training_version_json(candidate), 'parent', training_version_json(parent));
end;
$$;

-- The active version's tactics and base prompt (the dashboard builds the prompt preview from them).
create or replace function training_dashboard_tactics()
returns jsonb
language plpgsql as $$
declare
    active training_versions%rowtype := training_ensure_active_version();
begin
    return jsonb_build_object(
        'versionId', active.id, 'basePrompt', active.base_prompt,
        'tactics', coalesce((select jsonb_agg(jsonb_build_object('id', t.id, 'text', t.tactic_text,
                                                                 'battleId', t.battle_id, 'promotedAt', t.promoted_at)
                                              order by u.position)
                             from unnest(active.tactic_ids) with ordinality as u(id, position)
                             join sandbox_tactics t on t.id = u.id), '[]'));
end;
$$;
