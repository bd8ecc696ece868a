"""The alerting rules: valid, unit-tested with promtool, and tied to what the platform serves.

promtool comes with Prometheus, not from PyPI: Debian's `prometheus` package
has it, and .ci/run installs it. Where it is missing these tests fail and
say how to get it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.observability.test_metrics import _base, _documented

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "alerts"
RULES = ALERTS / "orders.rules.yml"
RULE_TESTS = ALERTS / "orders.rules.test.yml"
PROMETHEUS_CONFIG = ROOT / "docs" / "observability" / "prometheus.yml"
DASHBOARD = ROOT / "docs" / "observability" / "grafana-dashboard.json"
RUNBOOK = ROOT / "docs" / "operations.md"

# Prometheus's own series, not any process's.
PROMETHEUS_SERIES = {"up"}
PROMQL_WORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "bool", "offset"}
PROMQL_WORDS |= {"group_left", "group_right", "inf", "nan"}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail(
            "promtool is missing: it comes with Prometheus. On Debian or Ubuntu: "
            "apt-get update && apt-get install --no-install-recommends prometheus "
            "(.ci/run does this); elsewhere, from a release at prometheus.io/download."
        )
    return subprocess.run([found, *args], capture_output=True, text=True, timeout=300)


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _alerts() -> list[dict[str, Any]]:
    return [rule for rule in _rules() if "alert" in rule]


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression selects."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', "", expr)  # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\boffset\s+\w+", "", expr)
    # Label lists: by (...), without (...), on (...), ignoring (...), group_left (...).
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", expr))
    return {name for name in names if name.lower() not in PROMQL_WORDS}


def test_metric_names_are_read_from_expressions() -> None:
    expr = (
        'sum by (compensation) (increase(x_total{a="b(c)"}[15m])) > 0'
        " or on (job) histogram_quantile(0.95, rate(y_bucket[5m]))"
        " unless x_total offset 15m and level:z:ratio_rate5m > (14.4 * 0.001)"
    )
    assert metric_names(expr) == {"x_total", "y_bucket", "level:z:ratio_rate5m"}


def test_the_rules_are_valid() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_pass_their_unit_tests() -> None:
    result = promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_scrape_config_loads_the_rules() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    loaded = {(PROMETHEUS_CONFIG.parent / path).resolve() for path in config["rule_files"]}
    assert RULES.resolve() in loaded
    result = promtool("check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_use_only_documented_metrics() -> None:
    documented = _documented()
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    used = {_base(name) for rule in _rules() for name in metric_names(rule["expr"])}
    assert used - recorded - PROMETHEUS_SERIES - documented == set()


def test_the_jobs_watched_are_those_scraped() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    scraped = {job["job_name"] for job in config["scrape_configs"]}
    (unscraped,) = (rule for rule in _alerts() if rule["alert"] == "ProcessNotScraped")
    watched = set(re.search(r'job=~"([^"]+)"', unscraped["expr"]).group(1).split("|"))  # type: ignore[union-attr]
    assert watched == scraped


def _anchors(markdown: str) -> set[str]:
    """GitHub's anchors of the headings: lower case, punctuation dropped, spaces to dashes."""
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def test_every_alert_says_what_it_is_how_urgent_and_where_its_runbook_is() -> None:
    anchors = _anchors(RUNBOOK.read_text())
    for alert in _alerts():
        name = alert["alert"]
        assert alert["labels"]["severity"] in ("page", "ticket"), name
        assert {"summary", "description", "runbook_url"} <= alert["annotations"].keys(), name
        page, _, anchor = alert["annotations"]["runbook_url"].partition("#")
        assert page == "docs/operations.md", name
        assert anchor == name.lower(), name
        assert anchor in anchors, f"docs/operations.md has no section for {name}"


def test_every_alert_is_shown_firing_by_a_unit_test() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert {alert["alert"] for alert in _alerts()} - fired == set()


def test_the_dashboard_uses_documented_metrics_and_the_recorded_ratios() -> None:
    # A stricter reading than tests/observability's: every name, whatever its suffix.
    dashboard = json.loads(DASHBOARD.read_text())
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    used = {
        _base(name)
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        for name in metric_names(target["expr"])
    }
    # The SDK documents its own (docs/metrics.md lists the most useful).
    ours = {name for name in used if not name.startswith("temporal_")}
    assert ours - recorded - PROMETHEUS_SERIES - _documented() == set()


def test_every_alert_has_a_panel_on_the_dashboard() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    described = " ".join(panel.get("description", "") for panel in dashboard["panels"])
    missing = {alert["alert"] for alert in _alerts() if alert["alert"] not in described}
    assert missing == set()
