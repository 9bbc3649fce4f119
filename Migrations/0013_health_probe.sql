-- /health writes one row of this table (at most once a second) to tell whether the database still accepts writes: a
-- full disk lets reads succeed while every write fails (issue 18).
CREATE TABLE health_probe (
    id INTEGER PRIMARY KEY,
    checked_at BIGINT NOT NULL
);
INSERT INTO health_probe (id, checked_at) VALUES (1, 0);
