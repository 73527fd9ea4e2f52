"""Hadoop RPC v9 framing, the one wire codec both sides of the project speak.

:mod:`hdfs_client` (our small admin and SASL clients) and :mod:`minidfs` (the
server) both import it and neither imports the other, so the client and the
server cannot drift apart.  The protobuf messages themselves are generated
into :mod:`hdfs_csi_pb.hadoop`.
"""
