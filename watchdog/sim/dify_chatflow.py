"""What one run emits, in the order a running Dify 1.12.1 sends it.

Chatflows (../shared/upstream/dify-apps/): echo-chat is Start -> Answer `echo: {{sys.query}}`; midstream-fail
is Start -> Answer 1 `partial: {{sys.query}}\\n` -> HTTP Request GET <fault server>/<query> -> Answer 2
`upstream said: {{http.body}}`. The response coordinator streams an answer's text ahead of its node's events:
Answer 1's chunks come before Start's `node_finished`, Answer 2's constant text before the HTTP node runs,
and the HTTP body before the HTTP node's `node_finished` (observed). A failed run sends `workflow_finished`
(failed) then the error (`generate_task_pipeline._handle_workflow_failed_event`), never `message_end`.

Besides payloads a script yields two markers the caller acts on: `WAIT` (time passes mid-run; pings go on)
and `LOG` (a line Dify writes).
"""

from __future__ import annotations

from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

from watchdog.sim.dify_apps import answer_for
from watchdog.sim.dify_events import Run

WAIT = "_wait"  # {"event": WAIT, "seconds": float}
LOG = "_log"  # {"event": LOG, "level", "where", "message", "traceback": [lines], "request": has a request id}
FAULT_SERVER = "http://127.0.0.1:18083"  # midstream-fail.yml's node target (the harness rewrites it)
READ_TIMEOUT = 30.0  # midstream-fail.yml: timeout.read
FORCE_LIST = {"429", "500", "502", "503", "504"}  # core/helper/ssrf_proxy.py STATUS_FORCELIST
CHUNK_WORDS = 3


def script(run: Run, model_error: str = "") -> Iterator[dict[str, Any]]:
    """The run's payloads and markers; payloads end with `message_end` or `error`."""
    if run.app.mode == "advanced-chat":
        yield from chatflow(run, model_error)
    else:
        yield from model_app(run, model_error)


def model_app(run: Run, model_error: str) -> Iterator[dict[str, Any]]:
    """A chat, agent or completion app: model output in chunks, ending with an empty one; agents wrap it
    in `agent_thought`s and stream `agent_message`. A failing model is an InvokeError:
    `completion_request_error` (`_error_to_stream_response`)."""
    if model_error:
        yield run.error("completion_request_error", model_error)
        return
    agent = run.app.mode == "agent-chat"
    if agent:
        yield run.agent_thought("")
    words = answer_for(run.query).split(" ")
    for i in range(0, len(words), CHUNK_WORDS):
        last = i + CHUNK_WORDS >= len(words)
        yield run.message(" ".join(words[i : i + CHUNK_WORDS]) + ("" if last else " "))
    yield run.agent_thought(run.answer) if agent else run.message("")
    yield run.message_end()


def fault_server(query: str) -> tuple[float, str, str]:
    """(seconds, node error or "", body) of `GET <fault server>/<query>` as the harness's fault server
    (scripts/upstreams/fault.py) answers it and Dify's HTTP node (max_retries 0) takes it; texts as seen."""
    url = f"{FAULT_SERVER}/{query}"
    head, _, rest = query.lstrip("/").partition("/")
    if head in FORCE_LIST:  # ssrf_proxy.make_request: no retry left, MaxRetriesExceededError
        return 0.0, f"Reached maximum retries (0) for URL {url}", ""
    if head == "close":  # httpx transport errors: HttpRequestNodeError(str(e))
        return 0.0, "Server disconnected without sending a response.", ""
    if head == "truncate":
        cut = (
            "peer closed connection without sending complete message body (received 10 bytes, expected 1000)"
        )
        return 0.0, cut, ""
    if head == "hang":
        return READ_TIMEOUT, "timed out", ""
    if head == "slow":
        return (float(rest) if rest.replace(".", "", 1).isdigit() else 3.0), "", "slow ok"
    if len(head) == 3 and head.isdigit():  # other statuses pass: the node has no error strategy
        return 0.0, "", f"fault {head}"
    return 0.0, "", "ok"


def chatflow(run: Run, model_error: str) -> Iterator[dict[str, Any]]:
    failing = run.app.behaviour == "midstream_fail"
    first = ("answer1", "answer", "Answer 1") if failing else ("answer", "answer", "Answer")
    yield run.workflow_started()
    yield run.node_started("start", "start", "Start")
    yield run.message("partial: " if failing else "echo: ", [first[0], "answer"])  # text and variable
    yield run.message(run.query, ["sys", "query"])  # segments arrive as separate chunks
    if failing:
        yield run.message("\n", [first[0], "answer"])
    system = run.system(with_conversation=True)
    yield run.node_finished("start", "start", "Start", inputs=system, outputs=system)
    yield run.node_started(*first)
    if failing:
        yield run.message("upstream said: ", ["answer2", "answer"])
    yield run.node_finished(*first, outputs={"answer": run.answer, "files": []})
    error = model_error
    if failing and not error:
        seconds, error, body = fault_server(run.query)
        yield from _http_node(run, seconds, error, body)
    if error:
        yield _log(
            "ERROR", "workflow_entry.py:124", "Unknown Error when workflow entry running", raised=error
        )
        yield run.workflow_finished("failed", error)
        yield run.error("invalid_param", f"Run failed: {error}")
        return
    if failing:
        yield run.node_started("answer2", "answer", "Answer 2")
        yield run.node_finished("answer2", "answer", "Answer 2", outputs={"answer": run.answer, "files": []})
    yield run.workflow_finished("succeeded")
    yield run.message_end()


def _http_node(run: Run, seconds: float, error: str, body: str) -> Iterator[dict[str, Any]]:
    node = ("http", "http-request", "HTTP Request")
    yield run.node_started(*node)
    if seconds:
        yield {"event": WAIT, "seconds": seconds}
    yield from _http_logs(run.query, error)
    if error:
        yield run.node_finished(*node, error=error, process_data=_request(run.query))
        return
    yield run.message(body, ["http", "body"])
    status = int(run.query.lstrip("/")[:3]) if run.query.lstrip("/")[:3].isdigit() else 200
    outputs = {"status_code": status, "body": body, "headers": {"content-type": "text/plain"}, "files": []}
    yield run.node_finished(*node, outputs=outputs, process_data=_request(run.query))


def _request(query: str) -> dict[str, Any]:
    host = FAULT_SERVER.removeprefix("http://")
    return {"request": f"GET /{query.lstrip('/')} HTTP/1.1\r\nHost: {host}\r\n\r\n"}


def _http_logs(query: str, error: str) -> Iterator[dict[str, Any]]:
    """What the HTTP node makes Dify log (observed); the ABORT line comes from the graph engine's worker,
    outside the request, so it has no request id."""
    url = f"{FAULT_SERVER}/{query}"
    status = query.lstrip("/").partition("/")[0]
    answered = len(status) == 3 and status.isdigit()
    if answered or not error:  # httpx logs every answer it got
        code = int(status) if answered else 200
        phrase = HTTPStatus(code).phrase if code in {s.value for s in HTTPStatus} else ""
        yield _log("INFO", "_client.py:1038", f'HTTP Request: GET {url} "HTTP/1.1 {code} {phrase}"')
    if not error:
        return
    if status in FORCE_LIST:
        message = f"Received status code {status} for URL {url} which is in the force list"
        yield _log("WARNING", "ssrf_proxy.py:194", message)
    else:
        yield _log("WARNING", "ssrf_proxy.py:201", f"Request to URL {url} failed on attempt 1: {error}")
    yield _log("WARNING", "node.py:137", f"http request node http failed to run: {error}")
    yield _log(
        "ERROR", "error_handler.py:101", f"Node http failed with ABORT strategy: {error}", request=False
    )


def _log(level: str, where: str, message: str, *, request: bool = True, raised: str = "") -> dict[str, Any]:
    lines = []
    if raised:  # logger.exception: the traceback follows on lines of its own
        lines = [
            "Traceback (most recent call last):",
            '  File "/app/api/core/workflow/workflow_entry.py", line 120, in run',
            "    yield from generator",
            '  File "/app/api/core/workflow/graph_engine/graph_engine.py", line 270, in run',
            "    raise self._graph_execution.error",
            f"RuntimeError: {raised}",
        ]
    marker = {"event": LOG, "level": level, "where": where, "message": message, "traceback": lines}
    return {**marker, "request": request}
