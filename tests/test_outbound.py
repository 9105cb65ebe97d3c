"""What leaves for other services: the scout webhook and Slack, against real local servers."""
import requests

from tests.conftest import BYPASS, SECRET, seed_personas
from tests.fakes.receiver import Receiver

AUTH = {"Authorization": f"Bearer {SECRET}"}


def test_the_scout_webhook_follows_no_redirect_and_says_what_to_set(start_server, psycopg_store, db):
    seed_personas(psycopg_store, 1)
    elsewhere = Receiver()  # another host: what a redirect would hand the bypass secret to
    redirector = Receiver()
    redirector.redirect_to = elsewhere.url.replace("127.0.0.1", "localhost")
    server = start_server(NEXT_PUBLIC_APP_URL=redirector.url, VERCEL_AUTOMATION_BYPASS_SECRET=BYPASS)
    batch = requests.post(f"{server.url}/api/cron/train", headers=AUTH, timeout=30).json()["batch"]
    redirector.stop()
    elsewhere.stop()
    [call] = redirector.received
    assert call["headers"]["x-vercel-protection-bypass"] == BYPASS
    assert elsewhere.received == [], "the bypass secret never reaches the redirect's target"
    assert batch["scoutNotified"] is False
    port = elsewhere.url.rsplit(":", 1)[1]
    assert (f"Failed to notify Tactical Scout: HTTP 307 redirect to http://localhost:{port}/api/cron/scout-scan "
            "(redirects are not followed: set NEXT_PUBLIC_APP_URL to this deployment's final URL)") in batch["errors"]
    assert db.execute("select scout_notified from training_runs").fetchone()[0] is False
