"""One run of a Dify app: its ids, the answer so far, and the payloads it emits, shaped as Dify 1.12.1 sends
them (`core/app/entities/task_entities.py`; field sets and values checked against a running 1.12.1).
The chunk envelope (`event, conversation_id, message_id, created_at`) is added by the caller."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from watchdog.sim.dify_apps import DifyApp, usage


def _new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Run:
    app: DifyApp
    query: str
    user: str
    conversation_id: str | None
    inputs: dict[str, Any]
    turn: int = 1  # sys.dialogue_count
    first_token: float = 0.0  # seconds to the first event, reported in a chatflow's usage
    task_id: str = field(default_factory=_new_id)
    message_id: str = field(default_factory=_new_id)
    workflow_run_id: str = field(default_factory=_new_id)
    workflow_id: str = field(default_factory=_new_id)
    app_id: str = field(default_factory=_new_id)
    started: float = field(default_factory=time.time)
    started_mono: float = field(default_factory=time.monotonic)  # durations: the wall clock may step
    trace_id: str = field(default_factory=lambda: secrets.token_hex(16))  # one per request, in log lines
    answer: str = ""
    steps: dict[str, str] = field(default_factory=dict)  # node id -> its execution id, in start order
    failed_nodes: int = 0

    def elapsed(self) -> float:
        """Seconds since the run started, on the monotonic clock."""
        return time.monotonic() - self.started_mono

    def envelope(self) -> dict[str, Any]:
        """What every chunk starts with (completion apps carry no conversation)."""
        head: dict[str, Any] = {"conversation_id": self.conversation_id, "message_id": self.message_id}
        if self.app.mode == "completion":
            head.pop("conversation_id")
        return {**head, "created_at": int(self.started)}

    # ---- messages ------------------------------------------------------------------------------

    def message(self, chunk: str, selector: list[str] | None = None) -> dict[str, Any]:
        self.answer += chunk
        event = "agent_message" if self.app.mode == "agent-chat" else "message"
        payload: dict[str, Any] = {
            "event": event,
            "task_id": self.task_id,
            "id": self.message_id,
            "answer": chunk,
        }
        if event == "message":
            payload["from_variable_selector"] = selector
        return payload

    def message_end(self) -> dict[str, Any]:
        model = self.app.mode != "advanced-chat"
        metadata: dict[str, Any] = {
            "annotation_reply": None,
            "retriever_resources": [],
            "usage": usage(model=model, first_token=self.first_token),
        }
        return {
            "event": "message_end",
            "task_id": self.task_id,
            "id": self.message_id,
            "metadata": metadata,
            "files": [],
        }

    def error(self, code: str, message: str, status: int = 400) -> dict[str, Any]:
        """`_error_to_stream_response`: no entity fields, so no `task_id`; `message` comes last."""
        return {"event": "error", "code": code, "status": status, "message": message}

    def agent_thought(self, thought: str) -> dict[str, Any]:
        return {
            "event": "agent_thought",
            "task_id": self.task_id,
            "id": self.message_id,
            "position": 1,
            "thought": thought,
            "observation": "",
            "tool": "",
            "tool_labels": {},
            "tool_input": "",
            "message_files": [],
        }

    # ---- workflow and nodes (chatflows) --------------------------------------------------------

    def system(self, *, with_conversation: bool) -> dict[str, Any]:
        sys_vars: dict[str, Any] = {"sys.files": [], "sys.user_id": self.user, "sys.app_id": self.app_id}
        sys_vars |= {"sys.workflow_id": self.workflow_id, "sys.workflow_run_id": self.workflow_run_id}
        sys_vars["sys.query"] = self.query
        if with_conversation:
            sys_vars["sys.conversation_id"] = self.conversation_id
        return {**self.inputs, **sys_vars, "sys.dialogue_count": self.turn}

    def workflow_started(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.workflow_run_id, "workflow_id": self.workflow_id}
        data |= {"inputs": self.system(with_conversation=False), "created_at": int(self.started)}
        return self._workflow("workflow_started", data)

    def workflow_finished(self, status: str, error: str | None = None) -> dict[str, Any]:
        now = time.time()
        data: dict[str, Any] = {
            "id": self.workflow_run_id,
            "workflow_id": self.workflow_id,
            "status": status,
            "outputs": {"answer": self.answer, "files": []},
            "error": error,
            "elapsed_time": round(self.elapsed(), 6),
            "total_tokens": 0,
            "total_steps": len(self.steps),
            "created_by": {"id": self.app_id, "user": self.user},
            "created_at": int(self.started),
            "finished_at": int(now),
            "exceptions_count": self.failed_nodes,
            "files": [],
        }
        return self._workflow("workflow_finished", data)

    def node_started(self, node_id: str, node_type: str, title: str) -> dict[str, Any]:
        self.steps[node_id] = _new_id()
        data = self._node(node_id, node_type, title)
        data |= {"inputs": None, "inputs_truncated": False, "created_at": int(self.started), "extras": {}}
        data |= {"iteration_id": None, "loop_id": None, "agent_strategy": None}
        return self._workflow("node_started", data)

    def node_finished(
        self,
        node_id: str,
        node_type: str,
        title: str,
        *,
        outputs: dict[str, Any] | None = None,
        error: str | None = None,
        inputs: dict[str, Any] | None = None,
        process_data: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Every node sits at index 1 and has no predecessor in 1.12.1's events, as observed."""
        self.failed_nodes += error is not None
        data = self._node(node_id, node_type, title)
        data |= {"inputs": inputs or {}, "inputs_truncated": False, "process_data": process_data or {}}
        data |= {"process_data_truncated": False, "outputs": outputs or {}, "outputs_truncated": False}
        data |= {"status": "failed" if error else "succeeded", "error": error}
        data |= {"elapsed_time": round(self.elapsed(), 6), "execution_metadata": None}
        data |= {"created_at": int(self.started), "finished_at": int(time.time()), "files": []}
        data |= {"iteration_id": None, "loop_id": None}
        return self._workflow("node_finished", data)

    def stopped(self) -> Iterator[dict[str, Any]]:
        """`_handle_stop_event`: a chatflow finishes `stopped`, then a normal `message_end`."""
        if self.app.mode == "advanced-chat" and self.steps:
            yield self.workflow_finished("stopped", "Stopped by user.")
        yield self.message_end()

    def _node(self, node_id: str, node_type: str, title: str) -> dict[str, Any]:
        execution = self.steps.get(node_id) or _new_id()
        head = {"id": execution, "node_id": node_id, "node_type": node_type, "title": title, "index": 1}
        return {**head, "predecessor_node_id": None}

    def _workflow(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "event": event,
            "task_id": self.task_id,
            "workflow_run_id": self.workflow_run_id,
            "data": data,
        }
