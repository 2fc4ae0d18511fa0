"""`python app.py` synthesizes offline, without AWS credentials, and passes the nag checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_app_synthesizes_offline_without_credentials(tmp_path):
    # GIVEN no AWS credentials or profile, and bundling skipped
    environment = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    environment.update(
        CDK_OUTDIR=str(tmp_path),
        CDK_CONTEXT_JSON=json.dumps({"aws:cdk:bundling-stacks": []}),
        JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
    )

    # WHEN the app runs on its own
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    # THEN the template is written and the AWS Solutions checks stopped nothing
    assert result.returncode == 0, result.stderr[-3000:]
    template = json.loads((tmp_path / "MomentoKeyRotation.template.json").read_text())
    assert "AWS::Lambda::EventSourceMapping" in {
        resource["Type"] for resource in template["Resources"].values()
    }
    report = json.loads((tmp_path / "validation-report.json").read_text())
    assert report["pluginReports"] == []


def test_app_names_a_bad_setting_in_one_line_instead_of_a_traceback(tmp_path):
    # GIVEN a deploy command line that overrides a setting with a value the stack refuses
    environment = dict(os.environ)
    environment.update(
        CDK_OUTDIR=str(tmp_path),
        CDK_CONTEXT_JSON=json.dumps(
            {"aws:cdk:bundling-stacks": [], "momentoKeyRotation": {"batchSize": 50}}
        ),
        JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
    )

    # WHEN the app runs
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    # THEN it fails with one line naming the setting and the rule, and no traceback
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "cdk.json context momentoKeyRotation: batchSize must be between 1 and 10 "
        "(the most a FIFO queue delivers at once), got 50"
    )
    assert "Traceback" not in result.stderr
