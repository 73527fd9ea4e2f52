"""Kerberos (SASL GSSAPI) authentication of a Hadoop RPC connection, for our admin client.

A secure NameNode accepts a connection only after a SASL exchange that
follows the preamble (``hrpc``, version 9, service class, auth ``0xDF``)
and precedes the connection context.  Each message is one RPC frame: an
``RpcRequestHeaderProto`` with call id -33 and an ``RpcSaslProto``; the
server answers with an ``RpcResponseHeaderProto`` (call id -33) and an
``RpcSaslProto``, or with a FATAL header naming the exception.  The
exchange, as Hadoop's ``SaslRpcClient`` runs it::

    client NEGOTIATE                     server NEGOTIATE(auths: KERBEROS/GSSAPI
                                                  protocol "hdfs", serverId "nn-host", ...)
    client INITIATE(first GSS token, the auth it chose)
    server CHALLENGE(GSS token)  ->  client RESPONSE(GSS token) ... until the
                                         GSS context is established, then
    server CHALLENGE(wrapped: layers offered, max buffer)
    client RESPONSE(wrapped: layer chosen, no authorization id)
    server SUCCESS

The GSS service name is ``<protocol>@<serverId>`` from the server's
NEGOTIATE, i.e. the NameNode's own principal ``hdfs/nn-host``; mutual
authentication proves the server holds that key.  Only quality of
protection "authentication" (``hadoop.rpc.protection = authentication``,
Hadoop's default) is spoken: integrity or privacy would wrap every later
RPC, and a server that insists on them is refused with a clear error.

Why ctypes over ``libgssapi_krb5.so.2`` and not the ``gssapi`` package: PyPI
has no Linux wheel of it (it builds against the MIT headers), and the
library is the one hdfs-native already loads for the same job, installed by
Debian's ``libgssapi-krb5-2``.  Credentials come from the keytab through
MIT's ``gss_acquire_cred_from`` with ``client_keytab`` and an in-memory
ticket cache private to this process: no ``kinit``, nothing written to
``/tmp/krb5cc_*``, and MIT's library logs in again from the keytab by itself
when the ticket it holds has expired.  Nothing here logs or formats key
material; error messages name the principal and the keytab's path only.

:func:`authenticate` is the one entry point: :mod:`hdfs_client.admin_rpc`
calls it on a freshly connected socket instead of sending the SIMPLE
preamble, then sends its connection context with the user it returns.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import secrets
import socket
import threading
from typing import Any

from google.protobuf.message import DecodeError

from hdfs_client import errors
from hadoop_wire import rpc_framing as w
from hdfs_client import keytab as keytabs
from hdfs_csi_pb.hadoop import rpc_pb2

Sasl = rpc_pb2.RpcSaslProto

#: Java exception classes a NameNode sends when it refuses an authentication
_AUTH_FAILURES = ("javax.security.sasl.SaslException",
                  "org.apache.hadoop.security.AccessControlException",
                  "org.apache.hadoop.security.authorize.AuthorizationException")
_MAX_SASL_FRAME = 1 << 20

# -- GSS-API constants (RFC 2744) -----------------------------------------------------
GSS_C_MUTUAL_FLAG = 2
GSS_C_SEQUENCE_FLAG = 8
GSS_C_CONF_FLAG = 16
GSS_C_INTEG_FLAG = 32
GSS_C_INITIATE = 1
GSS_C_INDEFINITE = 0xFFFFFFFF
GSS_C_GSS_CODE = 1
GSS_C_MECH_CODE = 2
GSS_S_COMPLETE = 0
GSS_S_CONTINUE_NEEDED = 1
_GSS_ERROR_MASK = 0xFFFF0000          # calling and routine error fields
#: SASL GSSAPI security layers (RFC 4752 §3.3)
_LAYER_NONE = 1

OM_uint32 = ctypes.c_uint32


class _OID(ctypes.Structure):
    _fields_ = [("length", OM_uint32), ("elements", ctypes.c_void_p)]


class _Buffer(ctypes.Structure):
    _fields_ = [("length", ctypes.c_size_t), ("value", ctypes.c_void_p)]


class _OIDSet(ctypes.Structure):
    _fields_ = [("count", ctypes.c_size_t), ("elements", ctypes.POINTER(_OID))]


class _KeyValue(ctypes.Structure):
    _fields_ = [("key", ctypes.c_char_p), ("value", ctypes.c_char_p)]


class _KeyValueSet(ctypes.Structure):
    _fields_ = [("count", OM_uint32), ("elements", ctypes.POINTER(_KeyValue))]


_P = ctypes.c_void_p
_PP = ctypes.POINTER(ctypes.c_void_p)
_PU32 = ctypes.POINTER(OM_uint32)
_PBUF = ctypes.POINTER(_Buffer)


class _Lib:
    """The handful of GSS-API calls we need, bound once per process."""

    def __init__(self) -> None:
        name = "libgssapi_krb5.so.2"
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            found = ctypes.util.find_library("gssapi_krb5")
            if not found:
                raise errors.Unsupported(
                    "Kerberos needs MIT's GSS-API library (libgssapi_krb5.so.2): install "
                    "Debian's libgssapi-krb5-2 (scripts/fetch-kerberos.sh)") from None
            lib = ctypes.CDLL(found)
        self.lib = lib
        sig = {
            "gss_import_name": [_PU32, _PBUF, ctypes.POINTER(_OID), _PP],
            "gss_acquire_cred_from": [_PU32, _P, OM_uint32, ctypes.POINTER(_OIDSet), ctypes.c_int,
                                      ctypes.POINTER(_KeyValueSet), _PP, _P, _PU32],
            "gss_init_sec_context": [_PU32, _P, _PP, _P, ctypes.POINTER(_OID), OM_uint32,
                                     OM_uint32, _P, _PBUF, _P, _PBUF, _PU32, _PU32],
            "gss_wrap": [_PU32, _P, ctypes.c_int, OM_uint32, _PBUF, ctypes.POINTER(ctypes.c_int),
                         _PBUF],
            "gss_unwrap": [_PU32, _P, _PBUF, _PBUF, ctypes.POINTER(ctypes.c_int), _PU32],
            "gss_inquire_context": [_PU32, _P, _PP, _PP, _PU32, _P, _PU32,
                                    ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int)],
            "gss_display_name": [_PU32, _P, _PBUF, _P],
            "gss_display_status": [_PU32, OM_uint32, ctypes.c_int, ctypes.POINTER(_OID), _PU32,
                                   _PBUF],
            "gss_release_buffer": [_PU32, _PBUF],
            "gss_release_name": [_PU32, _PP],
            "gss_release_cred": [_PU32, _PP],
            "gss_delete_sec_context": [_PU32, _PP, _P],
        }
        for fn, argtypes in sig.items():
            try:
                f = getattr(lib, fn)
            except AttributeError:
                raise errors.Unsupported(f"the GSS-API library has no {fn} (MIT krb5 >= 1.11 "
                                         "is needed)") from None
            f.argtypes = argtypes
            f.restype = OM_uint32
        # exported OID variables (gss_OID, i.e. pointers)
        self.nt_hostbased = ctypes.POINTER(_OID).in_dll(lib, "GSS_C_NT_HOSTBASED_SERVICE")
        self.nt_principal = ctypes.POINTER(_OID).in_dll(lib, "GSS_KRB5_NT_PRINCIPAL_NAME")
        self.mech_krb5 = ctypes.POINTER(_OID).in_dll(lib, "gss_mech_krb5")

    def status_text(self, major: int, minor: int) -> str:
        parts = []
        for code, kind, mech in ((major, GSS_C_GSS_CODE, None), (minor, GSS_C_MECH_CODE,
                                                                 self.mech_krb5)):
            if not code:
                continue
            ctx = OM_uint32(0)
            for _ in range(8):
                m = OM_uint32(0)
                buf = _Buffer()
                ret = self.lib.gss_display_status(ctypes.byref(m), code, kind, mech,
                                                  ctypes.byref(ctx), ctypes.byref(buf))
                if ret != GSS_S_COMPLETE:
                    break
                text = _take(self, buf).decode(errors="replace").strip()
                if text and text not in parts:
                    parts.append(text)
                if not ctx.value:
                    break
        return "; ".join(parts) or f"GSS-API error {major:#x}/{minor:#x}"


_lib: _Lib | None = None
_lib_lock = threading.Lock()


def _gss() -> _Lib:
    global _lib
    with _lib_lock:
        if _lib is None:
            _lib = _Lib()
        return _lib


def _take(lib: _Lib, buf: _Buffer) -> bytes:
    """Copy a buffer the library allocated, then free it."""
    try:
        return ctypes.string_at(buf.value, buf.length) if buf.value and buf.length else b""
    finally:
        if buf.value:
            m = OM_uint32(0)
            lib.lib.gss_release_buffer(ctypes.byref(m), ctypes.byref(buf))


def _in_buffer(data: bytes) -> tuple[_Buffer, Any]:
    raw = ctypes.create_string_buffer(data, len(data))
    return _Buffer(len(data), ctypes.cast(raw, ctypes.c_void_p)), raw


class GssFailure(Exception):
    def __init__(self, what: str, major: int, minor: int, text: str):
        super().__init__(f"{what}: {text}")
        self.what, self.major, self.minor, self.text = what, major, minor, text

    @property
    def transient(self) -> bool:
        return self.minor in keytabs.TRANSIENT


def _check(lib: _Lib, what: str, major: int, minor: OM_uint32) -> int:
    if major & _GSS_ERROR_MASK:
        raise GssFailure(what, major, minor.value, lib.status_text(major, minor.value))
    return major


# -- credentials: one in-memory ticket cache per (principal, keytab) in this process ----------

_ccaches: dict[tuple[str, str], str] = {}
_ccache_lock = threading.Lock()


def _ccache_for(principal: str, keytab: str) -> str:
    with _ccache_lock:
        name = _ccaches.get((principal, keytab))
        if name is None:
            name = _ccaches[(principal, keytab)] = f"MEMORY:hdfs-csi-{secrets.token_hex(8)}"
        return name


class _Context:
    """A GSS initiator context for one connection (credentials from the keytab)."""

    def __init__(self, principal: str, keytab: str, service: str):
        self.lib = lib = _gss()
        self.principal, self.keytab = principal, keytab
        self._name = ctypes.c_void_p()
        self._target = ctypes.c_void_p()
        self._cred = ctypes.c_void_p()
        self._ctx = ctypes.c_void_p()
        self.established = False
        try:
            self._import(principal, lib.nt_principal, self._name)
            self._import(service, lib.nt_hostbased, self._target)
            store = (_KeyValue * 2)(
                _KeyValue(b"client_keytab", keytab.encode()),
                _KeyValue(b"ccache", _ccache_for(principal, keytab).encode()))
            kvs = _KeyValueSet(2, store)
            m = OM_uint32(0)
            major = lib.lib.gss_acquire_cred_from(ctypes.byref(m), self._name, GSS_C_INDEFINITE,
                                                  None, GSS_C_INITIATE, ctypes.byref(kvs),
                                                  ctypes.byref(self._cred), None, None)
            _check(lib, "acquiring credentials", major, m)
        except BaseException:
            self.close()
            raise

    def _import(self, text: str, name_type: Any, out: ctypes.c_void_p) -> None:
        buf, _keep = _in_buffer(text.encode())
        m = OM_uint32(0)
        major = self.lib.lib.gss_import_name(ctypes.byref(m), ctypes.byref(buf), name_type,
                                             ctypes.byref(out))
        _check(self.lib, f"importing the name {text!r}", major, m)

    def step(self, token: bytes | None) -> bytes:
        """One ``gss_init_sec_context`` round: the token to send (possibly empty)."""
        lib = self.lib
        m = OM_uint32(0)
        out = _Buffer()
        flags = OM_uint32(0)
        if token is None:
            inp_p = None
            keep = None
        else:
            inp, keep = _in_buffer(token)
            inp_p = ctypes.byref(inp)
        major = lib.lib.gss_init_sec_context(
            ctypes.byref(m), self._cred, ctypes.byref(self._ctx), self._target, lib.mech_krb5,
            GSS_C_MUTUAL_FLAG | GSS_C_SEQUENCE_FLAG | GSS_C_INTEG_FLAG | GSS_C_CONF_FLAG,
            0, None, inp_p, None, ctypes.byref(out), ctypes.byref(flags), None)
        del keep
        data = _take(lib, out)
        _check(lib, "establishing the security context", major, m)
        self.established = not (major & GSS_S_CONTINUE_NEEDED)
        return data

    def wrap(self, data: bytes) -> bytes:
        m = OM_uint32(0)
        inp, _keep = _in_buffer(data)
        out = _Buffer()
        major = self.lib.lib.gss_wrap(ctypes.byref(m), self._ctx, 0, 0, ctypes.byref(inp), None,
                                      ctypes.byref(out))
        data = _take(self.lib, out)
        _check(self.lib, "wrapping", major, m)
        return data

    def unwrap(self, data: bytes) -> bytes:
        m = OM_uint32(0)
        inp, _keep = _in_buffer(data)
        out = _Buffer()
        major = self.lib.lib.gss_unwrap(ctypes.byref(m), self._ctx, ctypes.byref(inp),
                                        ctypes.byref(out), None, None)
        data = _take(self.lib, out)
        _check(self.lib, "unwrapping", major, m)
        return data

    def initiator(self) -> str:
        """The authenticated client principal, as the server sees it (``user@REALM``)."""
        lib = self.lib
        m = OM_uint32(0)
        src = ctypes.c_void_p()
        major = lib.lib.gss_inquire_context(ctypes.byref(m), self._ctx, ctypes.byref(src), None,
                                            None, None, None, None, None)
        _check(lib, "inquiring the context", major, m)
        try:
            buf = _Buffer()
            major = lib.lib.gss_display_name(ctypes.byref(m), src, ctypes.byref(buf), None)
            text = _take(lib, buf).decode()
            _check(lib, "displaying the name", major, m)
            return text
        finally:
            lib.lib.gss_release_name(ctypes.byref(m), ctypes.byref(src))

    def close(self) -> None:
        lib = self.lib
        m = OM_uint32(0)
        if self._ctx:
            lib.lib.gss_delete_sec_context(ctypes.byref(m), ctypes.byref(self._ctx), None)
        if self._cred:
            lib.lib.gss_release_cred(ctypes.byref(m), ctypes.byref(self._cred))
        for name in (self._name, self._target):
            if name:
                lib.lib.gss_release_name(ctypes.byref(m), ctypes.byref(name))


# -- the SASL exchange ----------------------------------------------------------------------

def _send(sock: socket.socket, msg: Any, prefix: bytes = b"") -> None:
    header = rpc_pb2.RpcRequestHeaderProto(
        rpcKind=rpc_pb2.RPC_PROTOCOL_BUFFER,
        rpcOp=rpc_pb2.RpcRequestHeaderProto.RPC_FINAL_PACKET,
        callId=w.CALL_ID_SASL, clientId=b"", retryCount=-1)
    sock.sendall(prefix + w.build_frame(header.SerializeToString(), msg.SerializeToString()))


def _receive(sock: socket.socket, who: str) -> Any:
    frame = w.recv_frame(sock, _MAX_SASL_FRAME)
    hdr_bytes, pos = w.split_delimited(frame, 0)
    header = rpc_pb2.RpcResponseHeaderProto()
    try:
        header.ParseFromString(bytes(hdr_bytes))
    except DecodeError as exc:
        raise w.WireError(f"bad SASL response header: {exc}") from None
    if header.status != rpc_pb2.RpcResponseHeaderProto.SUCCESS:
        cls = header.exceptionClassName or "java.io.IOException"
        text = (header.errorMsg or cls).strip().splitlines()[0]
        if cls in _AUTH_FAILURES:
            raise errors.PermissionDenied(f"the NameNode refused the Kerberos login of {who}: "
                                          f"{text}", remote_class=cls)
        raise errors.from_remote(cls, f"during Kerberos authentication: {text}")
    if header.callId != w.CALL_ID_SASL & 0xFFFFFFFF and header.callId != w.CALL_ID_SASL:
        raise w.WireError(f"SASL answer with call id {header.callId}")
    body, _ = w.split_delimited(frame, pos)
    msg = Sasl()
    try:
        msg.ParseFromString(bytes(body))
    except DecodeError as exc:
        raise w.WireError(f"bad RpcSaslProto: {exc}") from None
    return msg


def _choose(auths: Any, who: str) -> Any:
    for auth in auths:
        if auth.method == "KERBEROS" and auth.mechanism == "GSSAPI":
            return auth
    offered = ", ".join(f"{a.method}/{a.mechanism}" for a in auths) or "nothing"
    if any(a.method == "SIMPLE" for a in auths) or not auths:
        raise errors.Unsupported(f"the NameNode does not use Kerberos (it offers {offered}); "
                                 f"drop the Kerberos identity {who}, or set "
                                 f"ipc.client.fallback-to-simple-auth-allowed=true")
    raise errors.Unsupported(f"the NameNode offers no Kerberos login (only {offered})")


def _check_server(auth: Any, expected: str | None, host: str) -> None:
    """The principal the server claims must be the one configured for the NameNode."""
    if not expected:
        return
    primary, _, rest = expected.partition("/")
    instance = rest.partition("@")[0]
    if not rest:                                   # "hdfs@REALM": no instance part
        primary, instance = expected.partition("@")[0], ""
    instance = instance.replace("_HOST", host)
    if auth.protocol != primary or (instance and auth.serverId.lower() != instance.lower()):
        raise errors.PermissionDenied(
            f"the NameNode at {host} claims to be {auth.protocol}/{auth.serverId}, not the "
            f"configured dfs.namenode.kerberos.principal {expected}")


def authenticate(sock: socket.socket, *, principal: str, keytab: str,
                 server_principal: str | None = None,
                 allow_simple_fallback: bool = False) -> str | None:
    """Send the SASL preamble on ``sock`` and log in as ``principal`` from ``keytab``.

    Returns the authenticated user (``user@REALM``), which is what the
    connection context's ``effectiveUser`` must say (anything else asks the
    NameNode for impersonation).  ``server_principal`` (Hadoop's
    ``dfs.namenode.kerberos.principal``, ``_HOST`` allowed) is checked
    against the principal the server announces.

    A NameNode without security answers the SASL preamble by switching the
    connection to SIMPLE.  As in Hadoop's own client
    (``ipc.client.fallback-to-simple-auth-allowed``, default false) that is
    refused unless ``allow_simple_fallback``; allowed, the result is None and
    the caller goes on as a SIMPLE client.

    Raises :class:`hdfs_client.errors.PermissionDenied` when the KDC or the
    NameNode refuses the identity (wrong or stale keytab, unknown
    principal), :class:`hdfs_client.errors.HdfsIOError` when the KDC cannot be
    reached, :class:`hdfs_client.errors.Unsupported` when the server wants
    something else (no Kerberos, or integrity/privacy protection).
    """
    who = f"{principal} (keytab {keytab})"
    host = sock.getpeername()[0]
    _send(sock, Sasl(state=Sasl.NEGOTIATE), prefix=w.preamble(w.AUTH_SASL))
    msg = _receive(sock, who)
    if msg.state == Sasl.SUCCESS:
        if allow_simple_fallback:
            return None
        raise errors.Unsupported(f"the NameNode at {host} does not use Kerberos (it switched the "
                                 f"connection to SIMPLE); drop the Kerberos identity {who}, or "
                                 f"set ipc.client.fallback-to-simple-auth-allowed=true")
    if msg.state != Sasl.NEGOTIATE:
        raise w.WireError(f"SASL: expected NEGOTIATE, got state {msg.state}")
    if allow_simple_fallback and any(a.method == "SIMPLE" for a in msg.auths) and \
            not any(a.method == "KERBEROS" for a in msg.auths):
        # A NameNode with delegation tokens but no Kerberos (MiniDFSCluster) offers
        # TOKEN and SIMPLE; Hadoop's client then answers INITIATE naming SIMPLE
        # and, without waiting for an answer, goes on as a SIMPLE client.
        simple = next(a for a in msg.auths if a.method == "SIMPLE")
        _send(sock, Sasl(state=Sasl.INITIATE, auths=[Sasl.SaslAuth(
            method=simple.method, mechanism=simple.mechanism)]))
        return None
    auth = _choose(msg.auths, who)
    _check_server(auth, server_principal, host)
    chosen = Sasl.SaslAuth(method=auth.method, mechanism=auth.mechanism,
                           protocol=auth.protocol, serverId=auth.serverId)
    try:
        ctx = _Context(principal, keytab, f"{auth.protocol}@{auth.serverId}")
    except GssFailure as exc:
        raise _login_error(exc, principal, keytab) from None
    try:
        try:
            token = ctx.step(bytes(auth.challenge) if auth.HasField("challenge") else None)
        except GssFailure as exc:
            raise _login_error(exc, principal, keytab) from None
        _send(sock, Sasl(state=Sasl.INITIATE, token=token, auths=[chosen]))
        while True:
            msg = _receive(sock, who)
            if msg.state == Sasl.CHALLENGE:
                try:
                    reply = ctx.step(bytes(msg.token)) if not ctx.established else \
                        _security_layer(ctx, bytes(msg.token))
                except GssFailure as exc:
                    raise _login_error(exc, principal, keytab) from None
                _send(sock, Sasl(state=Sasl.RESPONSE, token=reply))
            elif msg.state == Sasl.SUCCESS:
                if not ctx.established and msg.HasField("token"):
                    try:
                        ctx.step(bytes(msg.token))
                    except GssFailure as exc:
                        raise _login_error(exc, principal, keytab) from None
                if not ctx.established:
                    raise errors.PermissionDenied(f"the NameNode ended the Kerberos login of "
                                                  f"{who} before it was complete")
                return ctx.initiator()
            else:
                raise w.WireError(f"SASL: unexpected state {msg.state}")
    finally:
        ctx.close()


def _security_layer(ctx: _Context, token: bytes) -> bytes:
    """RFC 4752's last step: take "no security layer", which is QOP authentication."""
    offer = ctx.unwrap(token)
    if len(offer) != 4:
        raise w.WireError(f"SASL GSSAPI: a {len(offer)}-byte security layer offer")
    if not offer[0] & _LAYER_NONE:
        raise errors.Unsupported(
            "the NameNode requires RPC integrity or privacy (hadoop.rpc.protection = integrity "
            "or privacy); this client speaks authentication only")
    return ctx.wrap(bytes([_LAYER_NONE, 0, 0, 0]))


def _login_error(exc: GssFailure, principal: str, keytab: str) -> errors.HdfsError:
    if exc.transient:
        return errors.HdfsIOError(f"Kerberos login as {principal} failed, the KDC cannot be "
                                  f"reached: {exc.text}")
    return errors.PermissionDenied(keytabs.describe_failure(principal, keytab, exc.minor,
                                                            keytabs.mechanism_text(exc.text)))

