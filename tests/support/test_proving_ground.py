"""The proving ground itself: real servers, SCRAM auth, and PgBouncer in transaction mode."""

import psycopg
import pytest


def test_postgres_requires_scram_password(postgres):
    with psycopg.connect(postgres.url()) as conn:
        method = conn.execute("SHOW password_encryption").fetchone()[0]
        assert method == "scram-sha-256"
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(postgres.url(password="wrong"))


def test_pgbouncer_pools_in_transaction_mode_and_admits_new_roles(postgres, pgbouncer, fresh_database):
    with psycopg.connect(postgres.url(), autocommit=True) as conn:
        conn.execute("CREATE ROLE proving_ground LOGIN PASSWORD 'p@ss:w/rd'")
    bouncer_url = pgbouncer.url(fresh_database, "proving_ground", "p@ss:w/rd")
    with psycopg.connect(bouncer_url, prepare_threshold=None, autocommit=True) as conn:
        user, database = conn.execute("SELECT current_user, current_database()").fetchone()
        assert (user, database) == ("proving_ground", fresh_database)
    admin_url = pgbouncer.url("pgbouncer", "postgres", postgres.password)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        # The admin console speaks only the simple query protocol.
        result = admin.pgconn.exec_(b"SHOW CONFIG")
        config = {result.get_value(i, 0): result.get_value(i, 1) for i in range(result.ntuples)}
    assert config[b"pool_mode"] == b"transaction"
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pgbouncer.url(fresh_database, "proving_ground", "wrong"))
