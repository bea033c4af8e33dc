-- Who looks at what (an incident, a cluster's live health) through which console process, so
-- every replica lists everyone. It takes over from incident_watchers: those rows only ever lived
-- a heartbeat, so nothing worth keeping goes with it.
CREATE TABLE console_viewers (
    scope          TEXT NOT NULL,
    subject        TEXT NOT NULL,
    instance       TEXT NOT NULL,
    username       TEXT NOT NULL,
    seen_at_ms     BIGINT NOT NULL,
    PRIMARY KEY (scope, subject, instance, username)
);

DROP TABLE incident_watchers;
