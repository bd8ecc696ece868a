"""buf breaking guards callers: protos/ against protos/released.tar.gz, the last release.

`make lint-protos` (and so CI) runs the same check on the real tree; these
tests show that it catches a wire-incompatible change and lets an additive one
through, on a copy of protos/.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.binaries import venv_binary
from tests.support.stack import ROOT

PROTOS = ROOT / "protos"
WATCH_REQUEST = "  // Order to watch.\n  string order_id = 1;\n"


def buf(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [venv_binary("buf"), *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def protos(tmp_path: Path) -> Path:
    copy = tmp_path / "protos"
    shutil.copytree(PROTOS, copy, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return copy


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path.name} changed: update this test"
    path.write_text(text.replace(old, new))


def test_the_contracts_are_compatible_with_the_last_release() -> None:
    checked = buf("breaking", "--against", "released.tar.gz", cwd=PROTOS)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_renumbered_field_fails(protos: Path) -> None:
    edit(
        protos / "orders/v1/orders.proto",
        WATCH_REQUEST,
        WATCH_REQUEST.replace("= 1;", "= 2;"),
    )
    checked = buf("breaking", "--against", "released.tar.gz", cwd=protos)
    assert checked.returncode != 0
    assert 'field "1" with name "order_id" on message "WatchOrderRequest"' in checked.stdout


def test_a_retyped_field_fails(protos: Path) -> None:
    edit(protos / "orders/v1/orders.proto", WATCH_REQUEST, WATCH_REQUEST.replace("string", "int64"))
    checked = buf("breaking", "--against", "released.tar.gz", cwd=protos)
    assert checked.returncode != 0
    assert "WatchOrderRequest" in checked.stdout


def test_an_added_field_and_a_new_package_version_pass(protos: Path) -> None:
    edit(
        protos / "orders/v1/orders.proto",
        WATCH_REQUEST,
        WATCH_REQUEST + "  // Send the order's current state only when it changes.\n"
        "  bool changes_only = 2;\n",
    )
    # An intended breaking change goes into a new package beside the old one.
    v2 = protos / "orders/v2/orders.proto"
    v2.parent.mkdir()
    v1_text = (protos / "orders/v1/orders.proto").read_text()
    v2.write_text(
        v1_text.replace("package orders.v1;", "package orders.v2;").replace("/v1;", "/v2;")
    )
    edit(v2, WATCH_REQUEST, "  // Order to watch.\n  string order_name = 1;\n")
    checked = buf("breaking", "--against", "released.tar.gz", cwd=protos)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert buf("lint", cwd=protos).returncode == 0


def test_removing_a_released_package_fails(protos: Path) -> None:
    shutil.rmtree(protos / "shipping")
    # The operators' API shows shipments: it goes too, or nothing compiles.
    shutil.rmtree(protos / "operator")
    checked = buf("breaking", "--against", "released.tar.gz", cwd=protos)
    assert checked.returncode != 0
    assert 'Previously present package "shipping.v1" was deleted' in checked.stdout
