#!/usr/bin/env bash
# Install what the Kerberos test tier needs from Debian: a real MIT KDC and the
# client tools.  Idempotent and quiet when everything is already there.
#
#   krb5-kdc         krb5kdc and kdb5_util: the tests run a throwaway KDC of
#                    their own (hadoop_cluster/kdc.py) with a realm in a
#                    temporary directory; no daemon of the package is used,
#                    configured or started
#   krb5-admin-server  only for kadmin.local (addprinc, ktadd), which Debian
#                    ships there and not in krb5-kdc; kadmind is never run
#   krb5-user        kinit / klist / kvno, to check keytabs and tickets by hand
#   libgssapi-krb5-2 the GSS-API library both hdfs-native and our admin RPC
#                    client (hdfs_client/rpc_sasl.py, through ctypes) load
#   iproute2         ss -K, with which the ticket-lifetime test aborts NameNode
#                    connections (usually installed already)
#
# Nothing global is configured:
# the package's debconf questions get empty answers, /etc/krb5.conf is never
# edited (the tests point KRB5_CONFIG / KRB5_KDC_PROFILE at their own files).
set -euo pipefail

have_all() {
  command -v krb5kdc >/dev/null 2>&1 &&
    command -v kdb5_util >/dev/null 2>&1 &&
    command -v kadmin.local >/dev/null 2>&1 &&
    command -v kinit >/dev/null 2>&1 &&
    command -v ss >/dev/null 2>&1 &&
    ldconfig -p 2>/dev/null | grep -q 'libgssapi_krb5\.so\.2'
}

# Debian puts the KDC tools in /usr/sbin, which a non-login root shell may lack.
export PATH="$PATH:/usr/sbin:/sbin"
if have_all; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
echo "fetch-kerberos: installing krb5-kdc, krb5-admin-server, krb5-user, libgssapi-krb5-2, iproute2 (Debian)" >&2
# krb5-config asks for a default realm and KDC hosts: answer nothing, so the
# package writes no realm of its own into /etc/krb5.conf.
printf '%s\n' \
  "krb5-config krb5-config/default_realm string " \
  "krb5-config krb5-config/kerberos_servers string " \
  "krb5-config krb5-config/admin_server string " \
  "krb5-config krb5-config/add_servers_realm string " \
  "krb5-config krb5-config/dns_for_default boolean false" \
  "krb5-kdc krb5-kdc/debconf boolean false" \
  | $SUDO debconf-set-selections 2>/dev/null || true
if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
    krb5-kdc krb5-admin-server krb5-user libgssapi-krb5-2 iproute2 >/dev/null 2>&1; then
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
    krb5-kdc krb5-admin-server krb5-user libgssapi-krb5-2 iproute2 >/dev/null
fi
if ! have_all; then
  echo "fetch-kerberos: krb5kdc/kdb5_util/kadmin.local/kinit/ss or libgssapi_krb5.so.2" \
       "still missing after apt-get install" >&2
  exit 1
fi
