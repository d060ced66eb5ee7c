"""CloudWatch Logs' local stand-in: what a handler prints during an invocation goes to its log file.

On Lambda, a function's stdout (Powertools' JSON logs and EMF metric lines) lands in its log
group. Locally the runners invoke handlers in the same process as the CLI, so the router
sends output written *during an invocation* to ``<dir>/<function>.log`` and everything else
to the terminal, which keeps `dynafold demo` and `dynafold up` readable while the JSON stays
available (and identical to what CloudWatch would receive).
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

Handler = Callable[[dict[str, Any], Any], Any]


class LambdaLogRouter(io.TextIOBase):
    def __init__(self, terminal: IO[str], directory: Path) -> None:
        super().__init__()
        self._terminal = terminal
        self.directory = directory
        self._current = threading.local()
        self._files: dict[str, IO[str]] = {}
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        target = getattr(self._current, "file", None) or self._terminal
        return target.write(text)

    def flush(self) -> None:
        target = getattr(self._current, "file", None) or self._terminal
        target.flush()

    def path(self, function_name: str) -> Path:
        return self.directory / f"{function_name}.log"

    @contextlib.contextmanager
    def invocation(self, function_name: str) -> Iterator[None]:
        with self._lock:
            if function_name not in self._files:
                self.directory.mkdir(parents=True, exist_ok=True)
                self._files[function_name] = open(self.path(function_name), "a", encoding="utf-8")  # noqa: SIM115
        previous = getattr(self._current, "file", None)
        self._current.file = self._files[function_name]
        try:
            yield
        finally:
            self._current.file.flush()
            self._current.file = previous

    def route(self, function_name: str, handler: Handler) -> Handler:
        """The handler, with its invocations' output going to its log file."""

        def routed(event: dict[str, Any], context: Any) -> Any:
            with self.invocation(function_name):
                return handler(event, context)

        return routed

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()


@contextlib.contextmanager
def lambda_logs(directory: Path, logger_names: Iterable[str]) -> Iterator[LambdaLogRouter]:
    """Install the router as sys.stdout and as the stream of the named Powertools loggers."""
    terminal = sys.stdout
    router = LambdaLogRouter(terminal, directory)
    # Each handler once: swapping one twice would "restore" it to the router closed below.
    handlers = list({id(h): h for name in logger_names for h in logging.getLogger(name).handlers
                     if isinstance(h, logging.StreamHandler)}.values())
    streams = [h.setStream(router) for h in handlers]
    sys.stdout = router  # EMF lines are print()ed
    try:
        yield router
    finally:
        sys.stdout = terminal
        for handler, stream in zip(handlers, streams, strict=True):
            handler.setStream(stream or terminal)
        router.close()
