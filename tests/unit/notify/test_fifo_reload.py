"""plan_fifo_reload: which notify FIFOs a reload keeps, adds, retires, re-owns, re-reads."""

from __future__ import annotations

from pykeepalived.notify.fifo import FifoWriter, plan_fifo_reload
from pykeepalived.notify.script import Credentials, PreparedScript


def reader(*argv: str, label: str = "vrrp_notify_fifo_script", uid: int = 0) -> PreparedScript:
    creds = Credentials("u", uid, uid, (uid,))
    return PreparedScript(argv[0], argv, creds, label)


def test_nothing_changed_keeps_the_running_writers() -> None:
    old = [FifoWriter("/run/a", reader=reader("/bin/r", "x")), FifoWriter("/run/b")]
    new = [FifoWriter("/run/a", reader=reader("/bin/r", "x")), FifoWriter("/run/b")]
    change = plan_fifo_reload(old, new)
    assert not change
    assert change.fifos == old  # the same objects: open FIFOs, running readers
    assert change.summary() == "notify FIFOs: unchanged"


def test_the_label_alone_does_not_restart_a_reader() -> None:
    # notify_fifo_script and vrrp_notify_fifo_script with the same command on one path
    old = [FifoWriter("/run/a", reader=reader("/bin/r", label="notify_fifo_script"))]
    new = [FifoWriter("/run/a", reader=reader("/bin/r", label="vrrp_notify_fifo_script"))]
    assert not plan_fifo_reload(old, new)


def test_a_changed_reader_is_replaced_on_the_same_writer() -> None:
    old = [FifoWriter("/run/a", reader=reader("/bin/r", "1"))]
    new_reader = reader("/bin/r", "2")
    change = plan_fifo_reload(old, [FifoWriter("/run/a", reader=new_reader)])
    assert change.fifos == old
    assert change.readers == [(old[0], new_reader)]
    assert (change.added, change.retired, change.owners) == ([], [], [])
    assert change.summary() == "notify FIFOs: reader of /run/a restarted"
    # another user is another process too
    change = plan_fifo_reload(old, [FifoWriter("/run/a", reader=reader("/bin/r", "1", uid=7))])
    assert len(change.readers) == 1
    # a reader removed: stopped, none started
    change = plan_fifo_reload(old, [FifoWriter("/run/a")])
    assert change.readers == [(old[0], None)]


def test_a_changed_owner_is_set_on_the_same_writer() -> None:
    old = [FifoWriter("/run/a", user="nobody")]
    change = plan_fifo_reload(old, [FifoWriter("/run/a", user="daemon", group="daemon")])
    assert change.fifos == old
    assert change.owners == [(old[0], "daemon", "daemon")]
    assert change.summary() == "notify FIFOs: owner of /run/a changed"


def test_a_new_path_retires_the_old_writer() -> None:
    old = [FifoWriter("/run/a"), FifoWriter("/run/b")]
    new = [FifoWriter("/run/c"), FifoWriter("/run/b")]
    change = plan_fifo_reload(old, new)
    assert change.fifos == [new[0], old[1]]
    assert change.added == [new[0]]
    assert change.retired == [old[0]]
    assert change.summary() == "notify FIFOs: /run/c added, /run/a removed"


def test_paths_match_whatever_keyword_named_them() -> None:
    # notify_fifo and vrrp_notify_fifo swapped their paths: both writers are kept
    old = [FifoWriter("/run/a"), FifoWriter("/run/b")]
    new = [FifoWriter("/run/b"), FifoWriter("/run/a")]
    change = plan_fifo_reload(old, new)
    assert not change
    assert change.fifos == [old[1], old[0]]


def test_all_removed_and_all_added() -> None:
    old = [FifoWriter("/run/a")]
    assert plan_fifo_reload(old, []).retired == old
    assert plan_fifo_reload(old, []).fifos == []
    new = [FifoWriter("/run/a"), FifoWriter("/run/a")]  # one path named twice
    change = plan_fifo_reload([], new)
    assert change.added == new
    change = plan_fifo_reload(old, new)
    assert change.fifos == [old[0], new[1]]
    assert change.added == [new[1]]
