"""No credential from a driver's error text reaches a response, a log line or the CLI's output."""

import pytest

from lib.redact import redact, remember, url_password
from lib.store import StoreError

PASSWORD = "hunter2-Secret-77"
# libpq quotes the whole URI when it cannot parse it, and a password with a space on its own.
MALFORMED_URLS = [f"postgresql://trainer:{PASSWORD}@[::1/training",
                  "postgresql://trainer:hunter2 Secret77@localhost/training"]
SHOWN = {MALFORMED_URLS[0]: PASSWORD, MALFORMED_URLS[1]: "hunter2 Secret77"}


@pytest.mark.parametrize("text, expected", [
    ('in URI: "postgresql://u:pw-1234567@[::1/db"', 'in URI: "postgresql://u:***@[::1/db"'),
    ("postgres://u:p@ss:w0rd@db.example:5432/x", "postgres://u:***@db.example:5432/x"),
    ("host=db port=5432 password=s3cr3t-pw user=x", "host=db port=5432 password=*** user=x"),
    ("password = 'two words' dbname=x", "password = *** dbname=x"),
    ("GET https://x.supabase.co/rest/v1/rpc/f?apikey=abc.def&x=1", "GET https://x.supabase.co/rest/v1/rpc/f?apikey=***&x=1"),
    ("Authorization: Bearer abcdefgh12345", "Authorization: Bearer ***"),
    ("key sk-proj-abcdefghijkl rejected", "key *** rejected"),
    ("apikey sb_secret_abcdefgh1234 given", "apikey *** given"),
    ("token eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.c2ln end", "token *** end"),
    ("posting to https://hooks.slack.com/services/T0/B0/XYZ failed", "posting to https://hooks.slack.com/services/*** failed"),
    # What must stay: the database's own words.
    ('Key (name)=(Bob) already exists.', 'Key (name)=(Bob) already exists.'),
    ('password authentication failed for user "trainer"', 'password authentication failed for user "trainer"'),
    ("max_tokens=300 at http://127.0.0.1:8080/v1", "max_tokens=300 at http://127.0.0.1:8080/v1"),
])
def test_credentials_are_removed_by_shape(text, expected):
    assert redact(text) == expected


def test_remembered_secrets_are_removed_by_value_even_as_a_fragment():
    remember(url_password("postgresql://u:pa ss word-9@host/db"), "tiny")
    assert url_password("postgresql://u:p@ss@host/db") == "p@ss"
    assert redact('unexpected spaces found in "pa ss word-9"') == 'unexpected spaces found in "***"'
    assert redact("a tiny word") == "a tiny word", "values too short to be secrets are not masked"


def test_every_store_error_is_redacted_whoever_builds_it():
    error = StoreError(f"bad URI postgresql://u:{PASSWORD}@[::1", details=f"password={PASSWORD}",
                       hint=f"Bearer {PASSWORD}")
    for text in (str(error), error.message, error.details, error.hint):
        assert PASSWORD not in text
