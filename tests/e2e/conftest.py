"""Fixtures the end-to-end canary tests share (tests/e2e/test_versions.py, test_canary_verdict.py)."""
import pytest

from tests.conftest import seed_personas


@pytest.fixture
def canary_settings(make_settings, slack, fake_openai, psycopg_store):
    """Runs of 6 battles (3 persona pairs while a candidate exists), one battle at a time so the
    fake referee's noise falls on the same battles every time, and Slack."""
    fake_openai.referee_noise = 6
    seed_personas(psycopg_store, 6)

    def make(**env):
        return make_settings(TRAINING_BATCH_SIZE=6, MAX_CONCURRENT_BATTLES=1, BATTLE_MAX_TURNS=1,
                             SLACK_WEBHOOK_URL=slack.url + "/services/T0/B0/x", **env)

    return make
