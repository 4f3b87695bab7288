"""The local stack's DynamoDB stream delivery (infra/local/streams.py) on a moto server in this process:
after the write, in order, filtered, batched; a transaction's records only if it commits; partial
failures retried from the failed record, errors bisected, then given up to the SQS destination; a
consumer writing back to its own table neither recurses nor blocks the write that fed it."""

from __future__ import annotations

import io
import json
import os
import time
import uuid
import zipfile

import pytest

from infra.local import moto_server
from infra.local.deploy import FunctionSource
from infra.local.runtime import LocalRuntime
from infra.local.streams import compile_filters, record_matches

pytestmark = pytest.mark.xdist_group("local-runtime")

HANDLER = """
import json, os


def lambda_handler(event, context):
    records = event["Records"]
    with open(os.environ["OUT_FILE"], "a") as out:
        out.write(json.dumps([r["dynamodb"]["Keys"]["pk"]["S"] for r in records]) + "\\n")
    failures = []
    for record in records:
        image = record["dynamodb"].get("NewImage", {})
        if "crash" in image:
            raise RuntimeError("crash")
        if "poison" in image:
            failures.append({"itemIdentifier": record["dynamodb"]["SequenceNumber"]})
        if "children" in image:
            import boto3

            client = boto3.client("dynamodb")
            for i in range(int(image["children"]["N"])):
                pk = record["dynamodb"]["Keys"]["pk"]["S"]
                client.put_item(TableName=os.environ["TABLE"], Item={"pk": {"S": f"{pk}.{i}"}, "kind": {"S": "CHILD"}})
    return {"batchItemFailures": failures}
"""


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "# the code that runs is the local folder")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    from moto.core.config import default_user_config

    saved_env = dict(os.environ)
    saved_sfn = dict(default_user_config["stepfunctions"])
    root = tmp_path_factory.mktemp("local-streams")
    code = root / "code"
    code.mkdir()
    (code / "handler.py").write_text(HANDLER)
    server = moto_server.start(region="eu-west-1")
    runtime = LocalRuntime({}, moto_endpoint=server.endpoint, region="eu-west-1", log_dir=root / "logs")
    runtime.install()
    try:
        yield {"runtime": runtime, "root": root, "code": code}
    finally:
        runtime.close()
        server.stop()
        default_user_config["stepfunctions"].clear()
        default_user_config["stepfunctions"].update(saved_sfn)
        os.environ.clear()
        os.environ.update(saved_env)


class Probe:
    """A table with a stream, a function that logs each batch it gets, and a mapping between them."""

    def __init__(self, local, **mapping):
        import boto3

        self.name = f"streams-{uuid.uuid4().hex[:8]}"
        self.out = local["root"] / f"{self.name}.jsonl"
        self.out.touch()
        self.ddb = boto3.client("dynamodb")
        self.sqs = boto3.client("sqs")
        table = self.ddb.create_table(
            TableName=self.name,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )["TableDescription"]
        role = boto3.client("iam").create_role(RoleName=self.name, AssumeRolePolicyDocument="{}")["Role"][
            "Arn"
        ]
        boto3.client("lambda").create_function(
            FunctionName=self.name,
            Runtime="python3.11",
            Role=role,
            Handler="handler.lambda_handler",
            Code={"ZipFile": _zip()},
            Timeout=30,
            Environment={"Variables": {"OUT_FILE": str(self.out), "TABLE": self.name}},
        )
        local["runtime"].functions[self.name] = FunctionSource(
            logical_id=self.name, code_dir=local["code"], layer_dirs=(), handler="handler.lambda_handler"
        )
        self.queue_url = self.sqs.create_queue(QueueName=f"{self.name}-dlq")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        if mapping.pop("dlq", False):
            mapping["DestinationConfig"] = {"OnFailure": {"Destination": queue_arn}}
        boto3.client("lambda").create_event_source_mapping(
            EventSourceArn=table["LatestStreamArn"],
            FunctionName=self.name,
            StartingPosition="TRIM_HORIZON",
            **mapping,
        )

    def put(self, pk: str, **attributes) -> None:
        self.ddb.put_item(TableName=self.name, Item=self.item(pk, **attributes))

    def item(self, pk: str, **attributes) -> dict:
        values = {k: {"N": str(v)} if isinstance(v, int) else {"S": v} for k, v in attributes.items()}
        return {"pk": {"S": pk}, **values}

    def transact(self, *items: dict, fail: bool = False) -> None:
        actions = [{"Put": {"TableName": self.name, "Item": item}} for item in items]
        if fail:
            actions.append(
                {
                    "ConditionCheck": {
                        "TableName": self.name,
                        "Key": {"pk": {"S": "never-written"}},
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                }
            )
        self.ddb.transact_write_items(TransactItems=actions)

    def batches(self) -> list[list[str]]:
        return [json.loads(line) for line in self.out.read_text().splitlines()]

    def wait_for(self, last_key: str, timeout: float = 20.0) -> list[list[str]]:
        """The batches delivered, once one carrying `last_key` arrived."""
        deadline = time.monotonic() + timeout
        while True:
            batches = self.batches()
            if any(last_key in batch for batch in batches):
                return batches
            assert time.monotonic() < deadline, f"{last_key} never delivered; got {batches}"
            time.sleep(0.05)

    def dead_letters(self) -> list[dict]:
        answer = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in answer.get("Messages", [])]


def _pattern(**fields) -> dict:
    return {"Filters": [{"Pattern": json.dumps(fields)}]}


def test_records_arrive_after_the_write_in_order_filtered_and_batched(local):
    probe = Probe(
        local,
        BatchSize=3,
        FilterCriteria=_pattern(eventName=["INSERT"], dynamodb={"NewImage": {"kind": {"S": ["PARENT"]}}}),
    )
    expected = []
    for i in range(7):
        probe.put(f"p{i}", kind="PARENT")
        expected.append(f"p{i}")
        probe.put(f"o{i}", kind="OTHER")  # filtered out
        probe.put(f"p{i}", kind="PARENT", changed=1)  # a MODIFY: filtered out
    probe.transact(*[probe.item(f"t{i}", kind="PARENT") for i in range(5)])
    expected += [f"t{i}" for i in range(5)]
    batches = probe.wait_for("t4")
    assert [key for batch in batches for key in batch] == expected
    assert all(1 <= len(batch) <= 3 for batch in batches)


def test_a_batching_window_gathers_records_until_it_passes_or_the_batch_is_full(local):
    # Given a mapping with a 2 s window and batches of 5
    probe = Probe(local, BatchSize=5, MaximumBatchingWindowInSeconds=2)
    started = time.monotonic()
    # When 3 records are written at once, then (after that batch) 6 more
    for i in range(3):
        probe.put(f"w{i}")
    [first] = probe.wait_for("w2", timeout=10)
    waited = time.monotonic() - started
    for i in range(6):
        probe.put(f"x{i}")
    batches = probe.wait_for("x5", timeout=10)
    # Then the first 3 came together, once the window had passed; of the 6, a full batch of 5 first
    assert first == ["w0", "w1", "w2"] and 2 <= waited < 5
    assert batches[1:] == [["x0", "x1", "x2", "x3", "x4"], ["x5"]]


def test_while_a_window_is_open_each_write_reads_only_the_records_it_added(local, monkeypatch):
    # Given a 3 s window and a filter: most of a busy table's records are not for this consumer
    from infra.local import streams

    reads: dict[str, int] = {}
    event_record = streams._Poller._event_record

    def counted(poller, record, source_arn):
        key = record["dynamodb"]["Keys"]["pk"]["S"]
        reads[key] = reads.get(key, 0) + 1
        return event_record(poller, record, source_arn)

    monkeypatch.setattr(streams._Poller, "_event_record", counted)
    probe = Probe(
        local,
        BatchSize=100,
        MaximumBatchingWindowInSeconds=3,
        FilterCriteria=_pattern(dynamodb={"NewImage": {"kind": {"S": ["PARENT"]}}}),
    )
    # When a record for it opens the window and 60 writes follow within it
    probe.put("first", kind="PARENT")
    for i in range(60):
        probe.put(f"busy{i}", kind="OTHER" if i % 10 else "PARENT")
    batches = probe.wait_for("first", timeout=10)
    # Then they came as one batch, and each record was read from the stream once, not once per wakeup
    # (rescanning the backlog on every write, under moto's lock, starved a busy stack's API)
    assert batches == [["first", *[f"busy{i}" for i in range(0, 60, 10)]]]
    assert {key: n for key, n in reads.items() if n != 1 and (key == "first" or key.startswith("busy"))} == {}
    assert len([k for k in reads if k == "first" or k.startswith("busy")]) == 61


def test_a_transaction_that_fails_leaves_no_record(local):
    probe = Probe(local)
    with pytest.raises(probe.ddb.exceptions.TransactionCanceledException):
        probe.transact(probe.item("lost-1"), probe.item("lost-2"), fail=True)
    probe.transact(probe.item("kept-1"), probe.item("kept-2"))
    probe.put("marker")
    batches = probe.wait_for("marker")
    assert [key for batch in batches for key in batch] == ["kept-1", "kept-2", "marker"]


def test_a_consumer_writing_to_its_own_table_neither_recurses_nor_blocks_the_write(local):
    probe = Probe(local)  # no filter: the children reach the function too, which writes nothing for them
    started = time.perf_counter()
    probe.put("parent", children=5)
    assert time.perf_counter() - started < 2.0  # the write returns before the function runs
    batches = probe.wait_for("parent.4")
    delivered = [key for batch in batches for key in batch]
    assert delivered == ["parent", *[f"parent.{i}" for i in range(5)]]
    assert batches[0] == ["parent"]  # the children, written during that invocation, came after it
    time.sleep(0.5)
    assert len([k for b in probe.batches() for k in b]) == 6


def test_a_partial_failure_is_retried_from_the_failed_record_then_given_up_to_the_dlq(local):
    probe = Probe(
        local,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        BisectBatchOnFunctionError=True,
        MaximumRetryAttempts=2,
        dlq=True,
    )
    probe.transact(probe.item("a"), probe.item("p", poison="yes"), probe.item("b"))
    probe.wait_for("a")  # the transaction's records arrive together, as one batch
    probe.put("c")
    batches = probe.wait_for("c")
    # Lambda checkpoints before the failed record and retries from it (b, which succeeded, runs again).
    assert batches == [["a", "p", "b"], ["p", "b"], ["p", "b"], ["c"]]
    (message,) = probe.dead_letters()
    info = message["DDBStreamBatchInfo"]
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert message["requestContext"]["approximateInvokeCount"] == 3
    assert info["batchSize"] == 2
    assert int(info["endSequenceNumber"]) == int(info["startSequenceNumber"]) + 1
    assert f":table/{probe.name}/stream/" in info["streamArn"]


def test_a_function_error_bisects_the_batch_down_to_the_bad_record(local):
    probe = Probe(local, BisectBatchOnFunctionError=True, MaximumRetryAttempts=1, dlq=True)
    probe.transact(probe.item("x1"), probe.item("x2"), probe.item("bad", crash="yes"), probe.item("x3"))
    probe.wait_for("x1")
    probe.put("end")
    batches = probe.wait_for("end")
    # Splits are not retries: [x1 x2 | bad x3] → [bad | x3] → bad, retried once, given up → x3.
    assert batches == [
        ["x1", "x2", "bad", "x3"],
        ["x1", "x2"],
        ["bad", "x3"],
        ["bad"],
        ["bad"],
        ["x3"],
        ["end"],
    ]
    (message,) = probe.dead_letters()
    assert message["DDBStreamBatchInfo"]["batchSize"] == 1


@pytest.mark.parametrize(
    ("pattern", "record", "matches"),
    [
        ({"eventName": ["INSERT"]}, {"eventName": "INSERT"}, True),
        ({"eventName": ["INSERT"]}, {"eventName": "MODIFY"}, False),
        ({"a": {"b": {"S": ["X", "Y"]}}}, {"a": {"b": {"S": "Y"}}}, True),
        ({"a": {"b": {"S": ["X"]}}}, {"a": {}}, False),
        ({"a": [{"exists": False}]}, {}, True),
        ({"a": [{"exists": True}]}, {}, False),
        ({"a": [{"prefix": "RED"}]}, {"a": "REDEMPTION"}, True),
        ({"a": [{"anything-but": ["X"]}]}, {"a": "Y"}, True),
        ({"a": [{"anything-but": ["X"]}]}, {"a": "X"}, False),
        # numeric, as the instant threshold's mapping uses it on a stream image's N (a string)
        ({"a": {"N": [{"numeric": ["<=", 0]}]}}, {"a": {"N": "0"}}, True),
        ({"a": {"N": [{"numeric": ["<=", 0]}]}}, {"a": {"N": "-25"}}, True),
        ({"a": {"N": [{"numeric": ["<=", 0]}]}}, {"a": {"N": "1"}}, False),
        ({"a": {"N": [{"numeric": [">", 0]}]}}, {"a": {"N": "0"}}, False),
        ({"a": {"N": [{"numeric": [">", 0, "<=", 5]}]}}, {"a": {"N": "5"}}, True),
        ({"a": {"N": [{"numeric": [">", 0]}]}}, {}, False),
        ({"a": {"N": [{"numeric": [">", 0]}]}}, {"a": {"N": "x"}}, False),
    ],
)
def test_filter_patterns(pattern, record, matches):
    assert record_matches(pattern, record) is matches


def test_an_unsupported_filter_is_not_applied():
    assert compile_filters({"Filters": [{"Pattern": json.dumps({"n": [{"suffix": "x"}]})}]}) is None
    assert compile_filters({"Filters": [{"Pattern": json.dumps({"n": [{"numeric": ["~", 1]}]})}]}) is None


def test_a_failed_transaction_puts_back_exactly_the_items_it_touched(local):
    # moto_fixes: a transaction backs up the items it names, not whole tables.
    from moto.dynamodb.models import DynamoDBBackend

    assert getattr(DynamoDBBackend.transact_write_items, "_local_fixed", False)
    probe = Probe(local)
    probe.put("kept", n=1)
    probe.put("updated", n=1)
    set_n = {"UpdateExpression": "SET n = :n", "ExpressionAttributeValues": {":n": {"N": "2"}}}
    with pytest.raises(probe.ddb.exceptions.TransactionCanceledException):
        probe.ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": probe.name, "Item": probe.item("new", n=3)}},
                {"Update": {"TableName": probe.name, "Key": {"pk": {"S": "updated"}}, **set_n}},
                {"Update": {"TableName": probe.name, "Key": {"pk": {"S": "made-by-update"}}, **set_n}},
                {
                    "ConditionCheck": {
                        "TableName": probe.name,
                        "Key": {"pk": {"S": "kept"}},
                        "ConditionExpression": "n = :two",
                        "ExpressionAttributeValues": {":two": {"N": "2"}},
                    }
                },
            ]
        )
    items = probe.ddb.scan(TableName=probe.name, ConsistentRead=True)["Items"]
    assert {i["pk"]["S"]: i["n"]["N"] for i in items} == {"kept": "1", "updated": "1"}
