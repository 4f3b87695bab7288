"""Synthesize a tenant's stack and create it in moto's CloudFormation, the template unchanged but for the
bootstrap checks that only a real, bootstrapped account can answer."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from infra.local import skipped_resources

log = logging.getLogger("local.deploy")

STACK_PREFIX = "CouponClearing-"
_PSEUDO = re.compile(r"\$\{(AWS::[A-Za-z]+)\}")


@dataclass(frozen=True)
class FunctionSource:
    """Where a deployed function's code lives on this machine, as Lambda would mount it."""

    logical_id: str
    code_dir: Path  # /var/task
    layer_dirs: tuple[Path, ...]  # each one's python/ folder goes on sys.path, as /opt/python does
    handler: str


@dataclass
class Synthesized:
    stack_name: str
    template: dict
    cdk_out: Path
    # S3Key of every file asset → the folder the CDK staged it from, inside cdk_out.
    asset_dirs: dict[str, Path]


@dataclass
class Deployment:
    stack_name: str
    region: str
    account: str
    outputs: dict[str, str]
    physical: dict[str, str]  # logical id → physical id, as moto's CloudFormation reports them
    types: dict[str, str]  # logical id → resource type
    template: dict
    functions: dict[str, FunctionSource] = field(default_factory=dict)  # by physical function name

    def of_type(self, resource_type: str) -> dict[str, str]:
        return {
            lid: self.physical[lid]
            for lid, t in self.types.items()
            if t == resource_type and lid in self.physical
        }


def stack_name_for(tenant: str) -> str:
    return f"{STACK_PREFIX}{tenant}"


def synthesize(
    tenant: str,
    outdir: Path,
    *,
    app_factory: str | Callable = "infra.app:build_app",
    stack_name: str | None = None,
) -> Synthesized:
    """Synthesize one tenant's stack into outdir.

    app_factory is "module:function" (called as function(tenants=[tenant], outdir=..., bundle=False)) and
    runs in a child process: the CDK's Node process then ends with the synth instead of living on in the
    server (where a terminal's Ctrl-C would kill it under jsii's feet). A callable runs in-process."""
    stack_name = stack_name or stack_name_for(tenant)
    outdir.mkdir(parents=True, exist_ok=True)
    if callable(app_factory):
        app = app_factory(tenants=[tenant], outdir=str(outdir), bundle=False)
        app.synth()
    else:
        module, _, function = app_factory.partition(":")
        code = (
            f"from {module} import {function} as build\n"
            f"build(tenants=[{tenant!r}], outdir={str(outdir)!r}, bundle=False).synth()\n"
        )
        env = {
            **os.environ,
            # jsii compares this comma-separated list with the running Node's major version.
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "18,20,22",
            "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
        }
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"cdk synth of {stack_name} failed:\n{done.stdout}{done.stderr}")
    template_path = _template_file(outdir, stack_name)
    template = json.loads(template_path.read_text())
    return Synthesized(stack_name, template, outdir, _asset_dirs(outdir))


def _template_file(cdk_out: Path, stack_name: str) -> Path:
    artifacts = json.loads((cdk_out / "manifest.json").read_text())["artifacts"]
    for artifact_id, artifact in artifacts.items():
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        if artifact.get("properties", {}).get("stackName", artifact_id) == stack_name:
            return cdk_out / artifact["properties"]["templateFile"]
    raise RuntimeError(f"stack {stack_name} not in the synthesized app {cdk_out}")


def _asset_dirs(cdk_out: Path) -> dict[str, Path]:
    """Each file asset's object key → its staged folder, from the asset manifests.

    The template's own aws:asset:path metadata is only written when the CDK CLI asks for it, so the
    manifest (always written) is the reliable map."""
    found: dict[str, Path] = {}
    for manifest in cdk_out.glob("*.assets.json"):
        for asset in json.loads(manifest.read_text()).get("files", {}).values():
            source = cdk_out / asset["source"]["path"]
            for destination in asset.get("destinations", {}).values():
                found[destination["objectKey"]] = source
    return found


def local_template(template: dict) -> dict:
    """The template moto is given: bootstrap version checks removed (there is no bootstrap stack)."""
    template = json.loads(json.dumps(template))
    template.pop("Rules", None)
    params = template.get("Parameters", {})
    params.pop("BootstrapVersion", None)
    if not params:
        template.pop("Parameters", None)
    return template


def _sub_pseudo(value, pseudo: dict[str, str]) -> str:
    """Resolve an asset bucket name: a literal or a Fn::Sub over pseudo parameters only."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("Fn::Sub"), str):
        return _PSEUDO.sub(lambda m: pseudo[m.group(1)], value["Fn::Sub"])
    raise ValueError(f"cannot resolve asset location {value!r} locally")


def _code_locations(template: dict):
    for logical_id, resource in template.get("Resources", {}).items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Lambda::Function":
            code = props.get("Code", {})
        elif resource["Type"] == "AWS::Lambda::LayerVersion":
            code = props.get("Content", {})
        else:
            continue
        if "S3Key" in code:
            yield logical_id, code["S3Bucket"], code["S3Key"]


def function_sources(synth: Synthesized, physical: dict[str, str]) -> dict[str, FunctionSource]:
    """Code and layer folders for each function, keyed by its physical name.

    moto's CloudFormation drops a function's Layers, so they are read from the template here."""
    resources = synth.template["Resources"]

    def folder(logical_id: str) -> Path:
        resource = resources[logical_id]
        path = resource.get("Metadata", {}).get("aws:asset:path")
        if path:
            return synth.cdk_out / path
        code = resource["Properties"].get("Code") or resource["Properties"].get("Content")
        key = code.get("S3Key") if isinstance(code, dict) else None
        if key not in synth.asset_dirs:
            raise RuntimeError(f"{logical_id}: no local asset for its code ({code!r})")
        return synth.asset_dirs[key]

    sources = {}
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        props = resource["Properties"]
        if "ZipFile" in props.get("Code", {}):
            # Inline code (CDK custom resource providers): nothing of ours to run.
            continue
        layers = []
        for ref in props.get("Layers", []):
            if not (isinstance(ref, dict) and "Ref" in ref and ref["Ref"] in resources):
                raise RuntimeError(f"{logical_id}: layer {ref!r} is not a LayerVersion of this stack")
            layers.append(folder(ref["Ref"]) / "python")
        name = physical.get(logical_id)
        if name is None:
            continue
        sources[name] = FunctionSource(
            logical_id=logical_id,
            code_dir=folder(logical_id),
            layer_dirs=tuple(layers),
            handler=props["Handler"],
        )
    return sources


def deploy(synth: Synthesized, *, region: str, timeout: float = 60.0) -> Deployment:
    """Upload the code assets and create the stack in moto (boto3 pointed at moto via AWS_ENDPOINT_URL)."""
    import boto3

    account = boto3.client("sts", region_name=region).get_caller_identity()["Account"]
    pseudo = {
        "AWS::AccountId": account,
        "AWS::Region": region,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
    }

    s3 = boto3.client("s3", region_name=region)
    buckets: set[str] = set()
    for logical_id, bucket_ref, key in _code_locations(synth.template):
        bucket = _sub_pseudo(bucket_ref, pseudo)
        if bucket not in buckets:
            try:
                if region == "us-east-1":
                    s3.create_bucket(Bucket=bucket)
                else:
                    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
            except s3.exceptions.BucketAlreadyOwnedByYou:
                pass
            buckets.add(bucket)
        # moto only checks the object exists and hashes it; the code that runs is the staged folder.
        s3.put_object(Bucket=bucket, Key=key, Body=f"local asset for {logical_id}".encode())

    cfn = boto3.client("cloudformation", region_name=region)
    cfn.create_stack(
        StackName=synth.stack_name,
        TemplateBody=json.dumps(local_template(synth.template)),
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    deadline = time.monotonic() + timeout
    while True:
        stack = cfn.describe_stacks(StackName=synth.stack_name)["Stacks"][0]
        status = stack["StackStatus"]
        if status == "CREATE_COMPLETE":
            break
        if not status.endswith("IN_PROGRESS") or time.monotonic() > deadline:
            reason = stack.get("StackStatusReason", "")
            raise RuntimeError(f"stack {synth.stack_name} ended {status}: {reason}")
        time.sleep(0.2)

    physical, types = {}, {}
    paginator = cfn.get_paginator("list_stack_resources")
    for page in paginator.paginate(StackName=synth.stack_name):
        for summary in page["StackResourceSummaries"]:
            types[summary["LogicalResourceId"]] = summary["ResourceType"]
            if summary.get("PhysicalResourceId"):
                physical[summary["LogicalResourceId"]] = summary["PhysicalResourceId"]
    skipped = sorted(
        f"{lid} ({r['Type']})" for lid, r in synth.template["Resources"].items() if lid not in types
    )
    if skipped:
        log.info("not created by moto (no CloudFormation support): %s", ", ".join(skipped))

    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    deployment = Deployment(
        stack_name=synth.stack_name,
        region=region,
        account=account,
        outputs=outputs,
        physical=physical,
        types=types,
        template=synth.template,
    )
    deployment.functions = function_sources(synth, physical)
    # Secrets moto skipped, and the function variables that referred to them (before any worker starts).
    skipped_resources.provide(deployment, pseudo=pseudo)
    return deployment
