-- Console sessions, kept server-side so that logging out ends a session on
-- every ingest replica. The cookie still carries a signature under the
-- admin token (changing the token ends every session); a signed cookie
-- opens the console only while its row is here, not ended and not expired.
-- Each console request reads one row by primary key; rows are deleted a
-- day after they expire.
create table console_sessions (
    id          bytea       primary key,          -- SHA-256 of the cookie's session id
    who         text        not null,             -- the name given at login
    created_at  timestamptz not null default now(),
    expires_at  timestamptz not null,
    ended_at    timestamptz                       -- logged out
);
