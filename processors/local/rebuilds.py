"""``RebuildsReader`` locally: the rebuilds whose progress file says they have not finished.

A local rebuild records its progress after every slice in ``<state dir>/rebuilds/<prefix><views>.json``
(processors/operations/rebuild.py); an unfinished one is running, or was interrupted and resumes
with the same command. The file's time says which: when it last moved. (A rebuild started on AWS
is followed from ``<prefix>aws-execution.json``; its progress is the execution's, read on AWS.)
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from projections.health.status import RebuildRun
from projections.rebuild.plan import RebuildProgress


class LocalRebuilds:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def in_progress(self) -> list[RebuildRun]:
        found = []
        for path in sorted(self.directory.glob("*.json")):
            if path.name.endswith("aws-execution.json"):
                continue
            try:
                progress = RebuildProgress.from_json(json.loads(path.read_text(encoding="utf-8")))
            except (ValueError, KeyError, TypeError):
                continue  # not a progress file
            if progress.finished:
                continue
            phase = ("filling (running, or interrupted: the same command resumes it)" if progress.pending_segments
                     else "comparing (running, or interrupted: the same command resumes it)")
            found.append(RebuildRun(tuple(progress.views), phase, len(progress.done_segments),
                                    progress.total_segments, str(path), events=progress.events,
                                    updated=datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)))
        return found
