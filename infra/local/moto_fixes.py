"""Work-arounds for moto 5.2.5 bugs that a valid CDK template runs into, applied in-process before the
stack is created. Each fixes moto's behaviour, never the template: what is deployed stays what was
synthesized. Remove one when the pinned moto no longer needs it."""

from __future__ import annotations

import functools


def _kms_key_tags() -> None:
    # AWS::KMS::Key Tags are CloudFormation's {Key, Value}; moto's create_key expects the KMS API's
    # {TagKey, TagValue} and fails the whole stack with KeyError: 'TagKey'.
    from moto.kms.models import Key

    original = Key.create_from_cloudformation_json.__func__
    if getattr(original, "_local_fixed", False):
        return

    @functools.wraps(original)
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kw):
        properties = cloudformation_json.get("Properties", {})
        tags = properties.get("Tags")
        if tags:
            properties = {
                **properties,
                "Tags": [
                    {"TagKey": t["Key"], "TagValue": t["Value"]} if "Key" in t else t for t in tags
                ],
            }
            cloudformation_json = {**cloudformation_json, "Properties": properties}
        return original(cls, resource_name, cloudformation_json, account_id, region_name, **kw)

    create_from_cloudformation_json._local_fixed = True
    Key.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)


def apply() -> None:
    _kms_key_tags()
