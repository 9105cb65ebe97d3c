-- The canary look that recorded a version's decision (lib/followups.py draws an id per look): the
-- same call again, a retry whose first answer was lost, gets that decision back from
-- training_record_canary (and its Slack message goes out); another look gets {"recorded": false}.

alter table training_versions add column decided_by_look uuid;
