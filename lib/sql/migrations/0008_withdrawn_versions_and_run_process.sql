-- A candidate a person withdraws is `withdrawn` (status and decision), no longer recorded as
-- `rolled_back` like a canary's loss; and a run records the process running it, so that a run
-- refused as busy can say when that process is gone (lib/sql/functions/runs.sql).

alter table training_versions drop constraint training_versions_status_check;
alter table training_versions add constraint training_versions_status_check
    check (status in ('active', 'candidate', 'retired', 'rolled_back', 'withdrawn'));
alter table training_versions drop constraint training_versions_decision_check;
alter table training_versions add constraint training_versions_decision_check
    check (decision in ('pending', 'adopted', 'rolled_back', 'inconclusive', 'direct', 'withdrawn'));
-- Withdrawals recorded before: rolled_back, with the note the rollback wrote.
update training_versions set status = 'withdrawn', decision = 'withdrawn'
where decision = 'rolled_back' and note like 'withdrawn by a person%';

-- "host pid start-time" of the process running the run (set by the runner as the run starts).
alter table training_runs add column process text;
