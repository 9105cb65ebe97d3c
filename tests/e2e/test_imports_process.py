"""What a fresh interpreter loads: the production dashboard never the local server nor the embedded PostgreSQL."""
from tests.unit.test_imports import LIB


def test_the_production_dashboard_loads_neither_the_local_server_nor_the_embedded_postgresql():
    import subprocess
    import sys

    loaded = subprocess.run([sys.executable, "-c", "import sys, lib.dashboard; print(' '.join(sys.modules))"],
                            cwd=LIB.parent, capture_output=True, text=True, timeout=60, check=True).stdout.split()
    assert "lib.dashboard" in loaded
    assert not {"lib.serve", "lib.store.embedded"} & set(loaded)
