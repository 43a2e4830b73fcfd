-- Role names starting with `platform` are reserved for platform roles (SPEC §3.3): the
-- domain refuses them as tenant roles with `invalid_role`, and the schema backs it.
alter table memberships
    add constraint memberships_role_not_reserved check (role not like 'platform%');
alter table role_bindings
    add constraint role_bindings_role_not_reserved check (role not like 'platform%');
