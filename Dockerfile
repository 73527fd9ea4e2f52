# One image for every hdfs-csi mode: `hdfs-csi driver --mode controller|node`,
# the FUSE mounts the node plugin starts (`hdfs-csi mount`) and the in-cluster
# minidfs (`hdfs-csi minidfs`).  The benchmark's libraries (pyarrow, numpy,
# matplotlib, tqdm) are an extra the driver does not need; they go into a
# separate image for deploy/examples/bench-job.yaml:
#
#   docker build -t ghcr.io/hdfs-csi/hdfs-csi:0.1.0 .
#   docker build --build-arg EXTRAS=bench -t ghcr.io/hdfs-csi/hdfs-csi-bench:0.1.0 .
#
# Two stages: the builder turns the source tree and its dependencies into
# wheels and installs them into a virtual environment; the final stage copies
# only that environment onto a clean base, so compilers and pip caches never
# reach the image that runs privileged on every node.

# Exact patch release: rebuilding next month gives the same Python.
ARG PYTHON_IMAGE=python:3.11.15-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
# Optional extras of the package to install ("" = the lean driver image; "bench").
ARG EXTRAS=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
# Every dependency ships binary wheels for CPython 3.11 on amd64 and arm64;
# the compiler is here only for a platform where one does not.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN pip wheel --prefer-binary --wheel-dir /wheels ".${EXTRAS:+[$EXTRAS]}" \
 && python -m venv /opt/hdfs-csi \
 && /opt/hdfs-csi/bin/pip install --no-index --find-links /wheels "hdfs-csi${EXTRAS:+[$EXTRAS]}" \
 && /opt/hdfs-csi/bin/pip uninstall -y -q pip \
 && /opt/hdfs-csi/bin/hdfs-csi --version

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="hdfs-csi" \
      org.opencontainers.image.description="Kubernetes CSI driver that mounts HDFS datasets through FUSE" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="0.1.0"
# fuse3: libfuse3 (loaded by mfusepy) and fusermount3.  mount: the node
# plugin bind-mounts FUSE mounts into pod volume directories.  libgssapi-krb5-2:
# Kerberos for the HDFS client (loaded only when a volume uses a keytab).
# tini: PID 1 that reaps the daemonized FUSE processes once they exit.
RUN apt-get update \
 && apt-get install -y --no-install-recommends fuse3 mount libgssapi-krb5-2 tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 hdfs-csi \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin hdfs-csi \
 && mkdir -p /etc/hadoop/conf
COPY --from=builder /opt/hdfs-csi /opt/hdfs-csi
ENV PATH=/opt/hdfs-csi/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HADOOP_CONF_DIR=/etc/hadoop/conf \
    MPLCONFIGDIR=/tmp/matplotlib
# Non-root by default (controller, minidfs, bench).  The node plugin needs
# root and says so in its pod spec (runAsUser: 0, privileged).
USER 10001:10001
ENTRYPOINT ["/usr/bin/tini", "--", "hdfs-csi"]
CMD ["--help"]
