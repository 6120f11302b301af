"""The web app's admission: a fixed number of workers, a bounded waiting room with a bounded
wait, and "busy" beyond it. Driven with threads and events, so every overlap is certain."""

from __future__ import annotations

import threading
from collections.abc import Callable

from ui.admission import Admission

# Refusals come at once; were one made to wait, it would wait the full 600 s. This guard
# turns that hang into a failure; it is not a speed requirement.
HANG = 60


def occupy(admission: Admission) -> tuple[threading.Thread, threading.Event, list[bool]]:
    """A thread that takes a slot (if it is given one) and keeps it until the event is set."""
    release, entered, outcome = threading.Event(), threading.Event(), []

    def work() -> None:
        with admission.slot() as admitted:
            outcome.append(admitted)
            entered.set()
            if admitted:
                release.wait()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    entered.wait()
    return thread, release, outcome


def wait_until(condition: Callable[[], bool]) -> None:
    event = threading.Event()
    while not condition():
        event.wait(0.01)


def test_beyond_the_waiting_room_the_answer_is_busy_at_once() -> None:
    admission = Admission(workers=1, waiting=1, wait_s=600)
    worker, release_worker, first = occupy(admission)
    waiter_outcome: list[bool] = []

    def wait_for_turn() -> None:
        with admission.slot() as admitted:
            waiter_outcome.append(admitted)

    waiter = threading.Thread(target=wait_for_turn, daemon=True)
    waiter.start()
    wait_until(lambda: admission._waiting == 1)  # the waiting room is now full
    late = threading.Thread(target=wait_for_turn, daemon=True)
    late.start()
    late.join(HANG)
    assert not late.is_alive(), "a question beyond the waiting room was made to wait"
    assert waiter_outcome == [False]  # told busy at once
    release_worker.set()
    worker.join()
    waiter.join()
    assert first == [True] and waiter_outcome == [False, True]  # the waiter got the slot
    with admission.slot() as admitted:
        assert admitted is True  # and gave it back


def test_a_wait_is_bounded_then_busy() -> None:
    admission = Admission(workers=1, waiting=4, wait_s=0.05)
    worker, release_worker, _ = occupy(admission)
    with admission.slot() as admitted:
        assert admitted is False  # waited its bounded time, then heard busy
    assert admission._waiting == 0
    release_worker.set()
    worker.join()


def test_workers_compute_side_by_side_up_to_the_limit() -> None:
    admission = Admission(workers=3, waiting=0, wait_s=600)
    held = [occupy(admission) for _ in range(3)]
    assert all(outcome == [True] for _, _, outcome in held)
    with admission.slot() as admitted:
        assert admitted is False
    for thread, release, _ in held:
        release.set()
        thread.join()
