"""What moto's CloudFormation skips but the running code needs: each `AWS::SecretsManager::Secret` of the
template is created through moto's Secrets Manager API from the template's own properties, and each
function gets back the environment variables moto dropped because they referred to a skipped resource.

Only what code reads at run time is made here (a secret's value); what a template only declares (alarms,
policies) stays skipped and is asserted on the synthesized template by the infra tests instead.

(Not named secrets.py: worker.py runs by path with this folder first on sys.path until it drops it,
and a secrets.py here would shadow the standard library's for anything imported in between.)
"""

from __future__ import annotations

import json
import logging
import random
import re
import string

log = logging.getLogger("local.deploy")

SECRET = "AWS::SecretsManager::Secret"
_SUB_VARIABLE = re.compile(r"\$\{([A-Za-z0-9_:.]+)\}")
# GenerateSecretString's properties → GetRandomPassword's parameters (the same generator AWS uses for
# both; moto's is not a CSPRNG, which is fine for a local stack and never used for a real key).
_PASSWORD_PARAMETERS = {
    "PasswordLength": "PasswordLength",
    "ExcludeCharacters": "ExcludeCharacters",
    "ExcludeNumbers": "ExcludeNumbers",
    "ExcludePunctuation": "ExcludePunctuation",
    "ExcludeUppercase": "ExcludeUppercase",
    "ExcludeLowercase": "ExcludeLowercase",
    "IncludeSpace": "IncludeSpace",
    "RequireEachIncludedType": "RequireEachIncludedType",
}


class Unresolvable(ValueError):
    """A template value this deployer cannot compute (it refers to something not deployed locally)."""


class Resolver:
    """Computes a template value as CloudFormation would, for the few intrinsics these resources use:
    Ref, Fn::GetAtt (Arn), Fn::Join, Fn::Sub over pseudo parameters and resources."""

    def __init__(self, *, refs: dict[str, str], arns: dict[str, str], pseudo: dict[str, str]):
        self.refs = refs  # logical id → what Ref gives
        self.arns = arns  # logical id → what GetAtt Arn gives
        self.pseudo = pseudo

    def __call__(self, value) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, bool | int):
            return json.dumps(value)
        if isinstance(value, dict) and len(value) == 1:
            ((function, argument),) = value.items()
            if function == "Ref":
                return self._ref(argument)
            if function == "Fn::GetAtt":
                logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
                # (Only Arn: moto refuses a whole stack whose GetAtt names a resource it skips, so a
                # variable can only refer to a skipped secret by Ref, which gives its ARN.)
                if attribute == "Arn" and logical_id in self.arns:
                    return self.arns[logical_id]
                raise Unresolvable(f"Fn::GetAtt {logical_id}.{attribute}")
            if function == "Fn::Join":
                separator, parts = argument
                return separator.join(self(part) for part in parts)
            if function == "Fn::Sub" and isinstance(argument, str):
                return _SUB_VARIABLE.sub(lambda m: self._ref(m.group(1)), argument)
        raise Unresolvable(json.dumps(value))

    def _ref(self, name: str) -> str:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.refs:
            return self.refs[name]
        raise Unresolvable(f"Ref {name}")


def _kms_key_arns(
    physical: dict[str, str], types: dict[str, str], region: str, account: str
) -> dict[str, str]:
    # moto reports a key's id as its physical id; its ARN is built the way KMS builds it.
    return {
        lid: f"arn:aws:kms:{region}:{account}:key/{key_id}"
        for lid, key_id in physical.items()
        if types.get(lid) == "AWS::KMS::Key"
    }


def secret_value(secretsmanager, props: dict, resolve: Resolver) -> dict[str, str]:
    """The value CloudFormation would give the secret: SecretString as written, or a password generated
    under GenerateSecretString's rules (placed under GenerateStringKey in SecretStringTemplate if given)."""
    if "SecretString" in props:
        return {"SecretString": resolve(props["SecretString"])}
    generate = props.get("GenerateSecretString")
    if generate is None:
        return {}
    parameters = {api: generate[prop] for prop, api in _PASSWORD_PARAMETERS.items() if prop in generate}
    parameters.setdefault("PasswordLength", 32)  # Secrets Manager's default length
    password = secretsmanager.get_random_password(**parameters)["RandomPassword"]
    if "GenerateStringKey" in generate:
        document = json.loads(resolve(generate["SecretStringTemplate"]))
        document[generate["GenerateStringKey"]] = password
        return {"SecretString": json.dumps(document)}
    return {"SecretString": password}


def provide(deployment, *, pseudo: dict[str, str]) -> dict[str, str]:
    """Create the skipped secrets, then put right the variables that refer to them; the secrets' ARNs by
    logical id.

    The deployment learns the secrets as if moto had created them (`physical`, `types`), so
    `deployment.of_type("AWS::SecretsManager::Secret")` lists them like any other resource."""
    resolve = Resolver(
        refs=dict(deployment.physical),
        arns=_kms_key_arns(deployment.physical, deployment.types, deployment.region, deployment.account),
        pseudo={**pseudo, "AWS::StackName": deployment.stack_name},
    )
    skipped = set(deployment.template["Resources"]) - set(deployment.types)
    created = create_secrets(deployment, resolve)
    for logical_id, arn in created.items():
        deployment.physical[logical_id] = arn
        deployment.types[logical_id] = SECRET
    restore_environment(deployment, resolve, skipped=skipped)
    bucket_notifications(deployment)
    return created


def bucket_notifications(deployment) -> list[str]:
    """moto's CloudFormation creates a bucket without its NotificationConfiguration; its S3 API, once told,
    sends Object Created to EventBridge's rules (the same event shape as AWS, rule patterns applied, the
    rule's Lambda target invoked). So each bucket the template sends to EventBridge is told here: the
    statement file's arrival starts reconciliation locally through the real rule. The buckets told."""
    import boto3

    s3 = boto3.client("s3", region_name=deployment.region)
    told = []
    for logical_id, resource in deployment.template["Resources"].items():
        if resource["Type"] != "AWS::S3::Bucket" or logical_id not in deployment.physical:
            continue
        config = resource.get("Properties", {}).get("NotificationConfiguration", {})
        versioning = resource.get("Properties", {}).get("VersioningConfiguration", {}).get("Status")
        if versioning == "Enabled":  # also dropped by moto's CloudFormation; a run is per file version
            s3.put_bucket_versioning(
                Bucket=deployment.physical[logical_id], VersioningConfiguration={"Status": "Enabled"}
            )
        if config.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
            s3.put_bucket_notification_configuration(
                Bucket=deployment.physical[logical_id],
                NotificationConfiguration={"EventBridgeConfiguration": {}},
            )
            told.append(deployment.physical[logical_id])
    return told


def create_secrets(deployment, resolve: Resolver) -> dict[str, str]:
    """Create every secret the stack declared and moto skipped; their ARNs by logical id (Ref's value)."""
    import boto3

    secretsmanager = boto3.client("secretsmanager", region_name=deployment.region)
    created: dict[str, str] = {}
    for logical_id, resource in deployment.template["Resources"].items():
        if resource["Type"] != SECRET or logical_id in deployment.physical:
            continue
        props = resource.get("Properties", {})
        # CloudFormation names an unnamed secret after its logical id and a random suffix; so does this.
        suffix = "".join(random.choices(string.ascii_letters + string.digits, k=12))
        request: dict = {"Name": resolve(props["Name"]) if "Name" in props else f"{logical_id}-{suffix}"}
        if "Description" in props:
            request["Description"] = resolve(props["Description"])
        if "KmsKeyId" in props:
            try:
                request["KmsKeyId"] = resolve(props["KmsKeyId"])
            except Unresolvable as err:
                log.warning("%s: KmsKeyId not resolvable locally (%s); created without it", logical_id, err)
        if props.get("Tags"):
            request["Tags"] = [{"Key": t["Key"], "Value": resolve(t["Value"])} for t in props["Tags"]]
        request.update(secret_value(secretsmanager, props, resolve))
        arn = secretsmanager.create_secret(**request)["ARN"]
        created[logical_id] = arn
        # Known from now on, as if moto had created it: a Ref to the secret gives its ARN.
        resolve.refs[logical_id] = arn
        resolve.arns[logical_id] = arn
    if created:
        log.info("created locally (skipped by moto's CloudFormation): %s", ", ".join(sorted(created)))
    return created


def refers_to(value, logical_ids: set[str]) -> bool:
    """Whether a template value names one of these resources (Ref, GetAtt, ${...} in a Sub), at any depth."""
    if isinstance(value, list):
        return any(refers_to(item, logical_ids) for item in value)
    if not isinstance(value, dict):
        return False
    if value.get("Ref") in logical_ids:
        return True
    attribute = value.get("Fn::GetAtt")
    if isinstance(attribute, list) and attribute and attribute[0] in logical_ids:
        return True
    if isinstance(attribute, str) and attribute.split(".", 1)[0] in logical_ids:
        return True
    sub = value.get("Fn::Sub")
    text = sub if isinstance(sub, str) else sub[0] if isinstance(sub, list) and sub else None
    names = (
        {m.group(1).split(".", 1)[0] for m in _SUB_VARIABLE.finditer(text)}
        if isinstance(text, str)
        else set()
    )
    if names & logical_ids:
        return True
    return any(refers_to(item, logical_ids) for item in value.values())


def restore_environment(deployment, resolve: Resolver, *, skipped: set[str]) -> dict[str, dict[str, str]]:
    """Recompute each function variable whose template value refers to a resource moto skipped, now that
    the secrets exist. moto drops such a variable when its value is a plain Ref, and writes "None" into
    it when the Ref sits inside a Join: either way it is set here. One still unresolvable (it refers to
    something not made locally) is removed and named in a warning instead of being wrong in silence.
    Returns what was set, by physical function name."""
    import boto3

    lam = boto3.client("lambda", region_name=deployment.region)
    restored: dict[str, dict[str, str]] = {}
    for logical_id, resource in deployment.template["Resources"].items():
        if resource["Type"] != "AWS::Lambda::Function" or logical_id not in deployment.physical:
            continue
        declared = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
        name = deployment.physical[logical_id]
        configuration = lam.get_function_configuration(FunctionName=name)
        current = dict(configuration.get("Environment", {}).get("Variables", {}))
        variables = dict(current)
        for variable, value in declared.items():
            if variable in current and not refers_to(value, skipped):
                continue  # moto resolved it from resources it made
            try:
                variables[variable] = resolve(value)
            except Unresolvable as err:
                variables.pop(variable, None)
                log.warning("%s: environment variable %s not set locally (%s)", logical_id, variable, err)
        if variables != current:
            # The whole map: the API replaces a function's variables, it does not merge them. The local
            # runtime reads the configuration at each invocation, so workers start with it.
            lam.update_function_configuration(FunctionName=name, Environment={"Variables": variables})
            restored[name] = {k: v for k, v in variables.items() if current.get(k) != v}
            log.info("%s: environment set locally: %s", logical_id, ", ".join(sorted(restored[name])))
    return restored
