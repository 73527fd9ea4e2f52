"""Log every CSI call and its outcome, with secrets removed; keep Probe quiet.

Drivers that logged requests verbatim have leaked tokens (CVE-2023-2878,
CVE-2024-3744).  :func:`redact` therefore walks the message *descriptor*:
any field marked ``[(csi_secret) = true]`` in csi.proto, any field named
``secrets`` (in case a message lacks the option) and ``mount_flags`` (which
the spec says may be sensitive) is replaced by a marker before anything is
formatted.  Probe is called every few seconds by the liveness sidecar; it is
logged only when it fails.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Callable

import grpc
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from hdfs_csi_pb import csi_pb2

log = logging.getLogger("csi_driver.calls")

REDACTED = "***stripped***"
SENSITIVE_NAMES = frozenset({"secrets", "mount_flags"})
QUIET_METHODS = frozenset({"Probe"})


def is_sensitive(field: FieldDescriptor) -> bool:
    if field.name in SENSITIVE_NAMES:
        return True
    opts = field.GetOptions()
    return bool(opts.HasExtension(csi_pb2.csi_secret) and opts.Extensions[csi_pb2.csi_secret])


def _is_map(field: FieldDescriptor) -> bool:
    return (field.type == FieldDescriptor.TYPE_MESSAGE
            and field.message_type.GetOptions().map_entry)


def redact(message: Message) -> dict[str, Any]:
    """A dict view of ``message`` safe to log."""
    out: dict[str, Any] = {}
    for field, value in message.ListFields():
        if is_sensitive(field):
            out[field.name] = REDACTED
        elif _is_map(field):
            out[field.name] = dict(value)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if field.is_repeated:
                out[field.name] = [redact(v) for v in value]
            else:
                out[field.name] = redact(value)
        elif field.type == FieldDescriptor.TYPE_ENUM:
            enum = field.enum_type
            names = [enum.values_by_number[v].name if v in enum.values_by_number else v
                     for v in (value if field.is_repeated else [value])]
            out[field.name] = names if field.is_repeated else names[0]
        elif field.is_repeated:
            out[field.name] = list(value)
        else:
            out[field.name] = value
    return out


def _fmt(message: Any) -> str:
    if not isinstance(message, Message):
        return "-"
    try:
        return json.dumps(redact(message), sort_keys=True, default=str, ensure_ascii=True)
    except Exception as exc:  # noqa: BLE001 - logging must never fail the call
        return f"<{type(message).__name__}: not formatted ({type(exc).__name__})>"


class LoggingInterceptor(grpc.ServerInterceptor):
    def intercept_service(self, continuation: Callable[[Any], Any],
                          handler_call_details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = handler_call_details.method
        name = method.rsplit("/", 1)[-1]
        quiet = name in QUIET_METHODS
        inner = handler.unary_unary

        def logged(request: Any, context: grpc.ServicerContext) -> Any:
            start = time.monotonic()
            if not quiet:
                log.info("%s request %s", name, _fmt(request))
            try:
                response = inner(request, context)
            except Exception:
                code = context.code() or grpc.StatusCode.UNKNOWN
                details = context.details() or ""
                if isinstance(details, bytes):
                    details = details.decode("utf-8", "replace")
                level = logging.WARNING if code is not grpc.StatusCode.INTERNAL else logging.ERROR
                log.log(level, "%s failed in %.3f s: %s %s", name, time.monotonic() - start,
                        getattr(code, "name", code), details)
                raise
            if not quiet:
                log.info("%s ok in %.3f s: %s", name, time.monotonic() - start, _fmt(response))
            return response

        return grpc.unary_unary_rpc_method_handler(
            logged,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
