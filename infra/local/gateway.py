"""API Gateway (REST API, v1) in front of the deployed functions: each HTTP request on 127.0.0.1 becomes
the Lambda-proxy event the real integration sends, the target found through moto's API Gateway (the
deployed resources, methods and integrations), and the function invoked through moto's Lambda Invoke."""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

log = logging.getLogger("local.gateway")

# What API Gateway answers when it has no method for the request, and when the integration fails.
MISSING_TOKEN = (403, {"message": "Missing Authentication Token"})
BAD_GATEWAY = (502, {"message": "Internal server error"})


@dataclass(frozen=True)
class Route:
    resource_id: str
    path: str  # e.g. /v1/campaigns/{campaign_id} or /{proxy+}
    segments: tuple[str, ...]
    methods: dict  # httpMethod (or ANY) → integration dict from moto

    def match(self, parts: list[str]) -> dict[str, str] | None:
        """Path parameters if this resource matches the request path's segments."""
        params: dict[str, str] = {}
        for i, segment in enumerate(self.segments):
            if segment.startswith("{") and segment.endswith("+}"):
                rest = parts[i:]
                if not rest:
                    return None
                params[segment[1:-2]] = "/".join(rest)
                return params
            if i >= len(parts):
                return None
            if segment.startswith("{") and segment.endswith("}"):
                params[segment[1:-1]] = parts[i]
            elif segment != parts[i]:
                return None
        return params if len(parts) == len(self.segments) else None

    def specificity(self) -> tuple[int, ...]:
        # A literal segment beats a {param}, which beats a greedy {proxy+}, left to right.
        return tuple(0 if s.endswith("+}") else 1 if s.startswith("{") else 2 for s in self.segments)


@dataclass
class RestApi:
    api_id: str
    stage: str
    account: str
    region: str
    routes: list[Route]
    binary_media_types: list[str]

    def find(self, path: str, method: str) -> tuple[Route, dict, dict[str, str]] | None:
        """The most specific resource matching the path, then its method (or ANY) — resource first, as
        API Gateway routes: a literal resource without the method does not fall back to {proxy+}."""
        parts = [p for p in path.split("/") if p]
        matches = [
            (route.specificity(), route, params)
            for route in self.routes
            if (params := route.match(parts)) is not None
        ]
        if not matches:
            return None
        _, route, params = max(matches, key=lambda m: m[0])
        integration = route.methods.get(method) or route.methods.get("ANY")
        if integration is None:
            return None
        return route, integration, params

    def is_binary(self, content_type: str | None) -> bool:
        if not content_type or not self.binary_media_types:
            return False
        media = content_type.split(";")[0].strip().lower()
        return any(fnmatch.fnmatch(media, pattern.lower()) for pattern in self.binary_media_types)


def load_rest_api(api_id: str, *, stage: str, account: str, region: str) -> RestApi:
    """Read the deployed API's resources and integrations back from moto, as API Gateway would route."""
    import boto3

    client = boto3.client("apigateway", region_name=region)
    api = client.get_rest_api(restApiId=api_id)
    routes = []
    paginator = client.get_paginator("get_resources")
    for page in paginator.paginate(restApiId=api_id, embed=["methods"]):
        for resource in page["items"]:
            methods = {}
            for method in resource.get("resourceMethods", {}):
                methods[method] = client.get_integration(
                    restApiId=api_id, resourceId=resource["id"], httpMethod=method
                )
            segments = tuple(s for s in resource["path"].split("/") if s)
            routes.append(Route(resource["id"], resource["path"], segments, methods))
    return RestApi(
        api_id=api_id,
        stage=stage,
        account=account,
        region=region,
        routes=routes,
        binary_media_types=api.get("binaryMediaTypes") or [],
    )


def function_arn_of(integration: dict) -> str | None:
    """The function ARN inside a Lambda integration URI
    (arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{function arn}/invocations)."""
    uri = integration.get("uri") or ""
    marker = ":lambda:path/2015-03-31/functions/"
    if marker not in uri:
        return None
    return uri.split(marker, 1)[1].removesuffix("/invocations")


def build_event(
    api: RestApi,
    route: Route,
    params: dict[str, str],
    *,
    method: str,
    path: str,
    query: str,
    headers: list[tuple[str, str]],
    body: bytes,
    source_ip: str,
    request_id: str,
) -> dict:
    """The REST API Lambda-proxy event (payload format 1.0)."""
    single_headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers:
        single_headers[name] = value  # the last value wins, as API Gateway does
        multi_headers.setdefault(name, []).append(value)
    pairs = parse_qsl(query, keep_blank_values=True)
    single_query: dict[str, str] = {}
    multi_query: dict[str, list[str]] = {}
    for name, value in pairs:
        single_query[name] = value
        multi_query.setdefault(name, []).append(value)

    content_type = next((v for k, v in headers if k.lower() == "content-type"), None)
    is_base64 = api.is_binary(content_type)
    if not body:
        event_body = None
    elif is_base64:
        event_body = base64.b64encode(body).decode("ascii")
    else:
        event_body = body.decode("utf-8", errors="replace")

    now = time.time()
    host = single_headers.get("Host") or single_headers.get("host") or "127.0.0.1"
    user_agent = next((v for k, v in headers if k.lower() == "user-agent"), None)
    return {
        "resource": route.path,
        "path": path,
        "httpMethod": method,
        "headers": single_headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": single_query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": params or None,
        "stageVariables": None,
        "requestContext": {
            "accountId": api.account,
            "apiId": api.api_id,
            "domainName": host,
            "domainPrefix": host.split(".")[0],
            "extendedRequestId": request_id,
            "httpMethod": method,
            "identity": {
                "accessKey": None,
                "accountId": None,
                "caller": None,
                "cognitoAuthenticationProvider": None,
                "cognitoAuthenticationType": None,
                "cognitoIdentityId": None,
                "cognitoIdentityPoolId": None,
                "principalOrgId": None,
                "sourceIp": source_ip,
                "user": None,
                "userAgent": user_agent,
                "userArn": None,
            },
            "path": f"/{api.stage}{path}",
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "requestTimeEpoch": int(now * 1000),
            "resourceId": route.resource_id,
            "resourcePath": route.path,
            "stage": api.stage,
        },
        "body": event_body,
        "isBase64Encoded": is_base64,
    }


def edge_headers(headers: list[tuple[str, str]], source_ip: str) -> list[tuple[str, str]]:
    """The headers API Gateway adds on the way in (its clients always arrive over HTTPS on 443)."""
    present = {name.lower() for name, _ in headers}
    added = [
        ("X-Forwarded-For", source_ip),
        ("X-Forwarded-Port", "443"),
        ("X-Forwarded-Proto", "https"),
        ("X-Amzn-Trace-Id", f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"),
    ]
    return headers + [(name, value) for name, value in added if name.lower() not in present]


def proxy_response(payload: bytes) -> tuple[int, list[tuple[str, str]], bytes] | None:
    """The HTTP response a Lambda-proxy result stands for; None if the result is malformed (API Gateway
    answers 502 then)."""
    try:
        result = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(result, dict):
        return None
    try:
        status = int(result.get("statusCode"))
    except (TypeError, ValueError):
        return None
    headers: list[tuple[str, str]] = []
    multi = result.get("multiValueHeaders") or {}
    single = result.get("headers") or {}
    if not isinstance(multi, dict) or not isinstance(single, dict):
        return None
    seen = set()
    for name, values in multi.items():
        for value in values if isinstance(values, list) else [values]:
            headers.append((name, str(value)))
        seen.add(name.lower())
    for name, value in single.items():
        if name.lower() not in seen:
            headers.append((name, str(value)))
    body = result.get("body")
    if body is None:
        raw = b""
    elif result.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body)
        except (binascii.Error, TypeError):
            return None
    else:
        raw = str(body).encode("utf-8")
    return status, headers, raw


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Bursts of concurrent clients (the e2e smoke test) must queue, not be refused.
    request_queue_size = 256


class Gateway:
    """Bind first (bind(), before the slow start-up, so a taken port fails at once), serve later
    (start(api), once the API is deployed): a client that connects in between waits, it is not refused."""

    def __init__(self, *, port: int = 3000, host: str = "127.0.0.1"):
        self.api: RestApi | None = None
        self.lambda_client = None
        gateway = self

        class Handler(_RequestHandler):
            pass

        Handler.gateway = gateway
        self.server = _Server((host, port), Handler)
        self.host, self.port = self.server.server_address[:2]
        self.url = f"http://{self.host}:{self.port}"
        self._thread: threading.Thread | None = None

    def start(self, api: RestApi) -> None:
        import boto3
        from botocore.config import Config

        self.api = api
        # One attempt only: a retried invocation could create twice what the client asked for once.
        self.lambda_client = boto3.client(
            "lambda",
            region_name=api.region,
            config=Config(
                retries={"total_max_attempts": 1},
                read_timeout=960,
                connect_timeout=5,
                max_pool_connections=64,
            ),
        )
        self._thread = threading.Thread(target=self.server.serve_forever, name="gateway", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self.server.shutdown()
        self.server.server_close()

    def handle(
        self, method: str, raw_path: str, headers: list[tuple[str, str]], body: bytes, source_ip: str
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        request_id = str(uuid.uuid4())
        split = urlsplit(raw_path)
        path = unquote(split.path) or "/"
        found = self.api.find(path, method)
        if found is None:
            return self._json(*MISSING_TOKEN, request_id)
        route, integration, params = found
        kind = integration.get("type")
        if kind == "MOCK":
            return self._mock(integration, request_id)
        arn = function_arn_of(integration)
        if kind != "AWS_PROXY" or arn is None:
            log.error("%s %s: integration %s is not served locally", method, route.path, kind)
            return self._json(*BAD_GATEWAY, request_id)
        event = build_event(
            self.api,
            route,
            params,
            method=method,
            path=path,
            query=split.query,
            headers=edge_headers(headers, source_ip),
            body=body,
            source_ip=source_ip,
            request_id=request_id,
        )
        reply = self.lambda_client.invoke(FunctionName=arn, Payload=json.dumps(event).encode())
        payload = reply["Payload"].read()
        if reply.get("FunctionError"):
            log.error("%s %s: function error: %s", method, path, payload[:2000].decode(errors="replace"))
            return self._json(*BAD_GATEWAY, request_id)
        response = proxy_response(payload)
        if response is None:
            log.error("%s %s: malformed Lambda proxy response: %r", method, path, payload[:500])
            return self._json(*BAD_GATEWAY, request_id)
        status, out_headers, out_body = response
        if not any(name.lower() == "content-type" for name, _ in out_headers):
            out_headers.append(("Content-Type", "application/json"))
        out_headers.append(("x-amzn-RequestId", request_id))
        return status, out_headers, out_body

    @staticmethod
    def _json(status: int, body: dict, request_id: str):
        headers = [
            ("Content-Type", "application/json"),
            ("x-amzn-ErrorType", "ApiGatewayError"),
            ("x-amzn-RequestId", request_id),
        ]
        return status, headers, json.dumps(body).encode()

    @staticmethod
    def _mock(integration: dict, request_id: str):
        """A MOCK integration (CORS preflight): its default integration response's static headers."""
        responses = integration.get("integrationResponses") or {}
        status_key = next(iter(sorted(responses)), "200")
        response = responses.get(status_key, {})
        headers = [("x-amzn-RequestId", request_id)]
        for key, value in (response.get("responseParameters") or {}).items():
            if key.startswith("method.response.header.") and value.startswith("'") and value.endswith("'"):
                headers.append((key.removeprefix("method.response.header."), value[1:-1]))
        return int(status_key), headers, b""


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "local-apigateway"
    gateway: Gateway

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        started = time.perf_counter()
        body = self._read_body()
        headers = [(k, v) for k, v in self.headers.items() if k.lower() != "transfer-encoding"]
        try:
            status, out_headers, out_body = self.gateway.handle(
                self.command, self.path, headers, body, self.client_address[0]
            )
        except Exception:
            log.exception("%s %s failed in the local gateway", self.command, self.path)
            status, out_headers, out_body = Gateway._json(*BAD_GATEWAY, "-")
        self.send_response_only(status)
        self.send_header("Date", formatdate(usegmt=True))
        for name, value in out_headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding", "date"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(out_body)))
        self.end_headers()
        if self.command != "HEAD" and out_body:
            self.wfile.write(out_body)
        log.info(
            '%s "%s %s" %d %d %.0fms',
            self.client_address[0],
            self.command,
            self.path,
            status,
            len(out_body),
            (time.perf_counter() - started) * 1000,
        )

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        # Access lines are logged by _serve with the status and timing; errors come here.
        log.debug(format, *args)
