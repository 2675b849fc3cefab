"""Credentials are encrypted with the configured keys, and keys rotate."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from partnerhub.integrations.secrets import CredentialsUnreadable, check_credentials_keys, decrypt, encrypt, rotate


def test_round_trip_and_no_plain_text(settings):
    settings.CREDENTIALS_KEYS = [Fernet.generate_key().decode()]
    token = encrypt({"client_secret": "s3cr3t-value", "client_id": "cid"})
    assert "s3cr3t" not in token
    assert decrypt(token) == {"client_id": "cid", "client_secret": "s3cr3t-value"}


def test_each_encryption_differs(settings):
    settings.CREDENTIALS_KEYS = [Fernet.generate_key().decode()]
    assert encrypt({"token": "x"}) != encrypt({"token": "x"})


def test_a_token_from_another_key_is_unreadable_with_a_clear_message(settings):
    settings.CREDENTIALS_KEYS = [Fernet.generate_key().decode()]
    token = encrypt({"token": "x"})
    settings.CREDENTIALS_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(CredentialsUnreadable, match="cannot be decrypted"):
        decrypt(token)


def test_rotation_new_key_first_old_key_still_reads(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CREDENTIALS_KEYS = [old]
    token = encrypt({"token": "x"})
    settings.CREDENTIALS_KEYS = [new, old]
    assert decrypt(token) == {"token": "x"}
    rotated = rotate(token)
    settings.CREDENTIALS_KEYS = [new]
    assert decrypt(rotated) == {"token": "x"}
    with pytest.raises(CredentialsUnreadable):
        decrypt(token)


def test_without_keys_development_derives_one_from_the_secret_key(settings):
    settings.CREDENTIALS_KEYS = []
    settings.PRODUCTION = False
    token = encrypt({"token": "x"})
    assert decrypt(token) == {"token": "x"}
    settings.SECRET_KEY = "another-secret-key-for-this-test-only-0123456789"
    with pytest.raises(CredentialsUnreadable):
        decrypt(token)


def test_production_refuses_to_run_without_keys(settings):
    settings.CREDENTIALS_KEYS = []
    settings.PRODUCTION = True
    with pytest.raises(ImproperlyConfigured, match="CREDENTIALS_KEYS"):
        encrypt({"token": "x"})
    assert [error.id for error in check_credentials_keys(None)] == ["partnerhub.E101"]


def test_a_malformed_key_is_a_configuration_error(settings):
    settings.CREDENTIALS_KEYS = ["not-a-fernet-key"]
    with pytest.raises(ImproperlyConfigured, match="not a Fernet key"):
        encrypt({"token": "x"})
    assert [error.id for error in check_credentials_keys(None)] == ["partnerhub.E101"]


def test_deploy_check_wants_explicit_keys(settings):
    settings.CREDENTIALS_KEYS = []
    settings.PRODUCTION = False
    assert [error.id for error in check_credentials_keys(None)] == ["partnerhub.E102"]
    settings.CREDENTIALS_KEYS = [Fernet.generate_key().decode()]
    assert check_credentials_keys(None) == []


def test_empty_token_means_no_credentials():
    assert decrypt("") == {}
    assert rotate("") == ""


def test_the_deploy_check_is_registered():
    from django.core.checks import registry

    assert check_credentials_keys in registry.registry.get_checks(include_deployment_checks=True)
