"""Where the journal goes by default: systemd's state directory, /var/lib, the user's state dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sentinel.journal import default_path, state_dir


def test_systemd_state_directory_wins_and_its_first_entry_is_taken(tmp_path: Path) -> None:
    env = {"STATE_DIRECTORY": f"{tmp_path}/a:{tmp_path}/b", "XDG_STATE_HOME": "/x"}
    assert state_dir(env, system_dir=tmp_path / "sys") == tmp_path / "a"
    assert default_path(env) == tmp_path / "a" / "journal.db"


def test_system_dir_when_it_exists_writable_or_can_be_created(tmp_path: Path) -> None:
    existing = tmp_path / "lib" / "sentinel"
    existing.mkdir(parents=True)
    assert state_dir({}, system_dir=existing) == existing
    creatable = tmp_path / "nope" / "sentinel"
    assert state_dir({}, system_dir=creatable) == creatable
    assert not creatable.exists()  # picking a path creates nothing


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_user_state_dir_when_the_system_dir_is_not_writable(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        system = locked / "sentinel"
        home = tmp_path / "home"
        assert state_dir({}, system_dir=system, home=home) == home / ".local/state/sentinel"
        env = {"XDG_STATE_HOME": str(tmp_path / "xdg")}
        assert state_dir(env, system_dir=system, home=home) == tmp_path / "xdg" / "sentinel"
    finally:
        locked.chmod(0o700)


def test_user_state_dir_when_the_system_dir_is_a_file(tmp_path: Path) -> None:
    system = tmp_path / "sentinel"
    system.write_text("not a directory")
    home = tmp_path / "home"
    assert state_dir({}, system_dir=system, home=home) == home / ".local/state/sentinel"
    env = {"XDG_STATE_HOME": "relative/is/ignored"}
    assert state_dir(env, system_dir=system, home=home) == home / ".local/state/sentinel"
    assert default_path({}, system_dir=system, home=home).name == "journal.db"
