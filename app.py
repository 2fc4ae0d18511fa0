#!/usr/bin/env python3
"""Entry point of the CDK app: `npx cdk deploy`, or `python app.py` to synthesize only.

Settings come from the `momentoKeyRotation` context block. The CDK command-line tool passes
cdk.json's context in; when this file runs on its own, it reads cdk.json itself.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infrastructure.config import CONTEXT_KEY, StackConfig
from infrastructure.stack import STACK_NAME, MomentoKeyRotationStack

CDK_JSON = Path(__file__).resolve().parent / "cdk.json"


def main() -> None:
    app = cdk.App(outdir=os.environ.get("CDK_OUTDIR", "cdk.out"))
    settings = app.node.try_get_context(CONTEXT_KEY)
    try:
        if settings is None:
            config = StackConfig.from_cdk_json(CDK_JSON)
        else:
            config = StackConfig.from_context({CONTEXT_KEY: settings})
    except ValueError as error:
        # A setting a person got wrong: one line naming it, not a traceback to read up from.
        sys.exit(f"cdk.json context {CONTEXT_KEY}: {error}")

    MomentoKeyRotationStack(
        app,
        STACK_NAME,
        config=config,
        description="Keeps Momento API keys stored in AWS Secrets Manager from expiring.",
    )
    # Synthesis fails on any finding that is not acknowledged in the stack.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()


if __name__ == "__main__":
    main()
