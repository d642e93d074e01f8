"""``vigil``: the command line — API keys, the audit trail, alert rules, the experts' review
queue and champion/challenger comparisons.

    vigil keys create --name credit-app --role producer --model credit-risk [--expires-in-days 90]
    vigil keys list [--principal NAME] [--all]
    vigil keys revoke ID
    vigil keys rotate ID [--grace-seconds 3600]
    vigil audit [--model-id M] [--principal P] [--since 2026-11-01T00:00:00Z] [--limit 50]
    vigil rules apply rules.yaml      # {model_id, version, rules: [...]}, or a list of those
    vigil rules get MODEL_ID VERSION  # the rules in effect
    vigil review MODEL_ID [--count 1] [--flag harmful --comment "..." [--actual true]]
    vigil compare MODEL_ID CHAMPION CHALLENGER [--since ...] [--until ...]
    vigil promote MODEL_ID VERSION --reason "..." [--compared-with VERSION]
    vigil report MODEL_ID --out report.html [--json report.json] [--since ...] [--until ...]

The registry's URL comes from ``--url`` or ``VIGIL_URL`` (default http://127.0.0.1:8000), the
feedback service's (``review``) from ``--feedback-url`` or ``VIGIL_FEEDBACK_URL``
(http://127.0.0.1:8002), alerting's (``report``) from ``--alerting-url`` or
``VIGIL_ALERTING_URL`` (http://127.0.0.1:8003), the
API key from ``--key``, ``VIGIL_API_KEY`` or, on a machine where ``make up`` ran, the admin key
file (``$VIGIL_RUN_DIR/admin.key`` or ``.run/admin.key``). Answers are printed as JSON; a
refusal prints the server's message to stderr and exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from vigil.performance.labels import typed_label
from vigil.report import ReportRefused, ReportUnavailable, build_report, render_html

__all__ = ["main"]

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_FEEDBACK_URL = "http://127.0.0.1:8002"
DEFAULT_ALERTING_URL = "http://127.0.0.1:8003"
FLAGS = ("incorrect", "unexpected", "harmful", "ok")
ROLES = ("producer", "sme", "data_scientist", "oncall", "auditor", "admin")


class CliError(Exception):
    """What to tell the user before exiting 1."""


def _key(given: str | None) -> str:
    if given:
        return given
    if os.environ.get("VIGIL_API_KEY"):
        return os.environ["VIGIL_API_KEY"]
    run_dir = Path(os.environ.get("VIGIL_RUN_DIR", ".run"))
    admin = run_dir / "admin.key"
    if admin.is_file():
        return admin.read_text().strip()
    raise CliError("no API key: pass --key, set VIGIL_API_KEY, or run where `make up` wrote .run/")


def _call(
    args: argparse.Namespace, method: str, path: str, url: str | None = None, **kwargs: Any
) -> Any:
    headers = {"Authorization": f"Bearer {_key(args.key)}"}
    client: httpx.Client = args.client
    base = (url or args.url).rstrip("/")
    try:
        answer = client.request(method, base + path, headers=headers, **kwargs)
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach {base}: {exc}") from exc
    if answer.is_error:
        try:
            detail = answer.json().get("detail", answer.text)
        except ValueError:
            detail = answer.text
        raise CliError(f"{answer.status_code}: {detail}")
    return answer.json() if answer.content else None


def _keys_create(args: argparse.Namespace) -> Any:
    body: dict[str, Any] = {"name": args.name, "roles": args.role, "models": args.model or ["*"]}
    if args.expires_in_days is not None:
        body["expires_in_days"] = args.expires_in_days
    return _call(args, "POST", "/v1/keys", json=body)


def _keys_list(args: argparse.Namespace) -> Any:
    params: dict[str, Any] = {"include_revoked": args.all}
    if args.principal:
        params["principal"] = args.principal
    return _call(args, "GET", "/v1/keys", params=params)


def _keys_revoke(args: argparse.Namespace) -> Any:
    return _call(args, "DELETE", f"/v1/keys/{args.id}")


def _keys_rotate(args: argparse.Namespace) -> Any:
    body = {"grace_seconds": args.grace_seconds}
    return _call(args, "POST", f"/v1/keys/{args.id}/rotate", json=body)


def _audit(args: argparse.Namespace) -> Any:
    params = {
        name: value
        for name, value in [
            ("model_id", args.model_id),
            ("principal", args.principal),
            ("since", args.since),
            ("before", args.before),
            ("limit", args.limit),
        ]
        if value is not None
    }
    return _call(args, "GET", "/v1/audit", params=params)


def _rule_sets(path: str) -> list[dict[str, Any]]:
    """The ``{model_id, version, rules}`` documents of a rules file."""
    try:
        loaded = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from exc
    sets = loaded if isinstance(loaded, list) else [loaded]
    for i, item in enumerate(sets):
        if not (isinstance(item, dict) and {"model_id", "version", "rules"} <= item.keys()):
            raise CliError(f"{path}: item {i} is not a mapping of model_id, version and rules")
        if not isinstance(item["rules"], list):
            raise CliError(f"{path}: item {i}: rules is not a list")
    return sets


def _rules_apply(args: argparse.Namespace) -> Any:
    """Replace each named version's rule overrides; stops at the first refusal."""
    applied = []
    for item in _rule_sets(args.file):
        path = f"/v1/models/{item['model_id']}/versions/{item['version']}/rules"
        try:
            applied.append(_call(args, "PUT", path, json=item["rules"]))
        except CliError as exc:
            raise CliError(f"{item['model_id']} {item['version']}: {exc}") from exc
    return applied


def _rules_get(args: argparse.Namespace) -> Any:
    return _call(args, "GET", f"/v1/models/{args.model_id}/versions/{args.version}/rules")


def _judge(args: argparse.Namespace, item: dict[str, Any]) -> dict[str, Any] | None:
    """The expert's judgement of one item: from the options, else asked on the terminal."""
    shown = {k: item.get(k) for k in ("prediction_id", "model_version", "prediction", "score")}
    print(
        json.dumps(
            {
                **shown,
                "reason": item.get("reason"),
                **({"drift": item["drift"]} if item.get("drift") else {}),
                "features": item.get("features"),
            },
            indent=2,
            default=str,
        ),
        file=sys.stderr,
    )
    flag, comment, actual = args.flag, args.comment, args.actual
    if flag is None:
        flag = input(f"flag ({'/'.join(FLAGS)}, empty to skip): ").strip().lower()
        if not flag:
            return None
        if flag not in FLAGS:
            raise CliError(f"flag: one of {', '.join(FLAGS)}, received {flag!r}")
        comment = input("comment (optional): ").strip() or None
        actual = input("true outcome (optional): ").strip() or None
    body: dict[str, Any] = {
        "prediction_id": item["prediction_id"],
        "model_id": args.model_id,
        "flag": flag,
        "source": "sme",
    }
    if comment:
        body["comment"] = comment
    outcome = None if actual is None else typed_label(actual)
    if outcome is not None:
        body["actual"] = outcome
    return body


def _review(args: argparse.Namespace) -> Any:
    """Take items from the model's review queue and record the expert's flags."""
    answers = []
    for _ in range(args.count):
        queue = _call(
            args,
            "GET",
            "/v1/review-queue",
            url=args.feedback_url,
            params={"model_id": args.model_id, "limit": 1},
        )
        if not queue["items"]:
            break
        body = _judge(args, queue["items"][0])
        if body is not None:
            answers.append(_call(args, "POST", "/v1/feedback", url=args.feedback_url, json=body))
    return {"judged": len(answers), "answers": answers}


def _compare(args: argparse.Namespace) -> Any:
    params: dict[str, Any] = {"versions": f"{args.champion},{args.challenger}"}
    for name in ("since", "until"):
        if getattr(args, name):
            params[name] = getattr(args, name)
    return _call(args, "GET", f"/v1/models/{args.model_id}/comparison", params=params)


def _promote(args: argparse.Namespace) -> Any:
    body: dict[str, Any] = {"reason": args.reason}
    if args.compared_with:
        body["compared_with"] = args.compared_with
    path = f"/v1/models/{args.model_id}/versions/{args.version}/promote"
    return _call(args, "POST", path, json=body)


def _time(text: str | None) -> datetime | None:
    try:
        return None if text is None else datetime.fromisoformat(text)
    except ValueError as exc:
        raise CliError(f"{text!r} is not an ISO 8601 time") from exc


async def _build(args: argparse.Namespace) -> dict[str, Any]:
    given: httpx.AsyncClient | None = args.async_client
    client = given or httpx.AsyncClient(timeout=60)
    try:
        return await build_report(
            client,
            _key(args.key),
            args.url,
            args.alerting_url,
            args.model_id,
            _time(args.since),
            _time(args.until),
        )
    except ReportRefused as exc:
        raise CliError(f"{exc.service} answered {exc.status}: {exc.detail}") from exc
    except ReportUnavailable as exc:
        raise CliError(str(exc)) from exc
    finally:
        if given is None:
            await client.aclose()


def _report(args: argparse.Namespace) -> Any:
    """Write the auditor's report as one HTML page (and JSON); print what was written."""
    document = asyncio.run(_build(args))
    try:
        Path(args.out).write_text(render_html(document), encoding="utf-8")
        if args.json:
            Path(args.json).write_text(json.dumps(document, indent=2), encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write the report: {exc}") from exc
    summary = document["summary"]
    return {
        "model_id": document["model_id"],
        "html": args.out,
        "json": args.json,
        "versions": summary["versions"],
        "promotions": summary["promotions"],
        "overdue_reassessments": summary["overdue_reassessments"],
    }


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="vigil", description="Operate Vigil: keys, audit, alert rules, review, comparison."
    )
    top.add_argument("--url", default=os.environ.get("VIGIL_URL", DEFAULT_URL))
    top.add_argument(
        "--feedback-url", default=os.environ.get("VIGIL_FEEDBACK_URL", DEFAULT_FEEDBACK_URL)
    )
    top.add_argument(
        "--alerting-url", default=os.environ.get("VIGIL_ALERTING_URL", DEFAULT_ALERTING_URL)
    )
    top.add_argument("--key", help="API key (default: VIGIL_API_KEY, then .run/admin.key)")
    commands = top.add_subparsers(dest="command", required=True)

    keys = commands.add_parser("keys", help="create, list, revoke and rotate API keys")
    verbs = keys.add_subparsers(dest="verb", required=True)
    create = verbs.add_parser("create", help="a new key; its secret is printed this once")
    create.add_argument("--name", required=True, help="the principal the key belongs to")
    create.add_argument("--role", action="append", required=True, choices=ROLES)
    create.add_argument("--model", action="append", help='a model id in scope (default "*")')
    create.add_argument("--expires-in-days", type=float)
    create.set_defaults(run=_keys_create)
    listing = verbs.add_parser("list", help="keys without their secrets")
    listing.add_argument("--principal")
    listing.add_argument("--all", action="store_true", help="include revoked keys")
    listing.set_defaults(run=_keys_list)
    revoke = verbs.add_parser("revoke", help="revoke a key everywhere")
    revoke.add_argument("id")
    revoke.set_defaults(run=_keys_revoke)
    rotate = verbs.add_parser("rotate", help="replace a key by a new one")
    rotate.add_argument("id")
    rotate.add_argument("--grace-seconds", type=float, default=0.0)
    rotate.set_defaults(run=_keys_rotate)

    audit = commands.add_parser("audit", help="the audit trail, newest first")
    audit.add_argument("--model-id")
    audit.add_argument("--principal")
    audit.add_argument("--since", help="ISO 8601 time with a timezone")
    audit.add_argument("--before", type=int, help="`next` of the previous page")
    audit.add_argument("--limit", type=int)
    audit.set_defaults(run=_audit)

    rules = commands.add_parser("rules", help="a model version's alert rules")
    rule_verbs = rules.add_subparsers(dest="verb", required=True)
    apply = rule_verbs.add_parser("apply", help="set the rules of the versions a YAML file names")
    apply.add_argument("file", help="YAML: {model_id, version, rules: [...]} or a list of those")
    apply.set_defaults(run=_rules_apply)
    get = rule_verbs.add_parser("get", help="the rules in effect: tier defaults and overrides")
    get.add_argument("model_id")
    get.add_argument("version")
    get.set_defaults(run=_rules_get)

    review = commands.add_parser("review", help="judge predictions from a model's review queue")
    review.add_argument("model_id")
    review.add_argument("--count", type=int, default=1, help="items to take, one at a time")
    review.add_argument("--flag", choices=FLAGS, help="judge without asking (scripts)")
    review.add_argument("--comment")
    review.add_argument("--actual", help="the true outcome, if known")
    review.set_defaults(run=_review)
    compare = commands.add_parser("compare", help="a champion against a challenger or shadow")
    compare.add_argument("model_id")
    compare.add_argument("champion")
    compare.add_argument("challenger")
    compare.add_argument("--since", help="ISO 8601 time with a timezone")
    compare.add_argument("--until", help="ISO 8601 time with a timezone")
    compare.set_defaults(run=_compare)
    promote = commands.add_parser(
        "promote", help="make a version champion, on the record (the previous one a challenger)"
    )
    promote.add_argument("model_id")
    promote.add_argument("version")
    promote.add_argument("--reason", required=True, help="why, for the audit trail")
    promote.add_argument(
        "--compared-with", help="the version it was judged against (default: the champion)"
    )
    promote.set_defaults(run=_promote)
    report = commands.add_parser("report", help="a model's auditor's report, HTML and JSON")
    report.add_argument("model_id")
    report.add_argument("--out", required=True, help="the HTML page to write")
    report.add_argument("--json", help="also write the report as JSON here")
    report.add_argument("--since", help="monitoring from this ISO 8601 time")
    report.add_argument("--until", help="monitoring before this ISO 8601 time")
    report.set_defaults(run=_report)
    return top


def main(
    argv: Sequence[str] | None = None,
    client: httpx.Client | None = None,
    async_client: httpx.AsyncClient | None = None,
) -> int:
    """Run one command; 0 on success, 1 with a message on stderr otherwise."""
    args = parser().parse_args(argv)
    args.client = client if client is not None else httpx.Client(timeout=30)
    args.async_client = async_client
    try:
        result = args.run(args)
    except CliError as exc:
        print(f"vigil: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
