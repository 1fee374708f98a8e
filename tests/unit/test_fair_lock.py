"""The fair semaphore behind the database write lock and the API's ingestion slots."""
import threading
import time

from dashboard.fair_lock import FairSemaphore


def test_waiters_are_served_in_the_order_they_came():
    """Given a held slot and three waiters arriving in turn, when the slot is released three times,
    they get it in arrival order (no newcomer takes it past an older waiter)."""
    slots = FairSemaphore(1)
    assert slots.acquire()
    served: list[int] = []

    def wait(n: int) -> None:
        assert slots.acquire(timeout=5)
        served.append(n)
        slots.release()

    threads = []
    for n in range(3):
        threads.append(threading.Thread(target=wait, args=(n,)))
        threads[-1].start()
        time.sleep(0.05)
    slots.release()
    for thread in threads:
        thread.join(5)
    assert served == [0, 1, 2]


def test_a_waiter_whose_time_runs_out_gives_up_and_leaves_the_queue():
    slots = FairSemaphore(1)
    assert slots.acquire()
    assert slots.acquire(timeout=0.05) is False
    slots.release()
    assert slots.acquire(timeout=0.05) is True
