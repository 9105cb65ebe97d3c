-- The second release, part 3: closer versions (lib/sql/functions/versions.sql says what they are).

create table if not exists training_versions (
    id integer generated always as identity primary key,
    parent_id integer references training_versions (id),
    status text not null check (status in ('active', 'candidate', 'retired', 'rolled_back')),
    base_prompt text,
    base_prompt_sha256 text check (base_prompt_sha256 ~ '^[0-9a-f]{64}$'),
    tactic_ids uuid[] not null default '{}',
    change text not null check (length(btrim(change)) > 0),
    decision text check (decision in ('pending', 'adopted', 'rolled_back', 'inconclusive', 'direct')),
    pairs integer not null default 0 check (pairs >= 0),
    diff numeric(6, 2),
    ci_low numeric(6, 2),
    ci_high numeric(6, 2),
    note text,
    created_at timestamptz not null default now(),
    decided_at timestamptz,
    check ((status = 'candidate') = (decision is not distinct from 'pending')),
    check ((base_prompt is null) = (base_prompt_sha256 is null)),
    check ((ci_low is null) = (ci_high is null) and ci_low <= ci_high)
);
create unique index if not exists training_versions_one_active on training_versions ((true)) where status = 'active';
create unique index if not exists training_versions_one_candidate on training_versions ((true))
    where status = 'candidate';

alter table sandbox_battles add column if not exists version_id integer references training_versions (id);
-- The canary's pairs: completed battles of a version, matched by run and persona.
create index if not exists sandbox_battles_version_idx on sandbox_battles (version_id, run_id, persona_id)
    where status = 'completed';

alter table training_versions enable row level security;
comment on table training_versions is 'Closer versions: a base prompt and an ordered tactic list; one active, at most one candidate under canary, with each decision and its figures.';

-- A database holding battles or tactics gets its baseline (the tactics active until now, by
-- priority; as training_ensure_active_version makes it), and its battles belong to it.
insert into training_versions (status, tactic_ids, change)
select 'active', coalesce(array_agg(t.id order by t.priority, t.promoted_at), '{}'),
       format('Baseline: the closer as it was before versions (%s active tactics)', count(*))
from sandbox_tactics t where t.is_active
having (exists (select 1 from sandbox_battles) or exists (select 1 from sandbox_tactics))
   and not exists (select 1 from training_versions);
update sandbox_battles set version_id = (select min(id) from training_versions) where version_id is null;
