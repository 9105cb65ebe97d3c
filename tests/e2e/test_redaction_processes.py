"""A malformed LOCAL_DB_URL's password reaches neither `serve`'s responses and logs nor the CLI's output."""
import subprocess
import sys

import pytest
import requests

from lib.config import PROJECT_ROOT
from tests.conftest import SECRET, child_env
from tests.unit.test_redaction import MALFORMED_URLS, SHOWN


@pytest.mark.parametrize("url", MALFORMED_URLS)
def test_a_malformed_local_db_url_leaks_its_password_nowhere(url, start_server, db):
    shown = SHOWN[url]
    server = start_server(LOCAL_DB_URL=url, ADMIN_PASSWORD="admin-pw")
    train = requests.post(f"{server.url}/api/cron/train", headers={"Authorization": f"Bearer {SECRET}"}, timeout=30)
    assert train.status_code == 500 and train.json()["error"] == "Database error"
    assert "trainer:***@" in train.json()["message"] or '"***"' in train.json()["message"]
    # The dashboard's notice shows the JSON's message.
    view = requests.get(f"{server.url}/admin/training-monitor?view=health", auth=("admin", "admin-pw"), timeout=30)
    assert view.status_code == 500 and view.json()["message"] == train.json()["message"]
    log = server.stop()
    cli = subprocess.run([sys.executable, "-m", "lib", "status"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                         env=child_env(USE_LOCAL_DB="true", LOCAL_DB_URL=url), timeout=60)
    assert cli.returncode == 1 and cli.stderr.startswith("error: ") and cli.stderr.count("\n") == 1
    for where, text in (("HTTP body", train.text), ("dashboard", view.text), ("server log", log),
                        ("CLI stdout", cli.stdout), ("CLI stderr", cli.stderr)):
        assert shown not in text, f"the password is in the {where}: {text}"
