-- Console users and their roles (PostgreSQL: the same tables as SQLite's 0001).
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
