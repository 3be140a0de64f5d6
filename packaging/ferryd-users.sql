-- ferryd-users.sql: the PostgreSQL table ferryd reads its virtual users from
-- (src/server/userdb_pg.c), one row a user, the same fields as a users-file line
-- "name:hash:home:permissions[:settings]" plus a disabled flag.
--
-- Load it into the database ferryd connects to, as a role that may create tables there:
--
--     createdb ferry
--     psql -v ON_ERROR_STOP=1 -d ferry -f /usr/share/ferry/ferryd-users.sql
--
-- It can be loaded again: it only creates what is missing and replaces the trigger function.
--
-- Several ferryd instances (on one host or many) share the users by pointing at the same
-- database: each reads a row at every login, so a user added, disabled or given a new
-- password with `ferryd user` takes effect on every instance at its next login, without
-- a reload.  Instances that must see different users use different schemas of the same
-- database: load this file once a schema with that schema first in search_path, e.g.
--
--     psql -d ferry -c 'CREATE SCHEMA site_a' -c 'SET search_path = site_a' -f ferryd-users.sql
--
-- and give that instance's connection string "options='-c search_path=site_a'".  ferryd
-- names the table unqualified for that reason.
--
-- The checks below are those ferryd applies to a users file, so that a row written with
-- psql cannot hold what no users file could.  ferryd checks every row it reads again
-- (permissions and settings with the same parser as the users file) and refuses a login
-- whose row is malformed, naming the user in its log: the checks here are a first line,
-- not the only one.

BEGIN;

CREATE TABLE IF NOT EXISTS ferry_users (
	-- What the client sends in USER: 1-63 bytes (struct user_entry's name[64]), no space,
	-- no control character, no ':' (the users file's separator, kept out so that a table
	-- can be dumped to a users file and back).
	name text PRIMARY KEY
		CONSTRAINT ferry_users_name_valid CHECK (
			octet_length(name) BETWEEN 1 AND 63 AND name !~ '[\x01-\x20\x7f:]'),
	-- A crypt(3) hash, as `ferryd passwd` and `ferryd user` write (yescrypt by default).
	hash text NOT NULL
		CONSTRAINT ferry_users_hash_valid CHECK (
			octet_length(hash) BETWEEN 1 AND 255 AND hash !~ '[\x01-\x20\x7f:]'),
	-- The user's root, an absolute path on the server.
	home text NOT NULL
		CONSTRAINT ferry_users_home_valid CHECK (
			home LIKE '/%' AND octet_length(home) < 4096 AND home !~ '[\x01-\x1f\x7f]'),
	-- Comma-separated words of the users file: read, write, delete, rename, mkdir, all, none.
	permissions text NOT NULL DEFAULT 'read'
		CONSTRAINT ferry_users_permissions_valid CHECK (
			permissions ~ '^ *(read|write|delete|rename|mkdir|all|none)( *, *(read|write|delete|rename|mkdir|all|none))* *$'),
	-- The settings text of src/server/user_settings.h ("quota_bytes=100M max_sessions=2
	-- /incoming=read,write"); '' is none.  Only ferryd's parser checks the items.
	settings text NOT NULL DEFAULT ''
		CONSTRAINT ferry_users_settings_valid CHECK (
			octet_length(settings) <= 2048 AND settings !~ '[\x01-\x08\x0a-\x1f\x7f]'),
	-- Refused at login like a wrong password, without losing the row.
	disabled boolean NOT NULL DEFAULT false,
	created timestamptz NOT NULL DEFAULT now(),
	changed timestamptz NOT NULL DEFAULT now()
);

-- "changed" follows every update, whoever makes it (ferryd user, psql, another tool).
CREATE OR REPLACE FUNCTION ferry_users_touch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	NEW.changed := now();
	RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER ferry_users_touch
	BEFORE UPDATE ON ferry_users
	FOR EACH ROW EXECUTE FUNCTION ferry_users_touch();

COMMIT;

-- Roles (an example, not run: roles belong to the whole cluster, so the administrator
-- creates them once).  ferryd itself only reads, and only the columns it needs, so a
-- compromised ferryd cannot add users or change passwords; `ferryd user` writes.
-- tests/wire/test_pg_store.py runs the lines between the markers with their "-- " cut.
--
-- BEGIN ROLES EXAMPLE
-- CREATE ROLE ferryd_reader LOGIN;
-- CREATE ROLE ferryd_admin LOGIN;
-- GRANT USAGE ON SCHEMA public TO ferryd_reader, ferryd_admin;
-- GRANT SELECT (name, hash, home, permissions, settings, disabled) ON ferry_users TO ferryd_reader;
-- GRANT SELECT, INSERT, UPDATE, DELETE ON ferry_users TO ferryd_admin;
-- END ROLES EXAMPLE
--
-- Give them passwords (ALTER ROLE ... PASSWORD, kept in ~/.pgpass or the connection
-- string's "passfile") or peer authentication in pg_hba.conf, and connect ferryd with, say,
-- "host=db.example.net dbname=ferry user=ferryd_reader".
