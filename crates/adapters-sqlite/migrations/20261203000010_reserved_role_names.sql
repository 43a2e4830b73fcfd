-- Role names starting with `platform` are reserved for platform roles (SPEC §3.3): the
-- domain refuses them as tenant roles with `invalid_role`, and the schema backs it.
-- SQLite cannot add a CHECK to an existing table, so triggers refuse the rows.
create trigger memberships_role_not_reserved
    before insert on memberships
    for each row
    when new.role glob 'platform*'
begin
    select raise(abort, 'memberships_role_not_reserved');
end;

create trigger role_bindings_role_not_reserved
    before insert on role_bindings
    for each row
    when new.role glob 'platform*'
begin
    select raise(abort, 'role_bindings_role_not_reserved');
end;
