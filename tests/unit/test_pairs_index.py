"""What the pairs index keeps of tagged predictions and outcomes (in memory; the Redis index
is checked on the real server in tests/integration/test_pairs_index.py)."""

from __future__ import annotations

from datetime import timedelta

from registry.pairs_index import MemoryPairsIndex, RequestLabel, pairs_of
from tests.comparison_data import shared_traffic


def test_an_outcome_tells_the_requests_label_and_its_prediction() -> None:
    events, outcomes, _ = shared_traffic()
    predicted, label = pairs_of(outcomes[0])
    assert predicted is not None and label is not None
    assert (predicted.request_id, predicted.version) == ("t-r0", "1.0.0")
    assert (label.request_id, label.actual) == ("t-r0", outcomes[0].feedback.actual)
    assert pairs_of(events[1])[1] is None  # a prediction alone: no label
    untagged = events[0].model_copy(update={"tags": {"variant": "champion"}})
    assert pairs_of(untagged) == (None, None)
    too_long = events[0].model_copy(update={"tags": {"request_id": "r" * 300}})
    assert pairs_of(too_long) == (None, None)
    no_actual = outcomes[0].model_copy(
        update={"feedback": outcomes[0].feedback.model_copy(update={"actual": None})}
    )
    assert pairs_of(no_actual)[1] is None


async def test_the_newest_label_wins_and_the_oldest_requests_go_beyond_the_bound() -> None:
    events, _, _ = shared_traffic()
    index = MemoryPairsIndex(max_requests=10)
    await index.put([p for e in events[:40] if (p := pairs_of(e)[0])], [])
    kept = await index.requests("credit-risk", None, None)
    assert [r.request_id for r in kept] == [f"t-r{i}" for i in range(10, 20)]
    assert all(set(r.predictions) == {"1.0.0", "1.1.0"} for r in kept)
    at = kept[0].at
    late = RequestLabel("credit-risk", "t-r10", "repaid", 2_000, at)
    early = RequestLabel("credit-risk", "t-r10", "default", 1_000, at)
    await index.put([], [late, early])
    (request,) = await index.requests("credit-risk", at, at + 1)
    assert request.actual == "repaid"
    window = int(timedelta(seconds=5) / timedelta(microseconds=1))
    assert len(await index.requests("credit-risk", at, at + window)) == 5
