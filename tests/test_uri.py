import psycopg
import psycopg.sql
import pytest

from components.redaction import parse_conninfo
from components.uri import pooled_host, postgres_uri, split_host


@pytest.mark.parametrize(
    ("direct", "pooled"),
    [
        ("ep-cool-1.c-2.us-east-2.aws.neon.tech", "ep-cool-1-pooler.c-2.us-east-2.aws.neon.tech"),
        ("ep-cool-1.us-east-2.aws.neon.tech", "ep-cool-1-pooler.us-east-2.aws.neon.tech"),
        ("ep-cool-1-pooler.us-east-2.aws.neon.tech", "ep-cool-1-pooler.us-east-2.aws.neon.tech"),
        ("127.0.0.1:54321", "127.0.0.2:54321"),
    ],
)
def test_pooled_host(direct, pooled):
    assert pooled_host(direct) == pooled


def test_pooled_host_refuses_a_public_address():
    with pytest.raises(ValueError, match=r"10\.0\.0\.1"):
        pooled_host("10.0.0.1:5432")


def test_uri_encodes_credentials_and_requires_tls():
    uri = postgres_uri("app user", "p@ss:w/rd?#%", "ep-a-1.aws.neon.tech", "chat kit")
    assert uri == (
        "postgresql://app%20user:p%40ss%3Aw%2Frd%3F%23%25@ep-a-1.aws.neon.tech/chat%20kit?sslmode=require"
    )
    assert postgres_uri("u", "p", "h.x", "d", channel_binding=True).endswith("sslmode=require&channel_binding=require")
    assert split_host("127.0.0.1:6000") == ("127.0.0.1", 6000)
    assert parse_conninfo(uri).shown == "postgresql://app%20user:***@ep-a-1.aws.neon.tech/chat%20kit?sslmode=require"


def test_uris_connect_over_tls_direct_and_pooled(postgres, pgbouncer, fresh_database):
    password = "sp ace@:/?#%'\""
    with psycopg.connect(postgres.url(), autocommit=True) as conn:
        conn.execute("CREATE ROLE uri_tester LOGIN PASSWORD " + psycopg.sql.quote(password))
    direct_host = f"{postgres.host}:{postgres.port}"
    for host in (direct_host, pooled_host(direct_host)):
        uri = postgres_uri("uri_tester", password, host, fresh_database)
        with psycopg.connect(uri, prepare_threshold=None) as conn:
            assert conn.pgconn.ssl_in_use  # TLS between this client and the host it reached
            assert conn.info.port == postgres.port
            assert conn.info.host == host.split(":")[0]
