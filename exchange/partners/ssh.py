"""SSH connections to partners (paramiko): key authentication, strict host keys.

* The client key (Ed25519, ECDSA or RSA, signed with SHA-2 for RSA) is read
  from ``key_file``; its passphrase, if any, from the environment variable
  ``passphrase_env`` names.
* The server's host key must be pinned in the configured ``known_hosts``
  file (plain, hashed and ``[host]:port`` entries, ``*``/``?`` patterns,
  ``!`` negation, ``@revoked``). An unknown or changed key is refused with
  the host, the fingerprint it offered and the command that pins it; there
  is no setting that accepts unknown keys.
* ``connect_timeout`` bounds the TCP connection, the SSH handshake and the
  authentication; ``io_timeout`` every SFTP reply; ``keepalive_seconds``
  sends keepalives on an idle connection.

Every failure is a :class:`~exchange.partners.TransferError` with one line
that says what happened where.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

import paramiko

from exchange.config import Sftp
from exchange.partners import TransferError

#: Flow control of the SFTP channel, what the server may send before it hears from us
#: (bench/sftp.py, 256 MiB on loopback): packets of up to 256 KiB instead of paramiko's
#: 32 KiB mean a quarter of the packets to decrypt in Python (pull about 1.4 times as
#: fast), and a 4 MiB window beat 2 MiB (+40%) and 8 MiB (-35%: paramiko moves what is
#: left in its channel buffer on every read, so a fuller buffer costs more).
WINDOW_BYTES = 4 << 20
MAX_PACKET_BYTES = 256 << 10
#: Ciphers, best first: AES-GCM (one pass, no separate MAC) is about 1.5 times as fast as
#: AES-CTR with HMAC in paramiko (bench/sftp.py); CBC and 3DES are not offered.
CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr", "aes192-ctr", "aes256-ctr")

#: How OpenSSH's ssh-keyscan -t names each host key type.
_KEYSCAN_TYPE = {"ssh-ed25519": "ed25519", "ssh-rsa": "rsa", "ecdsa-sha2-nistp256": "ecdsa",
                 "ecdsa-sha2-nistp384": "ecdsa", "ecdsa-sha2-nistp521": "ecdsa"}
#: Host key algorithms a known_hosts key type allows (RSA keys sign with SHA-2 only).
_ALGORITHMS = {"ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256")}


def where(settings: Sftp) -> str:
    """The server as known_hosts names it: ``host``, or ``[host]:port`` off port 22."""
    return settings.host if settings.port == 22 else f"[{settings.host}]:{settings.port}"


def fingerprint(blob: bytes) -> str:
    """OpenSSH's SHA256 fingerprint of a public key blob."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")


# --- the client key ---------------------------------------------------------

def load_key(settings: Sftp) -> paramiko.PKey:
    """The private key to log in with; TransferError (not retried) when it cannot be used."""
    path = settings.key_file
    passphrase = None
    if settings.passphrase_env:
        passphrase = os.environ.get(settings.passphrase_env)
        if passphrase is None:
            raise TransferError(f"passphrase_env names ${settings.passphrase_env}, which is not set: export "
                                f"the passphrase of {path} in it")
    try:
        return paramiko.PKey.from_path(path, passphrase.encode("utf-8") if passphrase is not None else None)
    except FileNotFoundError:
        raise TransferError(f"key_file {path} does not exist; make one with: ssh-keygen -t ed25519 -f {path} "
                            "(and send the .pub file to the partner)") from None
    except paramiko.PasswordRequiredException:
        raise TransferError(f"key_file {path} is protected by a passphrase: set passphrase_env to the name "
                            "of an environment variable holding it") from None
    except (paramiko.SSHException, paramiko.UnknownKeyType, ValueError, OSError) as error:
        hint = " (wrong passphrase?)" if passphrase is not None else ""
        raise TransferError(f"cannot read key_file {path}{hint}: {error or type(error).__name__}") from None


# --- known_hosts ----------------------------------------------------------

@dataclass(frozen=True)
class _Pinned:
    kind: str
    blob: bytes


def _pattern_matches(pattern: str, name: str) -> bool:
    if pattern.startswith("|1|"):  # hashed: |1|base64(salt)|base64(HMAC-SHA1(salt, name))
        try:
            _, _, salt, digest = pattern.split("|")
            mac = hmac.new(base64.b64decode(salt), name.encode("utf-8"), hashlib.sha1).digest()
            return hmac.compare_digest(mac, base64.b64decode(digest))
        except (ValueError, TypeError):
            return False
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern.lower())
    return re.fullmatch(regex, name.lower()) is not None


def _host_matches(patterns: str, name: str) -> bool:
    """OpenSSH's rule: some pattern matches and no negated (``!``) one does."""
    matched = False
    for pattern in patterns.split(","):
        if pattern.startswith("!"):
            if _pattern_matches(pattern[1:], name):
                return False
        elif _pattern_matches(pattern, name):
            matched = True
    return matched


def pinned_keys(settings: Sftp) -> tuple[list[_Pinned], list[_Pinned]]:
    """(keys pinned for this server, revoked keys) from known_hosts."""
    path = settings.known_hosts
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise TransferError(f"known_hosts file {path} does not exist; pin the partner's host key: "
                            f"{_keyscan(settings, None)} >> {path} (then compare the fingerprint, "
                            f"ssh-keygen -lf {path}, with the one the partner gives you)") from None
    except OSError as error:
        raise TransferError(f"cannot read known_hosts file {path}: {error.strerror}") from None
    name = where(settings)
    pinned, revoked = [], []
    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        marker = fields.pop(0) if fields[0].startswith("@") else None
        if len(fields) < 3 or marker not in (None, "@revoked"):
            continue  # @cert-authority: host certificates are not supported
        patterns, kind, encoded = fields[:3]
        try:
            blob = base64.b64decode(encoded, validate=True)
        except ValueError:
            continue
        if marker == "@revoked":
            revoked.append(_Pinned(kind, blob))
        elif _host_matches(patterns, name):
            pinned.append(_Pinned(kind, blob))
    return pinned, revoked


def _keyscan(settings: Sftp, kind: str | None) -> str:
    port = f" -p {settings.port}" if settings.port != 22 else ""
    scan_type = f" -t {_KEYSCAN_TYPE.get(kind, kind)}" if kind else ""
    return f"ssh-keyscan{port}{scan_type} {settings.host}"


def _check_host_key(settings: Sftp, offered: paramiko.PKey, pinned: list[_Pinned], revoked: list[_Pinned]) -> None:
    kind, blob = offered.get_name(), offered.asbytes()
    name, path = where(settings), settings.known_hosts
    offer = f"it offered the {kind} key {fingerprint(blob)}"
    if any(r.blob == blob for r in revoked):
        raise TransferError(f"host key of {name} is marked @revoked in {path}: {offer}; connection refused")
    if any(p.blob == blob for p in pinned):
        return
    if not pinned:
        raise TransferError(
            f"host {name} is not in known_hosts {path}: {offer}. Check this fingerprint with the partner, then "
            f"pin the key: {_keyscan(settings, kind)} >> {path}")
    known = ", ".join(f"{p.kind} {fingerprint(p.blob)}" for p in pinned)
    raise TransferError(
        f"host key of {name} does not match known_hosts {path}: {offer}, pinned is {known}. Someone may be "
        f"intercepting the connection; if the partner confirms a new key, remove the old one "
        f"(ssh-keygen -R '{name}' -f {path}) and pin the new one: {_keyscan(settings, kind)} >> {path}")


# --- connecting ---------------------------------------------------------------

def _tcp(settings: Sftp) -> socket.socket:
    host, port = settings.host, settings.port
    try:
        return socket.create_connection((host, port), timeout=settings.connect_timeout)
    except socket.gaierror as error:
        raise TransferError(f"cannot resolve host name {host} (DNS): {error.strerror}", retry=True) from None
    except ConnectionRefusedError:
        raise TransferError(f"{host}:{port} refused the connection (is the SFTP server running, is the port "
                            "right?)", retry=True) from None
    except TimeoutError:
        raise TransferError(f"no answer from {host}:{port} within {settings.connect_timeout:g} s "
                            "(connect_timeout; server down or a firewall in the way?)", retry=True) from None
    except OSError as error:
        raise TransferError(f"cannot connect to {host}:{port}: {error.strerror or error}", retry=True) from None


def open_transport(settings: Sftp, key: paramiko.PKey) -> paramiko.Transport:
    """A connected, verified and authenticated SSH transport."""
    pinned, revoked = pinned_keys(settings)
    sock = _tcp(settings)
    transport = paramiko.Transport(sock, default_window_size=WINDOW_BYTES, default_max_packet_size=MAX_PACKET_BYTES)
    try:
        transport.banner_timeout = settings.connect_timeout
        transport.handshake_timeout = settings.connect_timeout
        transport.auth_timeout = settings.connect_timeout
        transport.channel_timeout = settings.io_timeout  # opening the SFTP channel
        options = transport.get_security_options()
        options.ciphers = [c for c in CIPHERS if c in options.ciphers]
        # Ask for the pinned key types first, so that the server offers a key we know.
        first = [a for p in pinned for a in _ALGORITHMS.get(p.kind, (p.kind,)) if a in options.key_types]
        options.key_types = list(dict.fromkeys(first + list(options.key_types)))
        host = f"{settings.host}:{settings.port}"
        try:
            transport.start_client(timeout=settings.connect_timeout)
        except (paramiko.SSHException, EOFError, OSError) as error:
            text = str(error)
            if "banner" in text or "timed out" in text.lower() or isinstance(error, TimeoutError):
                raise TransferError(f"no SSH answer from {host} within {settings.connect_timeout:g} s "
                                    "(connect_timeout)", retry=True) from None
            raise TransferError(f"SSH handshake with {host} failed: {text or type(error).__name__}",
                                retry=True) from None
        if not transport.is_active() or transport.host_key is None:  # start_client gave up waiting, silently
            raise TransferError(f"no SSH answer from {host} within {settings.connect_timeout:g} s "
                                "(connect_timeout)", retry=True)
        _check_host_key(settings, transport.get_remote_server_key(), pinned, revoked)
        try:
            more = transport.auth_publickey(settings.user, key)
        except paramiko.AuthenticationException:
            raise TransferError(
                f"{host} refused the login of user {settings.user} with key {settings.key_file} "
                f"({key.get_name()} {key.fingerprint}): authentication failed (is the public key in the "
                "partner's authorized_keys for that user?)", retry=True) from None
        except (paramiko.SSHException, EOFError, OSError) as error:
            raise TransferError(f"connection to {host} lost while logging in: {error or type(error).__name__}",
                                retry=True) from None
        if more:
            raise TransferError(f"{host} wants more than a key to log in ({', '.join(more)}); only key "
                                "authentication is supported")
        if settings.keepalive_seconds:
            transport.set_keepalive(settings.keepalive_seconds)
        return transport
    except (paramiko.SSHException, EOFError, OSError) as error:  # anything the steps above did not expect
        transport.close()
        raise TransferError(f"SSH connection to {settings.host}:{settings.port} failed: "
                            f"{error or type(error).__name__}", retry=True) from None
    except BaseException:
        transport.close()
        raise
