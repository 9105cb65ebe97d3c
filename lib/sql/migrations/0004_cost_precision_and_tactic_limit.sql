-- The second release, part 2: recorded cost at full precision (numeric(20, 12): usage × price as
-- the provider bills it; the cost cap stays numeric(12, 6)), and at most 1000 characters per active
-- tactic, added NOT VALID so rows written before the limit never fail the upgrade
-- (lib/sql/functions/upkeep.sql validates it once none is over).

alter table sandbox_battles alter column cost_usd type numeric(20, 12);
alter table training_runs alter column total_cost type numeric(20, 12);
alter table training_rescores alter column cost_usd type numeric(20, 12);
alter table training_referee_calibrations alter column cost_usd type numeric(20, 12);

do $$
begin
    if not exists (select 1 from pg_constraint where conrelid = 'sandbox_tactics'::regclass
                   and conname = 'sandbox_tactics_active_text_at_most_1000_chars') then
        alter table sandbox_tactics add constraint sandbox_tactics_active_text_at_most_1000_chars
            check (not is_active or char_length(tactic_text) <= 1000) not valid;
    end if;
end;
$$;
