"""The one Deadline: what is left, and what a write, a follow-up or an alert may take from it."""
import math
import time

from lib.deadline import WRITE_GRACE_S, Deadline


def test_a_deadline_past_leaves_nothing_for_a_follow_up_but_a_grace_for_writes_and_alerts():
    past = Deadline(time.monotonic() - 10, 5)
    assert past.expired() and past.left() < -4.9 and past.elapsed_ms() >= 10_000
    assert past.for_follow_up(3.0, 0.3) is None
    assert past.for_alert(5.0) == WRITE_GRACE_S
    assert past.for_writes() >= time.monotonic() + WRITE_GRACE_S - 0.5


def test_a_deadline_ahead_caps_each_follow_up_and_alert():
    ahead = Deadline.after(60)
    assert not ahead.expired() and ahead.bounded == ahead.at
    assert ahead.for_follow_up(3.0, 0.3) == 3.0 and ahead.for_alert(5.0) == 5.0
    assert ahead.extended(0.8).at == ahead.at + 0.8


def test_no_deadline_is_unbounded_for_the_store():
    none = Deadline.none()
    assert none.bounded is None and math.isinf(none.left()) and none.for_follow_up(3.0, 0.3) == 3.0
