from datetime import datetime, timedelta, timezone

import pytest

from processors.adapters.clock import FastForwardClock


def test_it_runs_with_the_system_clock_and_skips_what_it_sleeps():
    clock = FastForwardClock()
    before = datetime.now(timezone.utc)
    assert before <= clock.now() < before + timedelta(seconds=5)
    clock.sleep(1800)
    assert clock.now() >= datetime.now(timezone.utc) + timedelta(seconds=1799)
    with pytest.raises(ValueError, match="never goes back"):
        clock.advance(-1)
