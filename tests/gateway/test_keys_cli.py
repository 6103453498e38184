"""beacon-gateway keys: registry life cycle, registration records, permissions, encryption.

The registration record is the spec's section 7.1 second vector set (resolver private key
4041..41, beacon public key 5f2f..0e, identity key 7c91..76, EID(K=0, t=0) = 436bfe57d5a09505).
"""

from __future__ import annotations

import json
import stat
from typing import TYPE_CHECKING

import pytest

from gateway.cli import EXIT_USAGE, main
from gateway.registry import KeyRegistry
from gateway.sealed_file import KEY_ENVIRONMENT, SealingKey, new_sealing_key

if TYPE_CHECKING:
    from pathlib import Path

SERVICE_PRIVATE = "4041414141414141414141414141414141414141414141414141414141414141"
SERVICE_PUBLIC = "7a1a4e709bf085ac494aba0469b9b1eda0ab1f78b16aabb79ffeda90623e8522"
BEACON_PUBLIC = "5f2ff6357762b9c188343259a9bd899a9a667d170143c0bc1ae905e877914a0e"
IDENTITY_KEY = "7c91330e61dfea4606b5b3ecb4457d76"
INITIAL_EID = "436bfe57d5a09505"
T0 = "2026-01-01T00:00:00Z"
T0_UNIX = 1_767_225_600


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def spec_registry(tmp_path: Path) -> Path:
    path = tmp_path / "registry.toml"
    path.write_text(f'version = 1\n\n[service]\nprivate_key = "{SERVICE_PRIVATE}"\n')
    path.chmod(0o600)
    return path


@pytest.fixture
def record(tmp_path: Path) -> Path:
    path = tmp_path / "record.json"
    path.write_text(
        json.dumps(
            {
                "beacon_id": "bag-7",
                "beacon_public_key": BEACON_PUBLIC,
                "rotation_exponent": 0,
                "initial_clock": 0,
                "initial_eid": INITIAL_EID,
                "registered_at": T0,
                "service_public_key": SERVICE_PUBLIC,
            }
        )
    )
    return path


def test_init_creates_an_owner_only_registry_with_a_service_key(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "new.toml"
    status, out, _ = run(capsys, "keys", "init", str(path))
    assert status == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    registry = KeyRegistry.load(path)
    public = registry.service_public_key
    assert public is not None
    assert public.hex() in out
    assert "private" not in out
    status, _, err = run(capsys, "keys", "init", str(path))
    assert status == EXIT_USAGE
    assert "exists already" in err


def test_register_a_spec_record_then_resolve_list_and_remove(
    capsys: pytest.CaptureFixture[str], spec_registry: Path, record: Path
) -> None:
    status, out, err = run(capsys, "keys", "register", str(spec_registry), "--record", str(record))
    assert status == 0, err
    assert f"clock offset {-T0_UNIX}" in out
    assert KeyRegistry.load(spec_registry)["bag-7"].identity_key.hex() == IDENTITY_KEY

    status, out, _ = run(capsys, "keys", "resolve", str(spec_registry), INITIAL_EID, "--at", T0)
    assert status == 0
    assert out.startswith("bag-7: rotation period starting at beacon time 0")

    status, out, _ = run(
        capsys, "keys", "resolve", str(spec_registry), INITIAL_EID, "--at", str(T0_UNIX + 90)
    )
    assert status == 1
    assert "stale: an EID of bag-7 from 90 rotation period(s) before" in out

    status, out, _ = run(capsys, "keys", "resolve", str(spec_registry), "00" * 8, "--at", T0)
    assert status == 1
    assert "not resolved: unknown" in out

    status, out, _ = run(capsys, "keys", "list", str(spec_registry))
    assert status == 0
    assert "bag-7" in out
    assert SERVICE_PUBLIC in out
    for secret in (IDENTITY_KEY, SERVICE_PRIVATE, INITIAL_EID):
        assert secret not in out

    assert run(capsys, "keys", "remove", str(spec_registry), "bag-7")[0] == 0
    status, _, err = run(capsys, "keys", "remove", str(spec_registry), "bag-7")
    assert status == EXIT_USAGE
    assert "no beacon 'bag-7'" in err


def test_register_from_flags_and_refusals(
    capsys: pytest.CaptureFixture[str], spec_registry: Path
) -> None:
    flags = [
        "keys", "register", str(spec_registry), "--id", "bag-7",
        "--beacon-public-key", BEACON_PUBLIC, "--initial-clock", "0", "--registered-at", T0,
    ]  # fmt: skip
    status, _, err = run(capsys, *flags, "--exponent", "0")
    assert status == EXIT_USAGE
    assert "lacks initial_eid" in err
    status, _, err = run(capsys, *flags, "--exponent", "4", "--initial-eid", INITIAL_EID)
    assert status == EXIT_USAGE
    assert "matches rotation exponent 0" in err
    assert run(capsys, *flags, "--exponent", "0", "--initial-eid", INITIAL_EID)[0] == 0
    status, _, err = run(capsys, *flags, "--exponent", "0", "--initial-eid", INITIAL_EID)
    assert status == EXIT_USAGE
    assert "registered already" in err
    flags += ["--exponent", "0", "--initial-eid", INITIAL_EID, "--replace"]
    assert run(capsys, *flags)[0] == 0


def test_register_needs_a_service_key(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, record: Path
) -> None:
    path = tmp_path / "plain.toml"
    path.write_text("version = 1\n")
    path.chmod(0o600)
    status, _, err = run(capsys, "keys", "register", str(path), "--record", str(record))
    assert status == EXIT_USAGE
    assert "no service key pair" in err


def test_add_shared_identity_key(
    capsys: pytest.CaptureFixture[str], spec_registry: Path, tmp_path: Path
) -> None:
    key_file = tmp_path / "ik.hex"
    key_file.write_text(IDENTITY_KEY + "\n")
    argv = ["keys", "add", str(spec_registry), "--id", "tag", "--identity-key-file", str(key_file)]
    status, _, err = run(capsys, *argv, "--exponent", "0", "--clock-offset", "5")
    assert status == 0, err
    assert KeyRegistry.load(spec_registry)["tag"].clock_offset == 5
    status, _, err = run(capsys, *argv, "--exponent", "0")
    assert status == EXIT_USAGE
    assert "exactly one of --clock-offset and --initial-clock" in err
    argv += ["--exponent", "0", "--initial-clock", "0", "--registered-at", T0, "--replace"]
    assert run(capsys, *argv, "--initial-eid", INITIAL_EID)[0] == 0
    assert KeyRegistry.load(spec_registry)["tag"].clock_offset == -T0_UNIX
    status, _, err = run(capsys, *argv, "--initial-eid", "00" * 8)
    assert status == EXIT_USAGE
    assert "initial EID does not match" in err
    assert IDENTITY_KEY not in err


def test_a_registry_others_can_read_is_refused(
    capsys: pytest.CaptureFixture[str], spec_registry: Path
) -> None:
    spec_registry.chmod(0o644)
    status, _, err = run(capsys, "keys", "list", str(spec_registry))
    assert status == EXIT_USAGE
    assert f"chmod 600 {spec_registry}" in err
    status, _, err = run(capsys, "decode", "--registry", str(spec_registry), "--at", T0, "-")
    assert status == EXIT_USAGE


def test_encrypted_registry_round_trip(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    record: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = new_sealing_key()
    plain = tmp_path / "plain.toml"
    plain.write_text(f'version = 1\n\n[service]\nprivate_key = "{SERVICE_PRIVATE}"\n')
    plain.chmod(0o600)
    sealed = tmp_path / "sealed.toml"
    KeyRegistry.load(plain).save(sealed, sealing_key=SealingKey(key, "test"))
    content = sealed.read_bytes()
    assert SERVICE_PRIVATE.encode() not in content
    assert content.startswith(b"beacon-gateway-sealed: fernet\n")

    status, _, err = run(capsys, "keys", "list", str(sealed))
    assert status == EXIT_USAGE
    assert "is encrypted" in err

    monkeypatch.setenv(KEY_ENVIRONMENT, key.decode())
    assert run(capsys, "keys", "register", str(sealed), "--record", str(record))[0] == 0
    assert IDENTITY_KEY.encode() not in sealed.read_bytes()
    status, out, _ = run(capsys, "keys", "resolve", str(sealed), INITIAL_EID, "--at", T0)
    assert status == 0
    assert out.startswith("bag-7")

    monkeypatch.setenv(KEY_ENVIRONMENT, new_sealing_key().decode())
    status, _, err = run(capsys, "keys", "list", str(sealed))
    assert status == EXIT_USAGE
    assert "does not decrypt" in err

    monkeypatch.delenv(KEY_ENVIRONMENT)
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "registry-key").write_bytes(key)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    assert run(capsys, "keys", "list", str(sealed))[0] == 0

    tampered = bytearray(sealed.read_bytes())
    tampered[-10] ^= 1
    sealed.write_bytes(bytes(tampered))
    status, _, err = run(capsys, "keys", "list", str(sealed))
    assert status == EXIT_USAGE
    assert "wrong key, or the file was altered" in err


def test_registry_key_file_and_a_bad_key(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    key_file = tmp_path / "registry.key"
    key_file.write_bytes(new_sealing_key())
    path = tmp_path / "r.toml"
    assert run(capsys, "keys", "init", str(path), "--registry-key-file", str(key_file))[0] == 0
    assert run(capsys, "keys", "list", str(path), "--registry-key-file", str(key_file))[0] == 0
    key_file.write_text("not a key")
    status, _, err = run(capsys, "keys", "list", str(path), "--registry-key-file", str(key_file))
    assert status == EXIT_USAGE
    assert "is not a Fernet key" in err
    status, _, err = run(
        capsys, "keys", "list", str(path), "--registry-key-file", str(tmp_path / "none")
    )
    assert status == EXIT_USAGE
    assert "cannot read the registry key file" in err


def test_saved_registry_loads_back_the_same(tmp_path: Path) -> None:
    registry = KeyRegistry.from_document(
        {"version": 1, "service": {"private_key": SERVICE_PRIVATE}}
    )
    registered = registry.register_ecdh(
        "bag",
        beacon_public_key=bytes.fromhex(BEACON_PUBLIC),
        rotation_exponent=0,
        initial_clock=0,
        initial_eid=bytes.fromhex(INITIAL_EID),
        registered_at=T0_UNIX,
    )
    path = tmp_path / "r.toml"
    registry.save(path)
    assert path.stat().st_mode & 0o077 == 0
    loaded = KeyRegistry.load(path)
    assert loaded.service_public_key == bytes.fromhex(SERVICE_PUBLIC)
    again = loaded["bag"]
    for field in (
        "identity_key", "rotation_exponent", "clock_offset", "registered_at",
        "beacon_public_key", "initial_clock", "initial_eid",
    ):  # fmt: skip
        assert getattr(again, field) == getattr(registered, field)
    assert again.identity_key.hex() == IDENTITY_KEY
    assert again.kind == "ecdh"
    assert INITIAL_EID not in repr(again)
    assert SERVICE_PRIVATE not in repr(loaded)


def test_new_registry_key_prints_a_fernet_key(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "keys", "new-registry-key")
    assert status == 0
    assert len(out.strip()) == 44
