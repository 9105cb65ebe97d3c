-- SQL functions: grants (applied after every other function file).
-- Re-applied by every `python -m lib migrate`, after the pending migrations (lib/sql/migrations/README.md):
-- `create or replace` only; a function whose arguments change gets `drop function if exists
-- name(old argument types)` here, above it.

-- ---------------------------------------------------------------------------------------------
-- Grants. Supabase's default privileges give anon and authenticated EXECUTE on every new function
-- and access to every new table; only the service role may use ours. Granted by prefix, so a new
-- function is covered without editing a list. Elsewhere these roles do not exist.
-- ---------------------------------------------------------------------------------------------

do $$
declare
    fn regprocedure;
    tbl regclass;
    outsider text;
    has_service_role boolean := exists (select 1 from pg_roles where rolname = 'service_role');
begin
    for fn in
        select p.oid::regprocedure from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = current_schema() and p.proname like 'training\_%'
    loop
        execute format('revoke all on function %s from public', fn);
        foreach outsider in array array['anon', 'authenticated'] loop
            if exists (select 1 from pg_roles where rolname = outsider) then
                execute format('revoke all on function %s from %I', fn, outsider);
            end if;
        end loop;
        if has_service_role then
            execute format('grant execute on function %s to service_role', fn);
        end if;
    end loop;
    for tbl in
        select c.oid::regclass from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = current_schema() and c.relkind = 'r'
          and (c.relname like 'training\_%' or c.relname in ('sandbox_personas', 'sandbox_battles', 'sandbox_tactics'))
    loop
        foreach outsider in array array['anon', 'authenticated'] loop
            if exists (select 1 from pg_roles where rolname = outsider) then
                execute format('revoke all on %s from %I', tbl, outsider);
            end if;
        end loop;
        if has_service_role then
            execute format('grant select, insert, update, delete on %s to service_role', tbl);
        end if;
    end loop;
end;
$$;

notify pgrst, 'reload schema';
