"""The local stand-in for KMS (processors/adapters/subject_keys.py LocalKeyWrapper): a data key wraps
and unwraps under the master key in a state directory, and a key from another directory's stand-in
is refused with a line saying which key was tried and how to reach the right one."""

from __future__ import annotations

import pytest

from events.personal import UnreadableSealedValue
from processors.adapters.subject_keys import KMS_STAND_IN, LocalKeyWrapper


def test_a_data_key_unwraps_with_the_master_key_that_wrapped_it(tmp_path):
    wrapper = LocalKeyWrapper(tmp_path / KMS_STAND_IN)
    plaintext, wrapped = wrapper.generate("inflow-customer:C-1", "k1")
    assert LocalKeyWrapper(tmp_path / KMS_STAND_IN).unwrap("inflow-customer:C-1", "k1", wrapped) == plaintext
    assert (tmp_path / KMS_STAND_IN).stat().st_mode & 0o777 == 0o600


def test_another_state_directorys_master_key_is_named_with_the_way_out(tmp_path):
    _, wrapped = LocalKeyWrapper(tmp_path / "demo" / KMS_STAND_IN).generate("inflow-customer:C-1", "k1")
    other = tmp_path / "elsewhere" / KMS_STAND_IN
    with pytest.raises(UnreadableSealedValue) as refused:
        LocalKeyWrapper(other).unwrap("inflow-customer:C-1", "k1", wrapped)
    assert str(refused.value) == (f"the data key of inflow-customer:C-1 was not wrapped by the local stand-in for "
                                  f"KMS's key {other}: run with the --state-dir of the local stack that sealed it")
