"""The delivery worker's settings from the environment: defaults, clear errors, no secret in repr."""

import pytest

from events.delivery_policy import RetryPolicy
from processors.services.delivery_worker import DEFAULT_TIMEOUT_SECONDS, DeliverySettings
from processors.adapters.webhook_signing import new_secret


def test_defaults_refuse_private_targets_and_plain_http():
    settings = DeliverySettings.from_env({})
    assert (settings.retry, settings.timeout_seconds, settings.signing_secret) == (
        RetryPolicy(3, 1.0, 300.0), DEFAULT_TIMEOUT_SECONDS, None)
    assert (settings.targets.allow_http, settings.targets.allow_networks) == (False, ())


def test_the_signing_secret_never_shows_in_a_repr():
    secret = new_secret(b"s" * 32)
    settings = DeliverySettings.from_env({"DYNAFOLD_SIGNING_SECRET": secret, "DYNAFOLD_DELIVERY_TIMEOUT_SECONDS": "2.5"})
    assert settings.signing_secret == secret and settings.timeout_seconds == 2.5
    assert secret not in repr(settings)


@pytest.mark.parametrize("env, message", [
    ({"DYNAFOLD_DELIVERY_TIMEOUT_SECONDS": "soon"}, "must be a number of seconds"),
    ({"DYNAFOLD_DELIVERY_TIMEOUT_SECONDS": "0"}, r"must be in \(0, 900\]"),
    ({"DYNAFOLD_ALLOW_TARGETS": "localhost"}, "not a CIDR"),
    ({"DYNAFOLD_RETRY_CAP_SECONDS": "x"}, "DYNAFOLD_RETRY_CAP_SECONDS must be a number"),
])
def test_bad_settings_name_the_variable(env, message):
    with pytest.raises(ValueError, match=message):
        DeliverySettings.from_env(env)
