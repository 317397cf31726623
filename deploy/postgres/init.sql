-- One role and one database per service: no service can read another's tables.
-- Run once by the postgres image on an empty data volume
-- (mounted at /docker-entrypoint-initdb.d/ by docker-compose.yml).
-- Passwords are development defaults; production passes its own DATABASE_URL.
CREATE ROLE membership LOGIN PASSWORD 'membership';
CREATE DATABASE membership OWNER membership;

CREATE ROLE catalogue LOGIN PASSWORD 'catalogue';
CREATE DATABASE catalogue OWNER catalogue;

CREATE ROLE billing LOGIN PASSWORD 'billing';
CREATE DATABASE billing OWNER billing;

CREATE ROLE scheduling LOGIN PASSWORD 'scheduling';
CREATE DATABASE scheduling OWNER scheduling;
