"""Secrets live in the OS keyring only: never in config files, logs, history or error messages."""

from __future__ import annotations

import enum
import logging

from dictate.errors import SecretsError

log = logging.getLogger(__name__)

SERVICE = "dictate"


class SecretKey(enum.Enum):
    REMOTE = "remote"  # API key of the OpenAI-compatible endpoint


def parse_key(name: str) -> SecretKey:
    try:
        return SecretKey(name)
    except ValueError:
        known = ", ".join(k.value for k in SecretKey)
        raise SecretsError(f"unknown secret {name!r}; known: {known}") from None


_NO_BACKEND = (
    "no keyring backend is available: start a Secret Service (GNOME Keyring or KWallet) "
    "in your desktop session; dictate does not store secrets in plain text"
)


def _keyring():
    import keyring
    import keyring.errors
    from keyring.backends import fail

    backend = keyring.get_keyring()
    # The chainer wraps the real backends; an empty chain or the fail backend means nowhere safe to store.
    if isinstance(backend, fail.Keyring) or getattr(backend, "priority", 1) <= 0 and not getattr(backend, "backends", True):
        raise SecretsError(_NO_BACKEND)
    return keyring, keyring.errors


def backend_name() -> str:
    import keyring

    backend = keyring.get_keyring()
    return f"{type(backend).__module__}.{type(backend).__name__}"


def get(key: SecretKey) -> str | None:
    keyring, errors = _keyring()
    try:
        return keyring.get_password(SERVICE, key.value)
    except errors.KeyringError as exc:
        raise SecretsError(f"the keyring refused to read {key.value!r}: {type(exc).__name__}") from None


def set(key: SecretKey, value: str) -> None:  # noqa: A001 - mirrors keyring's verbs
    if not value:
        raise SecretsError("refusing to store an empty secret")
    keyring, errors = _keyring()
    try:
        keyring.set_password(SERVICE, key.value, value)
    except errors.KeyringError as exc:
        raise SecretsError(f"the keyring refused to store {key.value!r}: {type(exc).__name__}") from None
    log.info("stored secret %r in the keyring", key.value)


def delete(key: SecretKey) -> bool:
    """True when a secret was deleted, False when there was none."""
    keyring, errors = _keyring()
    try:
        keyring.delete_password(SERVICE, key.value)
    except errors.PasswordDeleteError:
        return False
    except errors.KeyringError as exc:
        raise SecretsError(f"the keyring refused to delete {key.value!r}: {type(exc).__name__}") from None
    log.info("deleted secret %r from the keyring", key.value)
    return True
