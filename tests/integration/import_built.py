"""Import a built function's handler the way Lambda does, from the `sam build` output only.

Run isolated (``python -I -S -B import_built.py FUNCTION_DIR LAYER_DIR HOST_SITE HANDLER``) so nothing
but the standard library, the function's artifact and the layer's ``python/`` are importable, in
Lambda's order (``-B``: Lambda's /var/task and /opt are read-only, nothing recompiled is kept).
HANDLER is ``module.attribute``, or ``modules:a,b,c`` to import bare modules (the benchmark's baseline).
A fifth argument ``build:FUNCTION`` then builds that function's handler through the composition root
(``processors.wiring.aws.lambda_handler``, what the first invocation does before touching a record;
the tables and queues come from the environment) and reports its time apart (``build_cpu_seconds``);
``build:client:SERVICE`` builds a plain ``boto3.client(SERVICE)`` instead (the baseline's).
``layer_packages`` names the layer's top-level packages the import loaded (before any build).
The report names every artifact or layer module whose bytecode was compiled from source during
the import (``compiled``: shipped .pyc missing or stale) and the import's wall time. The artifacts are built for arm64: when this machine is not, a compiled extension
cannot load, so for exactly those modules (and only when the artifact ships the arm64 build) the
host's build of the same package stands in. Prints a JSON report; exits non-zero on failure.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import sys
import sysconfig
import time
from pathlib import Path

LAMBDA_EXTENSION = ".cpython-313-aarch64-linux-gnu.so"


class ArmStandIn(importlib.abc.MetaPathFinder):
    def __init__(self, roots: list[Path], host_site: Path) -> None:
        self.roots = roots
        self.host_site = host_site
        self.substituted: list[str] = []

    def find_spec(self, fullname, path=None, target=None):  # importlib protocol
        if LAMBDA_EXTENSION in importlib.machinery.EXTENSION_SUFFIXES:
            return None  # an arm64 host loads the artifact's own builds
        leaf = fullname.rpartition(".")[2]
        for directory in map(Path, path or sys.path):
            root = next((r for r in self.roots if directory == r or r in directory.parents), None)
            if root is None or not (directory / f"{leaf}{LAMBDA_EXTENSION}").exists():
                continue
            host_dir = self.host_site / directory.relative_to(root)
            for suffix in importlib.machinery.EXTENSION_SUFFIXES:
                stand_in = host_dir / f"{leaf}{suffix}"
                if stand_in.exists():
                    self.substituted.append(fullname)
                    loader = importlib.machinery.ExtensionFileLoader(fullname, str(stand_in))
                    return importlib.util.spec_from_file_location(fullname, stand_in, loader=loader)
            raise ImportError(f"{fullname}: the artifact ships an arm64 build, the host has none to stand in")
        return None


def record_compilations(roots: list[Path]) -> list[str]:
    """SourceFileLoader compiles a module's source only when its cached bytecode is missing or
    stale (importlib._bootstrap_external.SourceLoader.get_code): record those under the roots."""
    compiled: list[str] = []
    compile_source = importlib.machinery.SourceFileLoader.source_to_code

    def source_to_code(self, data, path, *args, **kwargs):
        resolved = Path(path).resolve()
        if any(root in resolved.parents for root in roots):
            compiled.append(str(resolved))
        return compile_source(self, data, path, *args, **kwargs)

    importlib.machinery.SourceFileLoader.source_to_code = source_to_code  # type: ignore[method-assign]
    return compiled


def build(what: str) -> None:
    """What a first invocation builds before its first record: the function's handler, or a client."""
    if what.startswith("client:"):
        importlib.import_module("boto3").client(what.removeprefix("client:"))
    else:
        importlib.import_module("processors.wiring.aws").lambda_handler(what)


def main() -> int:
    function_dir, layer_dir, host_site = (Path(a).resolve() for a in sys.argv[1:4])
    roots = [function_dir, layer_dir]
    sys.path[:0] = [str(function_dir), str(layer_dir)]
    stand_in = ArmStandIn(roots, host_site)
    sys.meta_path.insert(0, stand_in)
    compiled = record_compilations(roots)

    report: dict = {"handler": sys.argv[4]}
    try:
        started, started_cpu = time.perf_counter(), time.process_time()
        if sys.argv[4].startswith("modules:"):
            for name in sys.argv[4].removeprefix("modules:").split(","):
                importlib.import_module(name)
            report["callable"] = True
        else:
            module_name, _, attribute = sys.argv[4].rpartition(".")
            report["callable"] = callable(getattr(importlib.import_module(module_name), attribute))
        report["import_seconds"] = time.perf_counter() - started
        report["import_cpu_seconds"] = time.process_time() - started_cpu
        report["layer_packages"] = sorted({name.partition(".")[0] for name, module in list(sys.modules.items())
                                           if getattr(module, "__file__", None)
                                           and layer_dir in Path(module.__file__).resolve().parents})
        if len(sys.argv) > 5:
            started, started_cpu = time.perf_counter(), time.process_time()
            build(sys.argv[5].removeprefix("build:"))
            report["build_seconds"] = time.perf_counter() - started
            report["build_cpu_seconds"] = time.process_time() - started_cpu
    except Exception as error:  # noqa: BLE001 - reported to the test
        report["error"] = f"{type(error).__name__}: {error}"
        print(json.dumps(report))
        return 1
    report["compiled"] = [str(Path(p).relative_to(next(r for r in roots if r in Path(p).parents)))
                          for p in compiled]

    stdlib = [Path(sysconfig.get_paths()[key]).resolve() for key in ("stdlib", "platstdlib")]
    allowed = roots + stdlib
    report["substituted"] = stand_in.substituted
    report["outside"] = sorted(
        name for name, module in list(sys.modules.items())
        if getattr(module, "__file__", None) and name not in [*stand_in.substituted, "__main__", "__mp_main__"]
        and not any(root in Path(module.__file__).resolve().parents for root in allowed)
    )
    report["from_function"] = sorted({n.partition(".")[0] for n, m in list(sys.modules.items())
                                      if getattr(m, "__file__", None)
                                      and function_dir in Path(m.__file__).resolve().parents})
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
