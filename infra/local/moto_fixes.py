"""Work-arounds for moto 5.2.5 bugs that a valid CDK template runs into, applied in-process before the
stack is created. Each fixes moto's behaviour, never the template: what is deployed stays what was
synthesized. Remove one when the pinned moto no longer needs it."""

from __future__ import annotations

import copy
import functools
import json
import logging


def _kms_key_tags() -> None:
    # AWS::KMS::Key Tags are CloudFormation's {Key, Value}; moto's create_key expects the KMS API's
    # {TagKey, TagValue} and fails the whole stack with KeyError: 'TagKey'.
    from moto.kms.models import Key

    original = Key.create_from_cloudformation_json.__func__
    if getattr(original, "_local_fixed", False):
        return

    @functools.wraps(original)
    def create_from_cloudformation_json(
        cls, resource_name, cloudformation_json, account_id, region_name, **kw
    ):
        properties = cloudformation_json.get("Properties", {})
        tags = properties.get("Tags")
        if tags:
            properties = {
                **properties,
                "Tags": [{"TagKey": t["Key"], "TagValue": t["Value"]} if "Key" in t else t for t in tags],
            }
            cloudformation_json = {**cloudformation_json, "Properties": properties}
        return original(cls, resource_name, cloudformation_json, account_id, region_name, **kw)

    create_from_cloudformation_json._local_fixed = True
    Key.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)


def _transactions_back_up_their_items_only() -> None:
    # transact_write_items deep-copies every table a transaction names (all its items) before applying
    # it, and restores the whole copy if it fails: time grows with the table (seconds per transaction
    # on a table of some thousands of items), and a write another request made meanwhile is undone with
    # it. Here a transaction backs up only the items it names, and a failed one puts back only those.
    import copy
    import threading

    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    original = DynamoDBBackend.transact_write_items
    if getattr(original, "_local_fixed", False):
        return
    inside = threading.local()

    def table_deepcopy(table, memo):
        if getattr(inside, "active", False):
            return table  # moto's whole-table backup: the items named are backed up below instead
        clone = type(table).__new__(type(table))
        memo[id(table)] = clone
        for name, value in table.__dict__.items():
            setattr(clone, name, copy.deepcopy(value, memo))
        return clone

    def backups(backend, transact_items):
        found = []
        for action in transact_items:
            op_type, op = next(iter(action.items()))
            table = backend.tables.get(op.get("TableName"))
            key = op.get("Item") if op_type == "Put" else op.get("Key")
            if table is None or not isinstance(key, dict) or table.hash_key_attr not in key:
                continue  # moto refuses it before writing anything
            if table.range_key_attr and table.range_key_attr not in key:
                continue
            hash_value = DynamoType(key[table.hash_key_attr])
            range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            found.append(
                (table, hash_value, range_value, copy.deepcopy(table.get_item(hash_value, range_value)))
            )
        return found

    @functools.wraps(original)
    def transact_write_items(self, transact_items):
        saved = backups(self, transact_items)
        inside.active = True
        try:
            return original(self, transact_items)
        except Exception:
            for table, hash_value, range_value, item in reversed(saved):
                if range_value is None and item is None:
                    table.items.pop(hash_value, None)
                elif range_value is None:
                    table.items[hash_value] = item
                elif item is None:
                    table.items.get(hash_value, {}).pop(range_value, None)
                else:
                    table.items[hash_value][range_value] = item
            raise
        finally:
            inside.active = False

    transact_write_items._local_fixed = True
    DynamoDBBackend.transact_write_items = transact_write_items
    Table.__deepcopy__ = table_deepcopy


def _queries_read_no_more_than_they_need() -> None:
    # Table.query lists and sorts EVERY item of the table (all_items) before it keeps the ones asked for:
    # each Query, and each page of one, costs O(n log n) in the table's size, comparing DynamoTypes in
    # Python. A long-lived local stack's table grows with every test, and its GSI queries (settlement's
    # claims, page after page) came to hold moto for seconds each, until API calls timed out at 29 s.
    # Here a query on the table itself lists the partition's items only, and one on an index lists the
    # items unsorted: moto filters them and sorts the matches by the index's keys afterwards anyway.
    import inspect
    import threading

    from moto.dynamodb.models.table import Table

    original_query = Table.query
    if getattr(original_query, "_local_fixed", False):
        return
    original_all_items = Table.all_items
    signature = inspect.signature(original_query)
    asked = threading.local()

    @functools.wraps(original_all_items)
    def all_items(table):
        wanted = getattr(asked, "query", None)
        if wanted is None or wanted[0] is not table:
            return original_all_items(table)
        if wanted[1] is None:  # an index: every item, in no order
            if table.range_key_attr:
                return [item for partition in table.items.values() for item in partition.values()]
            return list(table.items.values())
        found = table.items.get(wanted[1])  # .get: no empty partition made in the defaultdict
        if found is None:
            return []
        return list(found.values()) if table.range_key_attr else [found]

    @functools.wraps(original_query)
    def query(table, *args, **kwargs):
        arguments = signature.bind(table, *args, **kwargs).arguments
        if arguments.get("index_name"):
            asked.query = (table, None)
        elif arguments.get("hash_key") is not None:
            asked.query = (table, arguments["hash_key"])
        else:
            return original_query(table, *args, **kwargs)
        try:
            return original_query(table, *args, **kwargs)
        finally:
            asked.query = None

    query._local_fixed = True
    Table.query = query
    Table.all_items = all_items


def _state_machines_from_cloudformation_are_executable() -> None:
    # With execute_state_machine on, every Step Functions API call goes to moto's ASL interpreter
    # backend (stepfunctions_parser_backends), but its CloudFormation still creates the state machine
    # in the plain backend: the stack completes, and StartExecution then finds no such state machine.
    from moto.stepfunctions.models import StateMachine
    from moto.stepfunctions.responses import get_backend

    original = StateMachine.create_from_cloudformation_json.__func__
    if getattr(original, "_local_fixed", False):
        return

    @functools.wraps(original)
    def create_from_cloudformation_json(
        cls, resource_name, cloudformation_json, account_id, region_name, **kw
    ):
        properties = cloudformation_json["Properties"]
        return get_backend(account_id, region_name).create_state_machine(
            properties.get("StateMachineName", resource_name),
            properties.get("DefinitionString", ""),
            properties.get("RoleArn", ""),
            tags=[{"key": t["Key"], "value": t["Value"]} for t in properties.get("Tags", [])],
            sm_type=properties.get("StateMachineType"),
        )

    create_from_cloudformation_json._local_fixed = True
    StateMachine.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)


def _bytes_hex(value):
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    raise TypeError(f"{type(value).__name__} in a transaction")


def _transactions_are_idempotent_by_client_request_token() -> None:
    # DynamoDB answers a TransactWriteItems whose ClientRequestToken it saw succeed (within 10 minutes)
    # with success again, applying nothing; botocore fills the token in by itself and keeps it across
    # its retries. moto ignores the token: a transaction that committed while its client timed out
    # (a loaded machine, a 5 s read timeout) was applied again on botocore's retry, or refused by its
    # own conditions, where DynamoDB would have answered the retry with the first success.
    import hashlib
    import json
    import threading
    import time

    from moto.dynamodb.exceptions import MockValidationException
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.transact_write_items
    if getattr(original, "_local_fixed", False):
        return
    window_s = 600
    done: dict[str, tuple[str, float, object]] = {}
    locks: dict[str, threading.Lock] = {}
    guard = threading.Lock()

    @functools.wraps(original)
    def transact_write_items(self):
        token = self.body.get("ClientRequestToken")
        if not token:
            return original(self)
        fingerprint = hashlib.sha256(
            # (binary attribute values arrive decoded as bytes: fingerprinted by their hex)
            json.dumps(self.body.get("TransactItems"), sort_keys=True, default=_bytes_hex).encode()
        ).hexdigest()
        with guard:
            now = time.monotonic()
            for old in [t for t, (_, at, _) in done.items() if now - at > window_s]:
                done.pop(old, None)
                locks.pop(old, None)
            lock = locks.setdefault(token, threading.Lock())
        with lock:  # a retry arriving while the first attempt still runs waits for its outcome
            seen = done.get(token)
            if seen is not None:
                if seen[0] != fingerprint:
                    raise MockValidationException(
                        "IdempotentParameterMismatch: the token was used with other TransactItems"
                    )
                return seen[2]
            result = original(self)
            with guard:  # the expiry sweep above iterates `done`: writes take the same lock
                done[token] = (fingerprint, time.monotonic(), result)
            return result

    transact_write_items._local_fixed = True
    DynamoHandler.transact_write_items = transact_write_items


def _kms_keys_keep_their_spec_and_usage() -> None:
    # AWS::KMS::Key: moto makes every key SYMMETRIC_DEFAULT / ENCRYPT_DECRYPT whatever KeySpec and KeyUsage
    # say, so the audit log's ECC_NIST_P256 signing key could not sign. Made here as declared (tags as
    # _kms_key_tags converts them).
    from moto.kms.models import Key, kms_backends

    current = Key.create_from_cloudformation_json.__func__
    if getattr(current, "_local_spec_fixed", False):
        return

    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kw):
        properties = cloudformation_json.get("Properties", {})
        tags = [
            {"TagKey": t["Key"], "TagValue": t["Value"]} if "Key" in t else t for t in properties.get("Tags", [])
        ]
        key = kms_backends[account_id][region_name].create_key(
            # As text, as KMS holds it (moto keeps CloudFormation's object, and its policy checks on
            # DescribeKey / Sign then fail with a TypeError).
            policy=policy if isinstance(policy := properties["KeyPolicy"], str) else json.dumps(policy),
            key_usage=properties.get("KeyUsage", "ENCRYPT_DECRYPT"),
            key_spec=properties.get("KeySpec", "SYMMETRIC_DEFAULT"),
            description=properties.get("Description"),
            tags=tags,
        )
        key.key_rotation_status = properties.get("EnableKeyRotation", False)
        key.enabled = properties.get("Enabled", True)
        return key

    create_from_cloudformation_json._local_fixed = True
    create_from_cloudformation_json._local_spec_fixed = True
    Key.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)


def _buckets_keep_their_versioning_and_object_lock() -> None:
    # AWS::S3::Bucket: moto applies only BucketEncryption and Tags; VersioningConfiguration,
    # ObjectLockEnabled and ObjectLockConfiguration are dropped, so the audit heads' bucket would not be
    # write-once locally. Applied here after the bucket is made, as S3 would from the template.
    from moto.s3.models import FakeBucket

    original = FakeBucket.create_from_cloudformation_json.__func__
    if getattr(original, "_local_fixed", False):
        return

    @functools.wraps(original)
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kw):
        bucket = original(cls, resource_name, cloudformation_json, account_id, region_name, **kw)
        properties = cloudformation_json.get("Properties", {})
        if (properties.get("VersioningConfiguration") or {}).get("Status") == "Enabled":
            bucket.versioning_status = "Enabled"
        if properties.get("ObjectLockEnabled") in (True, "true", "True"):
            bucket.object_lock_enabled = True
            bucket.versioning_status = "Enabled"  # S3 turns versioning on with Object Lock
            retention = ((properties.get("ObjectLockConfiguration") or {}).get("Rule") or {}).get("DefaultRetention") or {}
            bucket.default_lock_mode = retention.get("Mode")
            bucket.default_lock_days = int(retention.get("Days", 0))
            bucket.default_lock_years = int(retention.get("Years", 0))
        return bucket

    create_from_cloudformation_json._local_fixed = True
    FakeBucket.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)


def _event_rules_invoke_their_lambda_targets() -> None:
    # moto's EventBridge delivers a matched event to log groups, SQS, buses and API destinations, and
    # raises NotImplementedError for a Lambda target (which S3's sender swallows): S3's Object Created
    # would reach reconciliation's rule and stop there. The other targets go to moto as before. Here a matched rule also invokes each Lambda target through moto's Lambda (so the worker
    # runs the real handler), asynchronously as EventBridge does, with the event as its payload.
    import json
    import threading

    from moto.events.models import Rule
    from moto.utilities.arns import parse_arn

    original = Rule.send_to_targets
    if getattr(original, "_local_fixed", False):
        return

    @functools.wraps(original)
    def send_to_targets(self, original_event, transform_input=True):
        lambdas = [t for t in self.targets if parse_arn(t["Arn"]).service == "lambda"]
        others = copy.copy(self)  # the rule without its Lambda targets, for moto's own delivery
        others.targets = [t for t in self.targets if t not in lambdas]
        original(others, original_event, transform_input)
        if not self.event_pattern.matches_event(original_event):
            return
        for target in lambdas:
            arn = parse_arn(target["Arn"])

            def invoke(function_arn=target["Arn"], region=arn.region, account=arn.account):
                from moto.awslambda.utils import get_backend

                try:
                    function = get_backend(account, region).get_function(function_arn)
                    function.invoke(json.dumps(original_event, default=str), {}, {})
                except Exception:  # noqa: BLE001  (EventBridge's delivery never fails the sender)
                    logging.getLogger("local.events").exception("rule %s: %s failed", self.name, function_arn)

            threading.Thread(target=invoke, name=f"events-{self.name}", daemon=True).start()

    send_to_targets._local_fixed = True
    Rule.send_to_targets = send_to_targets


def apply() -> None:
    _kms_key_tags()
    _kms_keys_keep_their_spec_and_usage()
    _buckets_keep_their_versioning_and_object_lock()
    _transactions_back_up_their_items_only()
    _queries_read_no_more_than_they_need()
    _state_machines_from_cloudformation_are_executable()
    _transactions_are_idempotent_by_client_request_token()
    _event_rules_invoke_their_lambda_targets()
