"""Flag reports: a flag's version, a closed interval's report, and alerting reading it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from alerting.worker import Alerter, decode_report
from feedback.flag_counts import champion, flag_report, to_count
from tests.samples import MODEL
from tests.unit.fakes import FakeAlertStore, FakeBus, FakeCatalog, FakeNotifier
from vigil.adapters.stage_logic import Message
from vigil.wire.codec import Codec
from vigil.wire.flag_reports import FlaggedItem, FlagReport
from vigil.wire.topics import METRICS

NOW = datetime(2026, 5, 1, tzinfo=UTC)
EVERY = 60
N = 29_617_920  # an interval number: starts at N * 60 s


def test_a_flag_naming_only_its_model_is_about_its_champion() -> None:
    v1 = MODEL.model_copy(update={"version": "1", "status": "retired"})
    v2 = MODEL.model_copy(update={"version": "2", "status": "champion"})
    v3 = MODEL.model_copy(update={"version": "3", "status": "challenger"})
    assert champion([v1, v2, v3]) == "2"
    assert champion([v1, v3]) == "3"  # no champion: the newest in service
    assert champion([v1]) == "1"
    assert champion([]) is None


def test_a_closed_interval_becomes_one_report_with_a_stable_id() -> None:
    harmful = FlaggedItem(prediction_id="p-9", reviewer="ana", comment="rude").model_dump_json()
    counts = {"harmful": 1, "incorrect": 2, "ok": 5}
    report = flag_report(f"credit-risk/1.0.0/{N}", EVERY, counts, 7, [harmful], NOW)
    start_us = N * EVERY * 1_000_000
    assert report.report_id == f"credit-risk/1.0.0/flags/{start_us}"
    assert report.window_start == datetime.fromtimestamp(N * EVERY, UTC)
    assert (report.window_end - report.window_start).total_seconds() == EVERY
    assert (report.event_count, report.judged_items, report.key) == (8, 7, "credit-risk/1.0.0")
    assert report.harmful == [FlaggedItem(prediction_id="p-9", reviewer="ana", comment="rude")]
    again = flag_report(f"credit-risk/1.0.0/{N}", EVERY, counts, 7, [harmful], NOW)
    assert again == report  # published twice after a crash: the same report


def test_a_flag_is_counted_on_its_version_at_its_feedback_time() -> None:
    flag = {
        "feedback_id": "f-1",
        "prediction_id": "p-1",
        "model_id": None,
        "flag": "harmful",
        "comment": "unsafe advice",
        "reviewer": "ana",
        "timestamp": 1_777_636_800_500_000,
    }
    counted = to_count(flag, "credit-risk", "2")
    feedback_id, member, kind, pid, at, note = counted.args()
    assert (feedback_id, member, kind, pid) == ("f-1", "credit-risk/2", "harmful", "p-1")
    assert float(at) == 1_777_636_800.5
    assert FlaggedItem.model_validate_json(note).comment == "unsafe advice"


async def test_alerting_reads_a_flag_report_and_pages_a_harmful_flag_once() -> None:
    store = FakeAlertStore()
    alerter = Alerter(FakeBus(), FakeCatalog([MODEL]), store, FakeNotifier())  # a high tier
    harmful = FlaggedItem(prediction_id="p-9", reviewer="ana").model_dump_json()
    codec = Codec(FlagReport)
    changes = []
    for i in range(2):  # a harmful flag in two intervals in a row
        report = flag_report(f"credit-risk/1.0.0/{N + i}", EVERY, {"harmful": 1}, 1, [harmful], NOW)
        assert decode_report(codec.encode(report)) == report
        changes += await alerter.handle_report(report)
    [alert] = [a for a in changes if a.rule == "harmful_flag"]
    assert (alert.status, alert.severity, alert.details["prediction_ids"]) == (
        "firing",
        "high",
        "p-9",
    )
    # and a report on the wire takes the same path: decoded, judged, never dead-lettered
    report = flag_report(f"credit-risk/1.0.0/{N + 2}", EVERY, {"ok": 1}, 1, [], NOW)
    await alerter.handle(Message(METRICS.name, 0, 2, report.key.encode(), codec.encode(report)))
    assert alerter.dead_lettered == 0
    assert store.alerts_by_fingerprint[alert.fingerprint].status == "resolved"


@pytest.mark.parametrize("kind", ["json", "avro"])
def test_a_flag_report_is_told_from_the_other_reports(kind: str) -> None:
    report = flag_report(f"credit-risk/1.0.0/{N}", EVERY, {"ok": 3}, 3, [], NOW)
    value = (
        report.model_dump_json().encode() if kind == "json" else Codec(FlagReport).encode(report)
    )
    assert decode_report(value) == report
