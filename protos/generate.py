"""Regenerate the Python code for every contract in protos/.

Writes messages (`*_pb2.py`), grpc.aio stubs (`*_pb2_grpc.py`) and their type
stubs (`.pyi`) under clients/proto/, then makes the generated imports relative
so that the tree is an ordinary subpackage (`clients.proto.orders.v1`) and
needs nothing added to sys.path.

It also copies google/rpc/status.proto and error_details.proto from the
installed googleapis-common-protos package to protos/third_party/, so that
callers in other languages find every proto they need to decode our errors in
protos/ (their Python code comes with that package, so none is generated).

    python protos/generate.py           regenerate in place
    python protos/generate.py --check   fail when the committed code or copies are stale
"""

from __future__ import annotations

import argparse
import filecmp
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
TARGET = ROOT / "clients" / "proto"
THIRD_PARTY = PROTOS / "third_party"
VENDORED = ("google/rpc/status.proto", "google/rpc/error_details.proto")

# `from orders.v1 import orders_pb2` -> `from ...orders.v1 import orders_pb2`,
# and `import orders.v1.orders_pb2` in .pyi files likewise. Only our own
# packages are rewritten; google.* stays absolute.
_OWN_PACKAGES = sorted(p.name for p in PROTOS.iterdir() if p.is_dir() and p != THIRD_PARTY)
_FROM_IMPORT = re.compile(rf"^from ({'|'.join(_OWN_PACKAGES)})((?:\.\w+)*) import ", re.M)
_PLAIN_IMPORT = re.compile(rf"^import ({'|'.join(_OWN_PACKAGES)})((?:\.\w+)+)$", re.M)


def _relative_imports(path: Path, out_root: Path) -> None:
    depth = len(path.relative_to(out_root).parts) - 1
    dots = "." * (depth + 1)
    text = path.read_text()
    text = _FROM_IMPORT.sub(lambda m: f"from {dots}{m[1]}{m[2]} import ", text)

    def plain(match: re.Match[str]) -> str:
        module = match[1] + match[2]
        parent, _, name = module.rpartition(".")
        return f"from {dots}{parent} import {name} as {module.replace('.', '___')}"

    if path.suffix == ".pyi":
        # mypy-protobuf refers to other modules by their dotted path.
        modules = {m[1] + m[2] for m in _PLAIN_IMPORT.finditer(text)}
        text = _PLAIN_IMPORT.sub(plain, text)
        for module in sorted(modules, key=len, reverse=True):
            text = re.sub(rf"\b{re.escape(module)}\.", module.replace(".", "___") + ".", text)
    path.write_text(text)


def generate(out_root: Path) -> None:
    protos = sorted(
        str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto") if THIRD_PARTY not in p.parents
    )
    # mypy-protobuf's plugins are installed beside this interpreter.
    bindir = Path(sys.executable).parent
    protoc = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"--proto_path={PROTOS}",
            f"--plugin=protoc-gen-mypy={bindir / 'protoc-gen-mypy'}",
            f"--plugin=protoc-gen-mypy_grpc={bindir / 'protoc-gen-mypy_grpc'}",
            f"--python_out={out_root}",
            f"--grpc_python_out={out_root}",
            f"--mypy_out={out_root}",
            f"--mypy_grpc_out={out_root}",
            *protos,
        ],
        cwd=PROTOS,
        # mypy-protobuf names every file it writes: show the output on failure only.
        capture_output=True,
        text=True,
    )
    if protoc.returncode != 0:
        sys.exit(f"protoc failed:\n{protoc.stdout}{protoc.stderr}")
    for folder in [out_root, *(d for d in out_root.rglob("*") if d.is_dir())]:
        (folder / "__init__.py").touch()
    for path in out_root.rglob("*.py*"):
        if path.name != "__init__.py":
            _relative_imports(path, out_root)
    (out_root / "__init__.py").write_text(
        '"""Generated from protos/ by protos/generate.py. Do not edit."""\n'
    )


def _vendored_sources() -> dict[str, Path]:
    """The google/rpc protos as shipped with the installed googleapis-common-protos."""
    from google.rpc import status_pb2

    package_root = Path(status_pb2.__file__).resolve().parent.parent.parent
    return {name: package_root / name for name in VENDORED}


def _stale_vendored() -> list[str]:
    return sorted(
        str((THIRD_PARTY / name).relative_to(ROOT))
        for name, source in _vendored_sources().items()
        if not (THIRD_PARTY / name).exists()
        or not filecmp.cmp(source, THIRD_PARTY / name, shallow=False)
    )


def _vendor() -> None:
    for name, source in _vendored_sources().items():
        (THIRD_PARTY / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, THIRD_PARTY / name)


def _differences(left: Path, right: Path) -> list[str]:
    names = {p.relative_to(left) for p in left.rglob("*") if p.is_file()}
    names |= {p.relative_to(right) for p in right.rglob("*") if p.is_file()}
    names = {n for n in names if "__pycache__" not in n.parts}
    return sorted(
        str(n)
        for n in names
        if not (
            (left / n).exists()
            and (right / n).exists()
            and filecmp.cmp(left / n, right / n, shallow=False)
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if clients/proto is stale")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "proto"
        fresh.mkdir()
        generate(fresh)
        if args.check:
            stale = [f"clients/proto/{name}" for name in _differences(fresh, TARGET)]
            stale += _stale_vendored()
            if stale:
                print("generated or copied protos are stale; run `make proto`.", file=sys.stderr)
                for name in stale:
                    print(f"  {name}", file=sys.stderr)
                return 1
            print("clients/proto and protos/third_party are up to date")
            return 0
        shutil.rmtree(TARGET, ignore_errors=True)
        shutil.copytree(fresh, TARGET)
    _vendor()
    print(f"generated {TARGET.relative_to(ROOT)}; copied {THIRD_PARTY.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
