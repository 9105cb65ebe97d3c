-- The autonomous loop (issue 20): the proposal queue, and the proposer's turn.

-- The proposal queue: changes to the closer waiting for their canary (lib/sql/functions/proposals.sql).
create table training_proposals (
    id integer generated always as identity primary key,
    kind text not null check (kind in ('add', 'remove', 'edit')),
    source text not null check (source in ('breakthrough', 'person', 'proposer', 'max_tactics')),
    -- The new text (add, edit); null for a removal.
    tactic_text text check (tactic_text is null or char_length(tactic_text) between 1 and 1000),
    -- The active tactic removed or edited; null for an addition.
    tactic_id uuid references sandbox_tactics (id),
    battle_id uuid references sandbox_battles (id) on delete set null,
    -- The scout's confirmation score of a breakthrough's proposal: the queue's order after a person's.
    confirm_score numeric(5, 2) check (confirm_score between 0 and 100),
    reasoning text,
    proposed_by text not null check (length(btrim(proposed_by)) > 0),
    status text not null default 'queued'
        check (status in ('queued', 'canary', 'adopted', 'rolled_back', 'inconclusive', 'vetoed', 'refused',
                          'withdrawn')),
    -- A person's place for it in the queue (1 first); fast-tracked ones come before every other.
    position integer check (position >= 1),
    fast_tracked boolean not null default false,
    version_id integer references training_versions (id),
    outcome text,
    created_at timestamptz not null default now(),
    decided_at timestamptz,
    announced_at timestamptz,
    -- What proposing it cost (the proposer's call), USD.
    cost_usd numeric(20, 12) not null default 0 check (cost_usd >= 0),
    check ((kind = 'remove') = (tactic_text is null)),
    check ((kind = 'add') = (tactic_id is null)),
    check ((status in ('queued', 'canary')) = (decided_at is null))
);
create unique index training_proposals_one_per_breakthrough on training_proposals (battle_id)
    where source = 'breakthrough';
create index training_proposals_queue_idx on training_proposals (status, created_at);

alter table training_proposals enable row level security;
comment on table training_proposals is 'The proposal queue: changes to the closer (add, remove or edit a tactic) waiting for their canary, with source, author and outcome.';

-- When the proposer last took its turn (every PROPOSER_EVERY completed battles).
alter table training_control add column proposer_turn_at timestamptz;
