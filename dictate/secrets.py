"""Secrets live in the OS keyring only: never in config files, logs, history or error messages.

Only a backend that keeps secrets safe is used: the Secret Service (GNOME Keyring, KWallet),
the macOS Keychain or the Windows Credential Locker. A plaintext backend (keyrings.alt installs
one and makes it the default) is refused unless the user names it explicitly in
PYTHON_KEYRING_BACKEND, and even then a warning says so."""

from __future__ import annotations

import enum
import logging
import os
import sys
from typing import Any

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


def _how_to_get_one() -> str:
    if sys.platform == "darwin":
        return "the macOS Keychain should be available; check that you are logged in to a desktop session"
    if sys.platform == "win32":
        return "the Windows Credential Locker should be available; check that you are logged in"
    return ("install and start a Secret Service (gnome-keyring or KWallet) in your desktop session; "
            "without a desktop run dictate inside `dbus-run-session` after `gnome-keyring-daemon --unlock "
            "--components=secrets`")


def no_backend_message() -> str:
    return f"no safe keyring backend is available: {_how_to_get_one()}; dictate does not store secrets in plain text"


# Module prefixes and class names of backends that keep secrets readable on disk or nowhere.
_UNSAFE_MODULES = ("keyrings.alt.file", "keyring.backends.null", "keyring.backends.fail")
_UNSAFE_NAMES = ("PlaintextKeyring", "NullKeyring")


def _is_unsafe(backend: Any) -> bool:
    cls = type(backend)
    return cls.__module__.startswith(_UNSAFE_MODULES) or cls.__name__ in _UNSAFE_NAMES or "plaintext" in cls.__name__.lower()


def _explicitly_chosen(backend: Any) -> bool:
    """The user named this backend themselves: not a silent fallback."""
    chosen = os.environ.get("PYTHON_KEYRING_BACKEND", "")
    cls = type(backend)
    return bool(chosen) and chosen in (f"{cls.__module__}.{cls.__name__}", cls.__name__)


def _priority(backend: Any) -> float:
    try:
        return float(getattr(backend, "priority", 1))
    except Exception:  # a backend whose service went away since start-up (e.g. no session bus)
        return -1.0


def _candidates(backend: Any) -> list[Any]:
    """The concrete backends behind keyring's chainer, highest priority first."""
    try:
        inner = getattr(backend, "backends", None)
    except Exception:
        inner = []
    if inner is None:
        return [backend]
    return sorted(inner, key=_priority, reverse=True)


def _backend() -> Any:
    """The one safe backend to use. Picking it ourselves (rather than keyring's chainer) stops a
    failing Secret Service from silently spilling a key into a lower-priority plaintext file."""
    import keyring

    try:
        chosen = keyring.get_keyring()
    except Exception as exc:  # keyring's own detection can fail on a half-configured desktop
        raise SecretsError(f"{no_backend_message()} ({type(exc).__name__})") from None
    for candidate in _candidates(chosen):
        if _priority(candidate) <= 0:
            continue
        if _is_unsafe(candidate):
            if _explicitly_chosen(candidate):
                log.warning("keyring: using %s because PYTHON_KEYRING_BACKEND asks for it; it is not encrypted",
                            type(candidate).__name__)
                return candidate
            log.warning("keyring: ignoring the plaintext backend %s", type(candidate).__name__)
            continue
        return candidate
    raise SecretsError(no_backend_message())


def _keyring():
    """(backend, keyring.errors); raises SecretsError when there is no safe backend."""
    import keyring.errors

    return _backend(), keyring.errors


def available() -> bool:
    try:
        _backend()
    except SecretsError:
        return False
    return True


def backend_name() -> str:
    try:
        backend = _backend()
    except SecretsError:
        return "none"
    return f"{type(backend).__module__}.{type(backend).__name__}"


def _reason(exc: Exception) -> str:
    # Only the exception type: a backend's message could quote what it was handed.
    return type(exc).__name__


def get(key: SecretKey) -> str | None:
    backend, errors = _keyring()
    try:
        return backend.get_password(SERVICE, key.value)
    except errors.KeyringError as exc:
        raise SecretsError(f"the keyring refused to read {key.value!r} ({_reason(exc)}); is it locked?") from None


def set(key: SecretKey, value: str) -> None:  # noqa: A001 - mirrors keyring's verbs
    if not value:
        raise SecretsError("refusing to store an empty secret")
    backend, errors = _keyring()
    try:
        backend.set_password(SERVICE, key.value, value)
    except errors.KeyringError as exc:
        raise SecretsError(f"the keyring refused to store {key.value!r} ({_reason(exc)}); is it locked?") from None
    log.info("stored secret %r in the keyring", key.value)


def delete(key: SecretKey) -> bool:
    """True when a secret was deleted, False when there was none."""
    backend, errors = _keyring()
    try:
        backend.delete_password(SERVICE, key.value)
    except errors.PasswordDeleteError:
        return False
    except errors.KeyringError as exc:
        raise SecretsError(f"the keyring refused to delete {key.value!r} ({_reason(exc)}); is it locked?") from None
    log.info("deleted secret %r from the keyring", key.value)
    return True
