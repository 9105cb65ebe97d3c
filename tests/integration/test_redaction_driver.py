"""The driver really quotes the password redaction must hide (a real PostgreSQL login)."""
import pytest

from lib.store import StoreError
from lib.store.psycopg import PsycopgStore
from tests.unit.test_redaction import MALFORMED_URLS, PASSWORD, SHOWN


def test_the_driver_really_quotes_the_password():
    """The premise: without redaction, libpq's text holds the password (else the test above proves nothing)."""
    import psycopg

    for url, shown in SHOWN.items():
        with pytest.raises(psycopg.Error) as err:
            psycopg.connect(url, connect_timeout=1)
        assert shown in str(err.value)
    with pytest.raises(StoreError) as err:
        PsycopgStore(MALFORMED_URLS[0]).call_one("training_status", deadline=0)
    assert PASSWORD not in str(err.value) and "[::1/training" in str(err.value)
