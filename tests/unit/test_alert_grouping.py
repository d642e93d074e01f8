"""Notification groups and their timing (Alertmanager's): group_wait, group_interval,
repeat_interval; acknowledgements told at once; silenced alerts left out and recorded."""

from __future__ import annotations

from datetime import datetime, timedelta

from alerting.grouping import Group, Timing, absorb, due_at, flush, group_of, groups_for
from alerting.subscriptions import Subscription
from tests.samples import ALERT, SILENCE, T0
from vigil.wire.records import Alert

TIMING = Timing(group_wait=30, group_interval=300, repeat_interval=4 * 3600)
SUB = Subscription(
    id="sub-1",
    name="risk",
    channel="webhook",
    url="https://hooks.example.com/h",
    models=["*"],
    created_at=T0,
)


def alert(fp: str, **changes: object) -> Alert:
    base = {"fingerprint": fp, "severity": "high", "feature": fp, "updated_at": T0}
    return ALERT.model_copy(update=base | changes)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def grouped(*alerts: Alert, group: Group | None = None, now: datetime = T0) -> Group:
    return absorb(group, SUB, list(alerts), now)


def test_a_version_s_alerts_share_a_group_and_other_labels_split_them() -> None:
    one, two = alert("a"), alert("b")
    other = alert("c", model_version="2.0.0")
    keys = groups_for([SUB], [one, two, other])
    assert sorted(len(alerts) for _, alerts in keys.values()) == [1, 2]
    _, labels = group_of(SUB, one)
    assert labels == {"model_id": "credit-risk", "model_version": "1.0.0"}
    by_rule = SUB.model_copy(update={"group_by": ["rule"]})
    assert len(groups_for([by_rule], [one, two, other])) == 1


def test_a_new_group_waits_group_wait_but_a_critical_alert_goes_at_once() -> None:
    group = grouped(alert("a"))
    assert due_at(group, TIMING, [], T0) == at(30)
    assert due_at(grouped(alert("a", severity="critical")), TIMING, [], T0) == T0


def test_changes_wait_group_interval_repeats_wait_repeat_interval() -> None:
    group = grouped(alert("a"), alert("b"))
    first = flush(group, [], at(30))
    assert [a.fingerprint for a in first.alerts or []] == ["a", "b"]
    after = first.group
    assert due_at(after, TIMING, [], at(31)) == at(30 + 4 * 3600)  # nothing new: a repeat
    grown = grouped(alert("c"), group=after, now=at(40))
    assert due_at(grown, TIMING, [], at(40)) == at(330)  # a change: after group_interval
    second = flush(grown, [], at(330))
    # Everything still firing is listed (Alertmanager sends the whole group).
    assert sorted(a.fingerprint for a in second.alerts or []) == ["a", "b", "c"]


def test_a_resolution_is_told_once_and_only_to_those_told_it_fired() -> None:
    told = flush(grouped(alert("a"), alert("b")), [], at(30)).group
    resolved = alert("a", status="resolved", updated_at=at(60))
    group = grouped(resolved, group=told, now=at(60))
    assert due_at(group, TIMING, [], at(60)) == at(330)
    done = flush(group, [], at(330))
    assert [(a.fingerprint, a.status) for a in done.alerts or []] == [
        ("a", "resolved"),
        ("b", "firing"),
    ]
    assert "a" not in done.group.alerts and not done.done
    # Fired and resolved before its group ever notified: nobody hears of it.
    quiet = grouped(alert("x"), now=T0)
    quiet = grouped(alert("x", status="resolved", updated_at=at(5)), group=quiet, now=at(5))
    assert due_at(quiet, TIMING, [], at(5)) is None
    assert flush(quiet, [], at(30)).done


def test_an_acknowledgement_is_told_at_once_and_stops_the_repeats() -> None:
    told = flush(grouped(alert("a")), [], at(30)).group
    acked = alert("a", status="acknowledged", acknowledged_by="ana", updated_at=at(100))
    group = grouped(acked, group=told, now=at(100))
    assert due_at(group, TIMING, [], at(100)) == at(30)  # overdue: now
    notified = flush(group, [], at(100))
    assert [(a.status, a.acknowledged_by) for a in notified.alerts or []] == [
        ("acknowledged", "ana")
    ]
    # No repeats while acknowledged; the group is looked at again (it may worsen).
    assert due_at(notified.group, TIMING, [], at(101)) == at(101 + 300)
    assert flush(notified.group, [], at(5000)).alerts is None


def test_a_newer_alert_state_is_never_replaced_by_an_older_one() -> None:
    newer = alert("a", status="resolved", updated_at=at(10))
    group = grouped(alert("a", updated_at=at(5)), group=grouped(newer), now=at(11))
    assert group.alerts["a"].status == "resolved"


def test_silenced_and_inhibited_alerts_are_left_out() -> None:
    silence = SILENCE.model_copy(update={"starts_at": T0, "ends_at": at(3600)})
    silenced = alert("income")  # the sample silence matches feature inc.*
    inhibited = alert("b", inhibited_by="dataset")
    group = grouped(silenced, inhibited)
    assert due_at(group, TIMING, [silence], T0) == at(300)  # looked at again, not sent
    assert flush(group, [silence], at(30)).alerts is None
    after = due_at(group, TIMING, [silence], at(3601))
    assert after == at(30)  # the silence ended: the first notification is due
