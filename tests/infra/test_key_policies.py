"""KMS key policies narrower than the account-root default: the account administers every key of a tenant,
and uses it only through the tenant's services (or as one of the stack's own roles); service principals
use a key only under their conditions."""

from __future__ import annotations

import json

import pytest

from infra.constructs.encryption import ADMIN_ACTIONS, DATA_SERVICES, USE_ACTIONS
from infra.stack import stack_name
from tests.infra.conftest import resources

pytestmark = pytest.mark.xdist_group("infra")

ROOT = {
    "AWS": {
        "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":root"]]
    }
}
USING = {"kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:CreateGrant", "kms:*"}


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


def _keys(template: dict) -> dict[str, list[dict]]:
    return {
        lid: k["Properties"]["KeyPolicy"]["Statement"]
        for lid, k in resources(template, "AWS::KMS::Key").items()
    }


def test_no_key_of_a_tenant_lets_the_account_use_it_unconditioned(template: dict):
    keys = _keys(template)
    assert len(keys) == 3  # the data key, the alarm topic's key, the audit log's signing key
    for logical_id, statements in keys.items():
        for statement in statements:
            assert statement["Effect"] == "Allow"
            actions = set(_listed(statement["Action"]))
            assert "kms:*" not in actions, logical_id
            if actions & USING:
                assert statement.get("Condition"), (logical_id, statement)


def test_the_account_keeps_every_keys_administration(template: dict):
    for logical_id, statements in _keys(template).items():
        (admin,) = [s for s in statements if s.get("Sid") == "AccountAdministersTheKey"]
        assert admin["Principal"] == ROOT and "Condition" not in admin, logical_id
        assert set(_listed(admin["Action"])) == set(ADMIN_ACTIONS)
        # Enough never to be locked out: the policy, rotation, enabling, deletion and its cancellation.
        assert {"kms:Put*", "kms:Enable*", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion"} <= set(
            ADMIN_ACTIONS
        )
        assert not set(ADMIN_ACTIONS) & USING


def test_the_data_key_is_used_through_the_tenants_services_or_by_the_stacks_roles_only(
    tenant: str, template: dict
):
    (data_key,) = [s for lid, s in _keys(template).items() if lid.startswith("DataKey")]
    by_sid = {s.get("Sid"): s for s in data_key}
    via = by_sid["UseThroughTheTenantsServices"]
    assert via["Principal"] == ROOT and set(via["Action"]) == set(USE_ACTIONS)
    services = via["Condition"]["StringEquals"]["kms:ViaService"]
    assert [s["Fn::Join"][1][0].rstrip(".") for s in services] == list(DATA_SERVICES)
    assert via["Condition"]["StringEquals"]["kms:CallerAccount"] == {"Ref": "AWS::AccountId"}
    grants = by_sid["GrantsForTheTenantsResources"]
    assert grants["Action"] == "kms:CreateGrant"
    assert grants["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}
    direct = by_sid["DirectUseByTheStacksRoles"]
    assert f":role/{stack_name(tenant)}-*" in json.dumps(direct["Condition"]["ArnLike"]["aws:PrincipalArn"])
    # CloudWatch Logs: for this account's log groups only (its encryption context).
    (logs,) = [s for s in data_key if "logs." in json.dumps(s["Principal"])]
    assert "kms:EncryptionContext:aws:logs:arn" in logs["Condition"]["ArnLike"]


def test_the_topic_key_is_used_by_cloudwatch_of_this_account_and_through_sns(template: dict):
    (topic_key,) = [s for lid, s in _keys(template).items() if lid.startswith("MonitoringTopicKey")]
    (cloudwatch,) = [s for s in topic_key if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    assert cloudwatch["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    (via,) = [s for s in topic_key if s.get("Sid") == "UseThroughTheTenantsServices"]
    assert "sns." in json.dumps(via["Condition"]["StringEquals"]["kms:ViaService"])
