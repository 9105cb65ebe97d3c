"""vercel.json and the local server agree with the code: routes, rewrites, crons, durations."""
import json
from datetime import datetime

from lib.config import Settings
from lib.cron import cron_matches
from lib.serve import PROJECT_ROOT, load_handlers, rewrite

CONFIG = json.loads((PROJECT_ROOT / "vercel.json").read_text())


def test_every_function_file_is_configured_and_loads():
    routes = load_handlers()
    assert {"/api/cron/train", "/api/cron/scout-scan"} <= routes.keys()
    configured = {"/" + path[: -len(".py")] for path in CONFIG["functions"]}
    assert configured == set(routes)


def test_max_duration_fits_the_default_deadline_with_a_margin():
    deadline_s = Settings.from_env({}).max_execution_ms / 1000
    for name in ("api/cron/train.py", "api/cron/scout-scan.py"):
        assert CONFIG["functions"][name]["maxDuration"] >= deadline_s + 5


def test_crons_train_every_30_minutes_and_scan_as_a_safety_net():
    schedules = {cron["path"]: cron["schedule"] for cron in CONFIG["crons"]}
    assert schedules["/api/cron/train"] == "*/30 * * * *"
    assert "/api/cron/scout-scan" in schedules


def test_dashboard_rewrite():
    assert rewrite("/admin/training-monitor", CONFIG["rewrites"]) == "/api/admin/training-monitor"
    assert rewrite("/admin/training-monitor/api/feed", CONFIG["rewrites"]) == "/api/admin/training-monitor"
    assert rewrite("/api/cron/train", CONFIG["rewrites"]) == "/api/cron/train"


def test_cron_expressions():
    at = datetime(2026, 11, 28, 14, 30)
    assert cron_matches("*/30 * * * *", at)
    assert not cron_matches("*/30 * * * *", at.replace(minute=31))
    assert cron_matches("15 * * * *", at.replace(minute=15))
    assert cron_matches("0 9 * * 1-5", datetime(2026, 11, 30, 9, 0))  # a Monday
    assert not cron_matches("0 9 * * 1-5", datetime(2026, 11, 29, 9, 0))  # a Sunday
    assert cron_matches("0,30 12 28 11 *", at.replace(hour=12, minute=0))


def test_rewrites_match_as_vercel_compiles_them():
    """Vercel compiles a source with path-to-regexp (strict: no optional trailing slash); these are
    path-to-regexp 6.1.0's own answers for the two rules, before the trailing-slash rule was added."""
    exact, any_below = CONFIG["rewrites"][0], CONFIG["rewrites"][-1]
    expected = {"/admin/training-monitor": (True, True), "/admin/training-monitor/": (False, False),
                "/admin/training-monitor/a": (False, True), "/admin/training-monitor/a/b": (False, True),
                "/admin/training-monitor/a/": (False, False), "/admin/training-monitor//a": (False, False),
                "/admin/training-monitorx": (False, False)}
    for path, (by_exact, by_any) in expected.items():
        assert (rewrite(path, [exact]) != path, rewrite(path, [any_below]) != path) == (by_exact, by_any), path


def test_the_dashboard_is_reached_with_or_without_a_trailing_slash():
    for path in ("/admin/training-monitor", "/admin/training-monitor/", "/admin/training-monitor/feed"):
        assert rewrite(path, CONFIG["rewrites"]) == "/api/admin/training-monitor", path


def test_no_function_config_key_that_the_python_builder_ignores():
    # @vercel/python bundles the whole project (minus .vercelignore); it never reads includeFiles.
    for name, function in CONFIG["functions"].items():
        assert set(function) <= {"maxDuration", "memory", "excludeFiles"}, name


def test_a_cli_deploy_uploads_no_local_data():
    ignored = {line.strip() for line in (PROJECT_ROOT / ".vercelignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".data/", "artifacts/", "tests/", "devtools/", "bench/", ".ci/", ".venv/"} <= ignored
    assert not ignored & {"api/", "lib/", "requirements.txt", "vercel.json"}, "the functions need these"
