-- Console users and their roles. Plain types (TEXT, BIGINT) so the same schema fits PostgreSQL.
CREATE TABLE users (
    username      TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE user_roles (
    username TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    role     TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'approver', 'admin')),
    PRIMARY KEY (username, role)
);
