-- The first release's functions (unprefixed: Supabase's public schema is shared with the host app)
-- and the development signatures replaced since. Today's functions are in lib/sql/functions/.

-- Functions of the first release (unprefixed), renamed or split since.
drop function if exists upsert_personas(jsonb);
drop function if exists persona_names();
drop function if exists set_training_paused(boolean, text);
drop function if exists close_orphaned_runs(integer);
drop function if exists tally_run(uuid, integer);
drop function if exists start_training_run(text, integer, integer, numeric, integer, integer, boolean, integer);
drop function if exists active_tactics();
drop function if exists start_battle(uuid, uuid);
drop function if exists record_battle_progress(uuid, jsonb, integer, integer, integer, integer, numeric);
drop function if exists finish_battle(uuid, text, jsonb, integer, integer, integer, integer, numeric, numeric,
                                      jsonb, text, text, boolean, text);
drop function if exists finish_training_run(uuid, text, text, boolean, boolean, jsonb, integer, integer, text, text);
drop function if exists set_scout_notified(uuid, boolean);
drop function if exists claim_scout_work(integer, integer, integer);
drop function if exists record_defining_moment(uuid, text, text);
drop function if exists mark_alerted(uuid);
drop function if exists release_scout_lease(uuid);
drop function if exists dashboard_feed(timestamptz, uuid, integer);
drop function if exists dashboard_battle(uuid);
drop function if exists dashboard_breakthroughs(integer);
drop function if exists persona_analytics();
drop function if exists run_history(integer);
drop function if exists promote_breakthrough(uuid, text, integer);
drop function if exists set_breakthrough_status(uuid, text);
-- training_set_paused gained p_by (who paused).
drop function if exists training_set_paused(boolean, text);
-- Never released (development only), replaced by the referee's confirmation (triage, then a re-score before a battle is flagged).
drop function if exists training_flag_breakthroughs(integer);
drop function if exists training_lease_scout_work(integer, integer);
-- training_start_run gained the daily and monthly budgets; training_status gained them too.
drop function if exists training_start_run(text, integer, integer, numeric, integer, integer, boolean, integer);
drop function if exists training_status();
-- training_start_run gained the canary and the budgets at once: the development signatures go too.
drop function if exists training_start_run(text, integer, integer, numeric, integer, integer, boolean, integer, text,
                                           numeric);
drop function if exists training_start_run(text, integer, integer, numeric, integer, integer, boolean, integer, numeric,
                                           numeric);
-- Last: the first release's functions above took its row type.
drop function if exists run_summary(training_runs);
-- Signatures changed since (closer versions): a battle records its version, a run plans the canary.
drop function if exists training_start_run(text, integer, integer, numeric, integer, integer, boolean, integer);
drop function if exists training_start_battle(uuid, uuid);
drop function if exists training_promote_breakthrough(uuid, text, integer);
