"""Synthesize the stack and look into its template.

Synthesizing costs seconds (the first one also starts jsii), so each test module builds its
template once in a module-scoped fixture, with asset bundling skipped.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from infrastructure.config import CONTEXT_KEY, StackConfig
from infrastructure.stack import STACK_NAME, MomentoKeyRotationStack

SKIP_BUNDLING: dict[str, Any] = {"aws:cdk:bundling-stacks": []}


@dataclass(frozen=True)
class Synthesized:
    app: cdk.App
    stack: MomentoKeyRotationStack
    template: Template

    def of_type(self, resource_type: str) -> dict[str, Any]:
        return dict(self.template.find_resources(resource_type))

    def one(self, resource_type: str, construct_id: str) -> dict[str, Any]:
        """The single resource of a type whose logical id starts with the construct id."""
        matches = [
            resource
            for logical_id, resource in self.of_type(resource_type).items()
            if logical_id.startswith(construct_id)
        ]
        assert len(matches) == 1, f"{len(matches)} {resource_type} named {construct_id}*"
        return matches[0]

    def logical_id(self, resource_type: str, construct_id: str) -> str:
        (found,) = [key for key in self.of_type(resource_type) if key.startswith(construct_id)]
        return found

    def role_statements(self, role_id: str) -> list[dict[str, Any]]:
        """Every statement that grants the role something: inline and attached policies."""
        logical_id = self.logical_id("AWS::IAM::Role", role_id)
        role = self.of_type("AWS::IAM::Role")[logical_id]["Properties"]
        statements = [
            statement
            for policy in role.get("Policies", [])
            for statement in policy["PolicyDocument"]["Statement"]
        ]
        for policy in self.of_type("AWS::IAM::Policy").values():
            if {"Ref": logical_id} in policy["Properties"]["Roles"]:
                statements += policy["Properties"]["PolicyDocument"]["Statement"]
        return statements

    def environment(self, function_id: str) -> dict[str, Any]:
        function = self.one("AWS::Lambda::Function", function_id)
        return dict(function["Properties"]["Environment"]["Variables"])


def synthesize(settings: Mapping[str, Any] | None = None) -> Synthesized:
    """The stack as `cdk synth` builds it with `settings` in cdk.json, without bundling."""
    context = {**SKIP_BUNDLING, CONTEXT_KEY: dict(settings or {})}
    app = cdk.App(context=context)
    stack = MomentoKeyRotationStack(app, STACK_NAME, config=StackConfig.from_context(context))
    return Synthesized(app, stack, Template.from_stack(stack))


def iter_actions(statements: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(action, statement) for every action of every statement."""
    for statement in statements:
        actions = statement["Action"]
        for action in [actions] if isinstance(actions, str) else actions:
            yield action, statement


def unacknowledged_findings(app: cdk.App) -> list[str]:
    """What cdk-nag's AWS Solutions pack would stop the synthesis for."""
    report = AwsSolutionsChecks(app).validate_scope(app)
    return [
        f"{violation.rule_name} at {resource.construct_path}"
        for violation in report.violations
        for resource in violation.violating_resources
    ]
