"""Whether a NameNode address can be reached at all, said in words, within seconds.

Every HDFS call of the mount is bounded by ``--io-timeout`` (30 s by default),
so a mistyped host or a NameNode that is down used to surface as "stat of mount
root did not finish within 30.0s" half a minute later.  Before the first call,
:func:`unreachable` resolves the host and opens one TCP connection with a short
timeout, so the operator reads "does not resolve" or "refused" at once.  An HA
nameservice (``dfs.ha.namenodes.<ns>`` in the configuration) is left to the
client, which knows its NameNodes; so is a ``viewfs://`` mount table.
"""

from __future__ import annotations

import socket

from hdfs_client.uri import DEFAULT_PORT, parse_hdfs_uri


def unreachable(uri: str, config: dict[str, str] | None = None,
                timeout: float = 5.0) -> str | None:
    """None when ``uri``'s NameNode accepts a TCP connection (or it is not a plain
    host:port), else one sentence saying what failed."""
    loc = parse_hdfs_uri(uri)
    if loc.scheme != "hdfs" or f"dfs.ha.namenodes.{loc.authority}" in (config or {}):
        return None
    if loc.authority.startswith("["):            # [v6]:port
        host, _, rest = loc.authority[1:].partition("]")
        port_text = rest.lstrip(":")
    else:
        host, sep, port_text = loc.authority.rpartition(":")
        if not sep:
            host, port_text = loc.authority, ""
    port = int(port_text) if port_text.isdigit() else DEFAULT_PORT
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return f"the NameNode host {host!r} does not resolve ({exc.strerror})"
    last: OSError | None = None
    for family, kind, proto, _, addr in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.settimeout(timeout)
            try:
                sock.connect(addr)
                return None
            except OSError as exc:
                last = exc
    if isinstance(last, ConnectionRefusedError):
        return f"the NameNode at {host}:{port} refused the connection (is it running there?)"
    if isinstance(last, (socket.timeout, TimeoutError)):
        return f"the NameNode at {host}:{port} did not answer within {timeout:.0f}s"
    return f"the NameNode at {host}:{port} cannot be reached: {last}"
