"""The local API Gateway's request → proxy event → response mapping, and the deployer's template handling."""

from __future__ import annotations

import base64
import json

import pytest

from infra.local.deploy import Synthesized, function_sources, local_template
from infra.local.gateway import RestApi, Route, build_event, function_arn_of, proxy_response


def route(path: str, *methods: str) -> Route:
    integration = {
        "type": "AWS_PROXY",
        "uri": "arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/"
        "arn:aws:lambda:eu-west-1:123456789012:function:api/invocations",
    }
    segments = tuple(s for s in path.split("/") if s)
    return Route(f"id-{path}", path, segments, {m: integration for m in methods})


API = RestApi(
    api_id="abc123",
    stage="prod",
    account="123456789012",
    region="eu-west-1",
    routes=[
        route("/", "ANY"),
        route("/{proxy+}", "ANY"),
        route("/v1/campaigns", "GET", "POST"),
        route("/v1/campaigns/{campaign_id}", "GET"),
    ],
    binary_media_types=["image/*", "application/octet-stream"],
)


@pytest.mark.parametrize(
    ("method", "path", "resource", "params"),
    [
        ("GET", "/", "/", {}),
        ("GET", "/v1/campaigns", "/v1/campaigns", {}),
        ("GET", "/v1/campaigns/cmp_1", "/v1/campaigns/{campaign_id}", {"campaign_id": "cmp_1"}),
        ("GET", "/v1/openapi.json", "/{proxy+}", {"proxy": "v1/openapi.json"}),
    ],
)
def test_the_most_specific_resource_wins(method, path, resource, params):
    found, _, found_params = API.find(path, method)
    assert (found.path, found_params) == (resource, params)


def test_a_resource_without_the_method_does_not_fall_back_to_the_proxy():
    # API Gateway picks the resource first; its missing method is a 403, not the greedy proxy's.
    assert API.find("/v1/campaigns/cmp_1", "DELETE") is None


def test_no_resource_no_route():
    api = RestApi("x", "prod", "1", "eu-west-1", [route("/v1/campaigns", "GET")], [])
    assert api.find("/v1/other", "GET") is None
    assert api.find("/v1/campaigns", "POST") is None


def test_function_arn_from_integration_uri():
    found = API.find("/v1/campaigns", "GET")
    assert function_arn_of(found[1]) == "arn:aws:lambda:eu-west-1:123456789012:function:api"
    assert function_arn_of({"uri": "https://example.com"}) is None


def event_for(method, raw_path, headers, body=b""):
    path, _, query = raw_path.partition("?")
    found_route, _, params = API.find(path, method)
    return build_event(
        API,
        found_route,
        params,
        method=method,
        path=path,
        query=query,
        headers=headers,
        body=body,
        source_ip="127.0.0.1",
        request_id="req-1",
    )


def test_proxy_event_shape():
    event = event_for(
        "POST",
        "/v1/campaigns?limit=5&tag=a&tag=b",
        [("Content-Type", "application/json"), ("x-api-key", "k"), ("Accept", "a"), ("Accept", "b")],
        b'{"name": "x"}',
    )
    assert event["resource"] == "/v1/campaigns"
    assert event["path"] == "/v1/campaigns"
    assert event["httpMethod"] == "POST"
    assert event["headers"]["x-api-key"] == "k"
    assert event["headers"]["Accept"] == "b"
    assert event["multiValueHeaders"]["Accept"] == ["a", "b"]
    assert event["queryStringParameters"] == {"limit": "5", "tag": "b"}
    assert event["multiValueQueryStringParameters"] == {"limit": ["5"], "tag": ["a", "b"]}
    assert event["pathParameters"] is None
    assert event["body"] == '{"name": "x"}' and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["stage"] == "prod" and context["resourcePath"] == "/v1/campaigns"
    assert context["path"] == "/prod/v1/campaigns"
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["requestId"] == "req-1" and context["apiId"] == "abc123"


def test_empty_parts_are_null_as_api_gateway_sends_them():
    event = event_for("GET", "/v1/campaigns/cmp_9", [])
    assert event["headers"] is None and event["multiValueHeaders"] is None
    assert event["queryStringParameters"] is None and event["body"] is None
    assert event["pathParameters"] == {"campaign_id": "cmp_9"}


def test_binary_media_types_are_base64():
    event = event_for("POST", "/v1/campaigns", [("Content-Type", "image/png")], b"\x89PNG")
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\x89PNG"


def test_proxy_response_headers_and_body():
    payload = json.dumps(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "application/json", "X-One": "1"},
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"], "X-One": ["1"]},
            "body": '{"ok": true}',
            "isBase64Encoded": False,
        }
    ).encode()
    status, headers, body = proxy_response(payload)
    assert status == 201
    assert headers.count(("Set-Cookie", "a=1")) == 1 and ("Set-Cookie", "b=2") in headers
    assert [h for h in headers if h[0] == "X-One"] == [("X-One", "1")]
    assert body == b'{"ok": true}'


def test_proxy_response_base64_body():
    payload = json.dumps(
        {"statusCode": 200, "body": base64.b64encode(b"\x00\x01").decode(), "isBase64Encoded": True}
    ).encode()
    assert proxy_response(payload)[2] == b"\x00\x01"


@pytest.mark.parametrize("payload", [b"not json", b"[]", b'{"body": "no status"}', b'{"statusCode": "x"}'])
def test_malformed_proxy_response_is_none(payload):
    assert proxy_response(payload) is None


def test_local_template_drops_only_the_bootstrap_checks():
    template = {
        "Rules": {"CheckBootstrapVersion": {}},
        "Parameters": {"BootstrapVersion": {"Type": "String"}, "Other": {"Type": "String"}},
        "Resources": {"T": {"Type": "AWS::DynamoDB::Table"}},
    }
    local = local_template(template)
    assert "Rules" not in local
    assert local["Parameters"] == {"Other": {"Type": "String"}}
    assert local["Resources"] == template["Resources"]
    assert "Rules" in template  # the synthesized template itself is left as it was


def test_function_sources_resolve_layers_from_the_template(tmp_path):
    template = {
        "Resources": {
            "Core": {"Type": "AWS::Lambda::LayerVersion", "Properties": {"Content": {"S3Key": "core.zip"}}},
            "Deps": {
                "Type": "AWS::Lambda::LayerVersion",
                "Metadata": {"aws:asset:path": "asset.deps"},
                "Properties": {"Content": {"S3Key": "d.zip"}},
            },
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Code": {"S3Key": "fn.zip"},
                    "Handler": "handler.lambda_handler",
                    "Layers": [{"Ref": "Core"}, {"Ref": "Deps"}],
                },
            },
            "Inline": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"Code": {"ZipFile": "exports.handler = ..."}, "Handler": "index.handler"},
            },
        }
    }
    synth = Synthesized(
        "S", template, tmp_path, {"core.zip": tmp_path / "asset.core", "fn.zip": tmp_path / "asset.fn"}
    )
    sources = function_sources(synth, {"Fn": "S-Fn-123", "Inline": "S-Inline-1"})
    assert set(sources) == {"S-Fn-123"}
    source = sources["S-Fn-123"]
    assert source.code_dir == tmp_path / "asset.fn"
    assert source.layer_dirs == (tmp_path / "asset.core" / "python", tmp_path / "asset.deps" / "python")
    assert source.handler == "handler.lambda_handler"


class EchoLambda:
    """Stands in for moto's Lambda Invoke: answers with the event it was given, or as told."""

    def __init__(self):
        self.events = []
        self.error = False

    def invoke(self, FunctionName, Payload):  # noqa: N803 - boto3's parameter names
        import io

        event = json.loads(Payload)
        self.events.append(event)
        if self.error:
            return {"FunctionError": "Unhandled", "Payload": io.BytesIO(b'{"errorMessage": "x"}')}
        result = {
            "statusCode": 200,
            "headers": {"Content-Type": "application/json"},
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
            "body": json.dumps({"path": event["path"], "body": event["body"]}),
        }
        return {"Payload": io.BytesIO(json.dumps(result).encode())}


@pytest.fixture
def served():
    from infra.local.gateway import Gateway

    gateway = Gateway(port=0)
    gateway.start(API)
    gateway.lambda_client = EchoLambda()
    yield gateway
    gateway.stop()


def test_http_round_trip(served):
    import requests

    response = requests.post(f"{served.url}/v1/campaigns?x=1", json={"a": 1}, timeout=10)
    assert response.status_code == 200
    assert response.json() == {"path": "/v1/campaigns", "body": '{"a": 1}'}
    assert response.raw.headers.getlist("Set-Cookie") == ["a=1", "b=2"]
    assert response.headers["x-amzn-RequestId"]
    event = served.lambda_client.events[-1]
    assert event["queryStringParameters"] == {"x": "1"}
    assert event["requestContext"]["identity"]["sourceIp"] == "127.0.0.1"


def test_http_chunked_request_body(served):
    import requests

    response = requests.post(f"{served.url}/v1/campaigns", data=iter([b'{"a":', b" 2}"]), timeout=10)
    assert response.json()["body"] == '{"a": 2}'


def test_http_no_route_is_api_gateways_403(served):
    import requests

    response = requests.delete(f"{served.url}/v1/campaigns/cmp_1", timeout=10)
    assert response.status_code == 403
    assert response.json() == {"message": "Missing Authentication Token"}


def test_http_function_error_is_502(served):
    import requests

    served.lambda_client.error = True
    response = requests.get(f"{served.url}/v1/campaigns", timeout=10)
    assert response.status_code == 502
    assert response.json() == {"message": "Internal server error"}


def test_edge_headers_added_unless_present():
    from infra.local.gateway import edge_headers

    headers = dict(edge_headers([("X-Forwarded-Proto", "http")], "10.0.0.1"))
    assert headers["X-Forwarded-For"] == "10.0.0.1"
    assert headers["X-Forwarded-Proto"] == "http"
    assert headers["X-Amzn-Trace-Id"].startswith("Root=1-")
