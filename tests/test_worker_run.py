"""The trusted side reading a worker, driven message by message through real pipes (no worker):
what it takes, what it drops unparsed, what a run may send, and what a question is asked for."""
from __future__ import annotations

import json
import os
import threading
import time

import pytest

from grader.config import Limits
from grader.folders import Folder
from grader.protocol import Kind, dump_message
from grader.worker_run import MessageBudget, RunTerms, _read_worker, _Replies

ITEMS = frozenset({"get_WOV", "embedding"})


def read(lines: list[bytes], terms: RunTerms | None = None, limits: Limits | None = None, replies=None):
    """What the trusted side makes of these bytes on a worker's message pipe."""
    msg_r, msg_w = os.pipe()
    out_r, out_w = os.pipe()
    os.close(out_w)

    def write():
        try:
            with os.fdopen(msg_w, "wb") as f:
                for line in lines:
                    f.write(line)
        except BrokenPipeError:  # the reader stopped reading (a run it ended)
            pass

    writer = threading.Thread(target=write)
    writer.start()
    try:
        return _read_worker(msg_r, out_r, limits or Limits(), time.monotonic() + 60, terms or RunTerms(ITEMS), replies)
    finally:
        os.close(msg_r)
        os.close(out_r)
        writer.join()


def case(item: str, label: str = "x") -> bytes:
    return dump_message(Kind.CASE, item=item, case=label, ok=True, value=1)


def test_results_count_only_for_the_item_the_worker_started():
    run = read([dump_message(Kind.READY), case("get_WOV"),  # before its start: refused
                dump_message(Kind.START, item="get_WOV"), case("get_WOV"), case("embedding"),  # not the current item
                dump_message(Kind.END, item="embedding"),  # not the current item
                dump_message(Kind.END, item="get_WOV"), case("get_WOV", "late"),  # after its end
                dump_message(Kind.START, item="get_WOV"),  # a second start
                dump_message(Kind.START, item="get_post_final_ln_dir"),  # not asked for in this run
                dump_message(Kind.DONE)])
    kinds = [(m["kind"], m.get("item"), m.get("case")) for m in run.messages]
    assert kinds == [(Kind.READY, None, None), (Kind.START, "get_WOV", None), (Kind.CASE, "get_WOV", "x"),
                     (Kind.END, "get_WOV", None), (Kind.DONE, None, None)]
    assert run.dropped == 6 and len(run.protocol_errors) == 6


def test_a_message_of_no_known_kind_is_dropped_as_it_arrives_without_being_parsed():
    huge = b'{"kind":"nonsense","data":[' + b"0," * 4_000_000 + b"0]}\n"
    run = read([dump_message(Kind.READY), huge, b"not json at all\n", b'{"no": "kind"}\n', dump_message(Kind.DONE)])
    assert [m["kind"] for m in run.messages] == [Kind.READY, Kind.DONE]
    assert run.dropped == 3 and run.message_bytes < 1000  # the unknown lines cost nothing of the budget


def test_a_run_and_a_submission_send_at_most_their_budget():
    limits = Limits(message_bytes=100_000)
    big = dump_message(Kind.CASE, item="get_WOV", case="x", ok=True, value="y" * 60_000)
    run = read([dump_message(Kind.START, item="get_WOV"), big, big, dump_message(Kind.DONE)], limits=limits)
    assert run.ended_by == "message_budget" and len(run.messages) == 2
    budget = MessageBudget(10**9, 150_000)
    first = read([dump_message(Kind.START, item="get_WOV"), big, dump_message(Kind.END, item="get_WOV")],
                 RunTerms(ITEMS, budget=budget))
    assert first.ended_by == "" and budget.spent > 60_000
    second = read([dump_message(Kind.START, item="embedding"), big, big], RunTerms(ITEMS, budget=budget))
    assert second.ended_by == "message_budget"  # the submission's budget, spent over two runs
    values = b'{"kind":"case","item":"get_WOV","case":"x","ok":true,"value":[' + b"1," * 9_000_000 + b"1]}\n"
    run = read([dump_message(Kind.START, item="get_WOV"), values], limits=Limits(message_bytes=10**9))
    assert run.ended_by == "message_budget"  # too many values to parse, whatever the bytes


def test_a_known_message_over_its_size_limit_ends_the_run():
    run = read([dump_message(Kind.READY, cell_errors=["x" * (2 << 20)])])
    assert run.ended_by == "message_error" and run.messages == []


def test_each_question_is_asked_for_the_item_being_computed_and_knows_which_are_done():
    asked = []

    def answer(msg, item, done):
        asked.append((msg["function"], item, sorted(done)))
        return {"ok": True, "value": 1}

    reply_r, reply_w = os.pipe()
    replies = _Replies(answer, lambda: reply_w)
    ask = dump_message(Kind.ASK, function="get_ln_fit", args=[], kwargs={})
    read([ask, dump_message(Kind.READY), dump_message(Kind.START, item="get_WOV"), ask,
          dump_message(Kind.END, item="get_WOV"), dump_message(Kind.START, item="embedding"), ask], replies=replies)
    replies.close()
    assert asked == [("get_ln_fit", None, []), ("get_ln_fit", "get_WOV", []), ("get_ln_fit", "embedding", ["get_WOV"])]
    assert [json.loads(line)["ok"] for line in os.read(reply_r, 1 << 16).splitlines()] == [True] * 3
    os.close(reply_r)


def test_a_slot_over_its_storage_limit_ends_the_run(tmp_path):
    """What a run writes in its slot's folder is measured as it runs (through descriptors)."""
    slot = tmp_path / "slot"
    (slot / "run" / "deep" / "er").mkdir(parents=True)
    (slot / "run" / "deep" / "er" / "big").write_bytes(os.urandom(300_000))
    msg_r, msg_w = os.pipe()
    out_r, out_w = os.pipe()
    with Folder.open(slot) as folder:
        run = _read_worker(msg_r, out_r, Limits(storage_bytes=200_000), time.monotonic() + 30,
                           RunTerms(ITEMS, storage=folder))
    for fd in (msg_r, msg_w, out_r, out_w):
        os.close(fd)
    assert run.ended_by == "storage" and run.storage_bytes >= 300_000


def test_a_folder_is_emptied_through_its_descriptor_whatever_modes_and_links_were_left(tmp_path):
    from grader.folders import usage

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("the grader's")
    run = tmp_path / "run"
    (run / "a" / "b").mkdir(parents=True)
    (run / "a" / "b" / "f").write_text("x" * 5000)
    (run / "link").symlink_to(outside)
    os.chmod(run / "a", 0)
    with Folder.open(run) as folder:
        if os.geteuid() != 0:
            assert usage(folder, 10) >= 5000
        folder.empty()
        assert folder.names() == []
    assert (outside / "keep").read_text() == "the grader's"


@pytest.mark.parametrize("kind", sorted({Kind.READY, Kind.START, Kind.END, Kind.DONE, Kind.STATEMENT}))
def test_every_small_kind_round_trips(kind):
    from grader.protocol import load_message

    assert load_message(dump_message(kind, item="get_WOV").rstrip(b"\n"))["kind"] == kind
