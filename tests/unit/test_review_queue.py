"""The review queue's logic without Redis: the mix, the order items are offered in, which
predictions are candidates and why, second opinions, and the feedback summary."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from feedback.review import (
    Candidate,
    DriftWindow,
    Mix,
    Reason,
    Selection,
    drift_window,
    is_sampled,
    low_confidence_margin,
    second_opinion,
)
from feedback.summary import against_truth, judgements, summarise

DEFAULT = "random=0.4,low_confidence=0.3,drifted=0.2,disagreement=0.1"


def test_a_mix_is_read_normalised_and_split_into_quotas_that_add_up_to_the_limit() -> None:
    mix = Mix.parse(DEFAULT)
    assert mix.quotas(10) == {"random": 4, "low_confidence": 3, "drifted": 2, "disagreement": 1}
    assert sum(mix.quotas(7).values()) == 7
    assert mix.quotas(7) == {"random": 3, "low_confidence": 2, "drifted": 1, "disagreement": 1}
    assert Mix.parse("random=2, drifted=2").shares == {"random": 0.5, "drifted": 0.5}
    assert Mix.parse("low_confidence=1").quotas(3) == {"low_confidence": 3}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("random", "expected <reason>=<weight>"),
        ("sideways=1", "reason one of"),
        ("random=lots", "not a number"),
        ("random=-1", ">= 0"),
        ("random=0", "above 0"),
        ("random=inf", "finite"),
    ],
)
def test_a_mix_that_cannot_be_read_says_why(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        Mix.parse(text)


def _take(selection: Selection, lost: frozenset[str] = frozenset()) -> dict[str, str]:
    """Walk the selection, winning every lease except those in ``lost``."""
    for pid, reason in selection.candidates():
        if pid not in lost:
            selection.took(pid, reason)
    return dict(selection.taken)


def test_each_reason_gets_its_quota_in_the_order_of_its_pool() -> None:
    pools: dict[Reason, list[str]] = {
        "random": ["r1", "r2", "r3", "r4"],
        "low_confidence": ["l1", "l2", "l3"],
        "drifted": ["d1", "d2"],
        "disagreement": ["s1", "s2"],
    }
    taken = _take(Selection(Mix.parse(DEFAULT).quotas(10), pools, 10))
    assert taken == {
        "r1": "random",
        "r2": "random",
        "r3": "random",
        "r4": "random",
        "l1": "low_confidence",
        "l2": "low_confidence",
        "l3": "low_confidence",
        "d1": "drifted",
        "d2": "drifted",
        "s1": "disagreement",
    }


def test_a_short_pool_or_a_lost_lease_is_made_up_from_the_other_reasons() -> None:
    pools: dict[Reason, list[str]] = {
        "random": ["r1", "r2", "r3", "r4", "r5", "r6"],
        "low_confidence": ["l1"],
        "drifted": [],
        "disagreement": ["s1"],
    }
    quotas = Mix.parse(DEFAULT).quotas(6)
    taken = _take(Selection(quotas, pools, 6), lost=frozenset({"r1"}))
    assert len(taken) == 6
    assert "r1" not in taken
    assert taken["l1"] == "low_confidence" and taken["s1"] == "disagreement"
    assert [p for p, r in taken.items() if r == "random"] == ["r2", "r3", "r4", "r5"]


def test_an_item_in_two_pools_is_offered_once_and_reasons_left_out_of_the_mix_never() -> None:
    pools: dict[Reason, list[str]] = {
        "random": ["a", "b"],
        "low_confidence": ["a", "c"],
        "drifted": ["d"],
        "disagreement": ["e"],
    }
    selection = Selection(Mix.parse("random=1,low_confidence=1").quotas(10), pools, 10)
    offered = [pid for pid, _ in selection.candidates()]
    assert offered == ["a", "b", "c"]  # "a" once; nothing drifted or disagreed on


def test_a_binary_models_score_near_the_threshold_is_low_confidence() -> None:
    assert low_confidence_margin("binary", 0.55, 0.1) == pytest.approx(0.05)
    assert low_confidence_margin(None, 0.45, 0.1) == pytest.approx(0.05)  # unregistered
    assert low_confidence_margin("binary", 0.9, 0.1) is None
    assert low_confidence_margin("binary", None, 0.1) is None
    assert low_confidence_margin("binary", 7.0, 0.1) is None  # not a probability
    assert low_confidence_margin("regression", 0.5, 0.1) is None


def test_sampling_by_id_keeps_about_the_rate_and_agrees_on_a_re_read() -> None:
    ids = [f"p-{i}" for i in range(10_000)]
    kept = [p for p in ids if is_sampled(p, 0.2)]
    assert 1800 < len(kept) < 2200
    assert kept == [p for p in ids if is_sampled(p, 0.2)]
    assert all(is_sampled(p, 1.0) for p in ids[:100])


def _report(**changes: object) -> dict[str, object]:
    return {
        "model_id": "m",
        "model_version": "1",
        "window_start": datetime(2026, 5, 1, 12, tzinfo=UTC),
        "window_end": datetime(2026, 5, 1, 13, tzinfo=UTC),
        "drifted_features": [],
        "dataset_drift": False,
        "outputs": [],
        "multivariate": None,
        **changes,
    }


def _candidate(pid: str, at: datetime, version: str = "1") -> Candidate:
    event = {
        "prediction_id": pid,
        "model_id": "m",
        "model_version": version,
        "timestamp": at,
        "features": {"x": 1.0},
        "prediction": True,
        "score": 0.7,
    }
    return Candidate.of(event)


def test_a_window_with_anything_drifted_holds_its_versions_predictions_of_its_time() -> None:
    assert drift_window(_report()) is None
    for change in (
        {"drifted_features": ["x"]},
        {"dataset_drift": True},
        {"outputs": [{"drifted": True}]},
        {"multivariate": {"drifted": True}},
    ):
        assert isinstance(drift_window(_report(**change)), DriftWindow), change
    window = drift_window(_report(drifted_features=["x"]))
    assert window is not None
    assert window.holds(_candidate("a", datetime(2026, 5, 1, 12, 30, tzinfo=UTC)))
    assert not window.holds(_candidate("b", datetime(2026, 5, 1, 13, tzinfo=UTC)))  # its end
    assert not window.holds(_candidate("c", datetime(2026, 5, 1, 12, 30, tzinfo=UTC), "2"))


def test_a_candidate_round_trips_as_kept() -> None:
    candidate = _candidate("a", datetime(2026, 5, 1, 12, 30, 0, 123456, tzinfo=UTC))
    assert Candidate.from_dict(candidate.as_dict()) == candidate
    assert candidate.timestamp % 1_000_000 == 123456


def test_second_opinions_are_wanted_on_disagreements_first_then_on_a_lone_flag() -> None:
    assert second_opinion({"ana": "incorrect", "bo": "ok"}, 3) == 0
    assert second_opinion({"ana": "harmful"}, 3) == 1
    assert second_opinion({"ana": "ok"}, 3) is None
    assert second_opinion({"ana": "incorrect", "bo": "incorrect"}, 3) is None
    assert second_opinion({"ana": "incorrect", "bo": "ok", "cy": "ok"}, 3) is None  # enough
    assert second_opinion({}, 3) is None


def _flag(fid: str, pid: str, reviewer: str, flag: str, at: int) -> dict[str, object]:
    return {
        "feedback_id": fid,
        "prediction_id": pid,
        "model_id": "m",
        "flag": flag,
        "comment": f"{reviewer} on {pid}",
        "reviewer": reviewer,
        "actual": None,
        "timestamp": at,
    }


HOUR = 3600 * 1_000_000


def test_the_summary_lists_flags_newest_first_and_counts_each_experts_newest_flag() -> None:
    flags = [  # newest first, as the store gives them
        _flag("f5", "p2", "bo", "incorrect", 5 * HOUR),
        _flag("f4", "p2", "ana", "incorrect", 4 * HOUR),
        _flag("f3", "p1", "bo", "ok", 3 * HOUR + 1),
        _flag("f2", "p1", "ana", "incorrect", 3 * HOUR),
        _flag("f1", "p1", "ana", "ok", 1 * HOUR),  # ana changed her mind on p1
    ]
    assert judgements(flags) == {
        "p2": {"bo": "incorrect", "ana": "incorrect"},
        "p1": {"bo": "ok", "ana": "incorrect"},
    }
    summary = summarise("m", flags, limit=3, window_seconds=3600)
    assert [f["feedback_id"] for f in summary["flags"]] == ["f5", "f4", "f3"]
    assert summary["flags"][0]["comment"] == "bo on p2"
    assert (summary["total_flags"], summary["judged_items"], summary["judgements"]) == (5, 2, 4)
    assert summary["counts"] == {"incorrect": 3, "ok": 1}
    assert summary["rates"] == {"incorrect": 0.75, "ok": 0.25}
    assert summary["reviewers"]["ana"]["counts"] == {"incorrect": 2}
    assert summary["reviewers"]["bo"]["rates"] == {"incorrect": 0.5, "ok": 0.5}
    assert [w["counts"] for w in summary["windows"]] == [
        {"incorrect": 1},
        {"incorrect": 1},
        {"incorrect": 1, "ok": 1},
    ]
    assert summary["windows"][0]["start"] == datetime(1970, 1, 1, 5, tzinfo=UTC)
    agreed = summary["agreement"]
    assert (agreed["items"], agreed["pairs"], agreed["agreeing_share"]) == (2, 2, 0.5)
    assert agreed["cohen_kappa"] == [{"reviewers": ["ana", "bo"], "kappa": 0.0}]
    assert agreed["fleiss_kappa"] == pytest.approx(-1 / 3)


def test_experts_against_ground_truth_count_only_correctness_calls() -> None:
    judged = {
        "p1": {"ana": "incorrect", "bo": "ok", "cy": "harmful"},  # predicted 1, truly false
        "p2": {"ana": "ok"},  # predicted True, truly 1: right
        "p3": {"ana": "incorrect"},  # a regression value: not checkable
        "p4": {"bo": "ok"},  # no truth
    }
    truths = {"p1": (1, False), "p2": (True, 1), "p3": (2.5, 3.0)}
    found = against_truth(judged, truths)
    assert (found["items"], found["judgements"]) == (2, 3)
    assert found["agreeing_share"] == pytest.approx(2 / 3)
    assert found["reviewers"] == {
        "ana": {"judgements": 2, "agreeing_share": 1.0},
        "bo": {"judgements": 1, "agreeing_share": 0.0},
    }
    assert against_truth(judged, {})["agreeing_share"] is None
