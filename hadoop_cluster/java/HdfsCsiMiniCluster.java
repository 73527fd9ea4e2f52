/*
 * Apache Hadoop's own HDFS for hdfs-csi's tests, benchmarks and demo: a
 * MiniDFSCluster (real NameNode(s) and DataNodes in this one JVM) driven over
 * stdin/stdout by hadoop_cluster/cluster.py.
 *
 * Why a launcher of ours instead of Hadoop's `mapred minicluster` CLI: we need
 * HA, erasure-coding policies, DataNode stop/restart on the same port and
 * storage, and NameNode failover on request, with machine-readable answers.
 *
 * Protocol (one JSON object per line; the cluster's own logging goes to
 * stderr, and anything Hadoop prints on System.out is sent there too, so
 * stdout carries nothing but this protocol):
 *
 *   -> {"event":"ready", "uri":..., "namenodes":[...], "datanodes":[...],
 *       "client_conf":{...}, ...}          once the cluster accepts clients
 *   <- one command per stdin line:
 *        status | stop-datanode I [dead] | start-datanode I
 *        | failover | stop-namenode I | start-namenode I | restart
 *        | set-ec PATH POLICY | shutdown
 *   -> {"ok":true, ...} or {"ok":false, "error":"..."} for each command
 *
 * EOF on stdin shuts the cluster down, so a test process that dies (even by
 * SIGKILL) never leaves a JVM behind.  The data stays in --base-dir; with
 * --no-format the next start serves it again.  DataNode indexes are ours and stable:
 * MiniDFSCluster renumbers its list when a DataNode stops, we do not.
 *
 * Arguments: --base-dir DIR --datanodes N --block-size BYTES
 *   [--replication R] [--ha] [--nameservice NS] [--ec-policy NAME]...
 *   [--conf KEY=VALUE]... [--conf-file SITE.xml]... [--no-format]
 * --conf and --conf-file (Hadoop configuration XML; for values that must not
 * appear on a command line) are applied last, over everything this launcher
 * sets, so callers (e.g. a secure-mode test) can override any key.
 */

import java.io.BufferedReader;
import java.io.File;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.hdfs.DistributedFileSystem;
import org.apache.hadoop.hdfs.DFSTestUtil;
import org.apache.hadoop.hdfs.HdfsConfiguration;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.hadoop.hdfs.MiniDFSNNTopology;
import org.apache.hadoop.hdfs.protocol.ErasureCodingPolicy;
import org.apache.hadoop.io.nativeio.NativeIO;
import org.apache.hadoop.hdfs.protocol.ErasureCodingPolicyInfo;
import org.apache.hadoop.hdfs.server.blockmanagement.BlockManagerTestUtil;
import org.apache.hadoop.hdfs.server.datanode.DataNode;
import org.apache.hadoop.hdfs.server.namenode.FSNamesystem;
import org.apache.hadoop.hdfs.server.namenode.NameNode;
import org.apache.hadoop.hdfs.server.namenode.NameNodeAdapter;
import org.apache.hadoop.security.UserGroupInformation;

public final class HdfsCsiMiniCluster {
  private static final String HOST = "127.0.0.1";
  private static final long DATANODE_START_TIMEOUT_MS = 60_000;

  private final Configuration conf = new HdfsConfiguration();
  private final PrintStream out;
  private final AtomicBoolean down = new AtomicBoolean();
  private MiniDFSCluster cluster;
  private String nameservice;
  private boolean ha;
  private int blockSize;
  private int replication;
  private final List<String> ecPolicies = new ArrayList<>();
  // Our stable DataNode slots: the transfer address (kept across restarts)
  // and, while stopped, what MiniDFSCluster needs to bring it back.
  private final List<String> dnXfer = new ArrayList<>();
  private final List<String> dnUuid = new ArrayList<>();
  private final List<MiniDFSCluster.DataNodeProperties> dnStopped = new ArrayList<>();
  private final List<Boolean> nnStopped = new ArrayList<>();
  private DistributedFileSystem adminFs;
  private List<String> enabledEc;  // last answer of the NameNode

  private HdfsCsiMiniCluster(PrintStream out) {
    this.out = out;
  }

  public static void main(String[] args) throws Exception {
    // Claim the real stdout for the protocol before anything can print on it.
    PrintStream protocol = new PrintStream(new FileOutputStream(FileDescriptor.out), true,
        StandardCharsets.UTF_8);
    System.setOut(System.err);
    HdfsCsiMiniCluster launcher = new HdfsCsiMiniCluster(protocol);
    Runtime.getRuntime().addShutdownHook(new Thread(launcher::shutdown, "hdfs-csi-shutdown"));
    long t0 = System.nanoTime();
    try {
      launcher.start(args);
    } catch (Throwable t) {
      protocol.println(new Json().put("event", "failed").put("error", describe(t)).end());
      System.err.println("hdfs-csi launcher: start failed");
      t.printStackTrace();
      launcher.shutdown();
      System.exit(1);
    }
    long ms = (System.nanoTime() - t0) / 1_000_000;
    protocol.println(launcher.state("event", "ready").put("startup_ms", ms).end());
    launcher.serve();
    launcher.shutdown();
    // halt, not exit: MiniDFSCluster.shutdown() registers its base directory
    // for deletion at JVM exit, and the data must stay for a restart on the
    // same directory (HadoopCluster(keep_data=True)), as minidfs keeps it.
    protocol.flush();
    System.err.flush();
    Runtime.getRuntime().halt(0);
  }

  // ------------------------------------------------------------------ start-up

  private void start(String[] args) throws Exception {
    String baseDir = null;
    int datanodes = 1;
    blockSize = 128 << 20;
    Integer repl = null;
    boolean format = true;
    nameservice = "hdfs-csi";
    Map<String, String> overrides = new LinkedHashMap<>();
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      switch (a) {
        case "--base-dir": baseDir = args[++i]; break;
        case "--datanodes": datanodes = Integer.parseInt(args[++i]); break;
        case "--block-size": blockSize = Integer.parseInt(args[++i]); break;
        case "--replication": repl = Integer.parseInt(args[++i]); break;
        case "--ha": ha = true; break;
        case "--nameservice": nameservice = args[++i]; break;
        case "--ec-policy": ecPolicies.add(args[++i]); break;
        case "--no-format": format = false; break;
        case "--conf": {
          String kv = args[++i];
          int eq = kv.indexOf('=');
          if (eq <= 0) throw new IllegalArgumentException("--conf wants KEY=VALUE, got " + kv);
          overrides.put(kv.substring(0, eq), kv.substring(eq + 1));
          break;
        }
        case "--conf-file": {
          // Hadoop configuration XML; applied like --conf (after our settings).
          Configuration file = new Configuration(false);
          file.addResource(new Path(new File(args[++i]).toURI()));
          for (Map.Entry<String, String> e : file) overrides.put(e.getKey(), e.getValue());
          break;
        }
        default: throw new IllegalArgumentException("unknown argument " + a);
      }
    }
    if (baseDir == null) throw new IllegalArgumentException("--base-dir is required");
    replication = repl != null ? repl : Math.min(3, datanodes);

    conf.setLong("dfs.blocksize", blockSize);
    conf.setInt("dfs.replication", replication);
    // HDFS refuses blocks under 1 MiB by default; a test cluster asked for a
    // smaller default block size must accept it (the lower limit is reported).
    if (blockSize < conf.getLong("dfs.namenode.fs-limits.min-block-size", 1 << 20)) {
      conf.setLong("dfs.namenode.fs-limits.min-block-size", blockSize);
    }
    conf.set("hadoop.tmp.dir", new File(baseDir, "tmp").getAbsolutePath());
    // Everything on loopback, every port ephemeral (MiniDFSCluster does this
    // for RPC and DataNode addresses; these are the web endpoints).
    conf.set("dfs.namenode.http-address", HOST + ":0");
    conf.set("dfs.namenode.https-address", HOST + ":0");
    conf.set("dfs.datanode.http.address", HOST + ":0");
    conf.set("dfs.datanode.https.address", HOST + ":0");
    conf.set("dfs.namenode.backup.address", HOST + ":0");
    conf.set("dfs.namenode.backup.http-address", HOST + ":0");
    conf.set("dfs.namenode.secondary.http-address", HOST + ":0");
    conf.set("dfs.journalnode.rpc-address", HOST + ":0");
    conf.set("dfs.journalnode.http-address", HOST + ":0");
    // Small thread pools for a small shared machine.
    conf.setInt("dfs.namenode.handler.count", 8);
    conf.setInt("dfs.namenode.service.handler.count", 4);
    conf.setInt("dfs.datanode.handler.count", 4);
    conf.setBoolean("dfs.namenode.metrics.logger.period.seconds.enabled", false);
    conf.setInt("dfs.namenode.metrics.logger.period.seconds", 0);
    conf.setInt("dfs.datanode.metrics.logger.period.seconds", 0);
    // hdfs-native (0.14) does not retry addBlock on NotReplicatedYetException
    // the way the Java client does, and gives complete() ~3 s: on a loaded
    // 2-core machine a DataNode's incremental block report can come later,
    // and a multi-block write then fails (seen once in a CI run). Busy
    // production clusters set this too (HDFS-8999): one COMMITTED block,
    // not yet reported, does not hold up the next block or the close.
    conf.setInt("dfs.namenode.file.close.num-committed-allowed", 1);
    if (ha) {
      // Clients (and our admin FileSystem) need the failover proxy provider.
      conf.set("dfs.client.failover.proxy.provider." + nameservice,
          "org.apache.hadoop.hdfs.server.namenode.ha.ConfiguredFailoverProxyProvider");
      // A standby tails the shared edits quickly so failover finds it current.
      conf.setInt("dfs.ha.tail-edits.period", 1);
      conf.setInt("dfs.ha.log-roll.period", 10);
    }
    // Centralized Cache Management, as Hadoop's own tests run it without
    // libhadoop: the DataNodes really map cached blocks into memory and report
    // them; only mlock(2) is a no-op (NoMlockCacheManipulator), since the
    // native library is not on Maven Central. 64 MiB per DataNode; the NameNode
    // rescans directives every half second (default 30 s) so a test sees a
    // directive take effect within a heartbeat or two.
    NativeIO.POSIX.setCacheManipulator(new NativeIO.POSIX.NoMlockCacheManipulator());
    conf.setLong("dfs.datanode.max.locked.memory", 64L << 20);
    conf.setLong("dfs.namenode.path.based.cache.refresh.interval.ms", 500);
    conf.setLong("dfs.cachereport.intervalMsec", 500);
    for (Map.Entry<String, String> e : overrides.entrySet()) conf.set(e.getKey(), e.getValue());

    MiniDFSCluster.Builder b = new MiniDFSCluster.Builder(conf, new File(baseDir))
        .numDataNodes(datanodes)
        .format(format)
        .checkDataNodeAddrConfig(false);
    if (ha) {
      b.nnTopology(new MiniDFSNNTopology().addNameservice(
          new MiniDFSNNTopology.NSConf(nameservice)
              .addNN(new MiniDFSNNTopology.NNConf("nn1"))
              .addNN(new MiniDFSNNTopology.NNConf("nn2"))));
    }
    cluster = b.build();
    if (ha) {
      cluster.transitionToActive(0);
    }
    cluster.waitActive();
    for (int i = 0; i < cluster.getNumNameNodes(); i++) nnStopped.add(false);
    for (DataNode dn : cluster.getDataNodes()) {
      dnXfer.add(addr(dn.getXferAddress()));
      dnUuid.add(dn.getDatanodeUuid());
      dnStopped.add(null);
    }
    for (String p : ecPolicies) admin().enableErasureCodingPolicy(p);
  }

  /** A DistributedFileSystem that follows the active NameNode (HA-aware). */
  private DistributedFileSystem admin() throws Exception {
    if (adminFs == null) {
      Configuration c = new Configuration(cluster.getConfiguration(0));
      for (Map.Entry<String, String> e : clientConf().entrySet()) c.set(e.getKey(), e.getValue());
      c.setBoolean("fs.hdfs.impl.disable.cache", true);
      // Fail fast: our commands run while tests stop NameNodes on purpose.
      c.setInt("dfs.client.failover.max.attempts", 4);
      c.setInt("dfs.client.failover.sleep.base.millis", 100);
      c.setInt("dfs.client.failover.sleep.max.millis", 1000);
      c.setInt("ipc.client.connect.max.retries", 1);
      c.setInt("ipc.client.connect.max.retries.on.timeouts", 1);
      adminFs = (DistributedFileSystem) FileSystem.get(new URI(uri()), c);
    }
    return adminFs;
  }

  // ------------------------------------------------------------------ control

  private void serve() throws Exception {
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    String line;
    while ((line = in.readLine()) != null) {
      line = line.trim();
      if (line.isEmpty()) continue;
      String[] w = line.split("\\s+");
      Json reply;
      try {
        if (w[0].equals("shutdown")) {
          out.println(new Json().put("ok", true).put("command", "shutdown").end());
          return;
        }
        reply = handle(w).put("ok", true).put("command", w[0]);
      } catch (Throwable t) {
        System.err.println("hdfs-csi launcher: command failed: " + line);
        t.printStackTrace();
        reply = new Json().put("ok", false).put("command", w[0]).put("error", describe(t));
      }
      out.println(reply.end());
    }
  }

  private Json handle(String[] w) throws Exception {
    switch (w[0]) {
      case "status":
        return state(null, null);
      case "stop-datanode": {
        int i = index(w, dnXfer.size(), "DataNode");
        if (dnStopped.get(i) == null) {
          MiniDFSCluster.DataNodeProperties p = cluster.stopDataNode(dnXfer.get(i));
          if (p == null) throw new IllegalStateException("DataNode " + dnXfer.get(i) + " not found");
          dnStopped.set(i, p);
          // "dead": tell the NameNode at once instead of after the heartbeat
          // expiry (10.5 minutes by default), as a crashed DataNode would be
          // seen much later.
          if (w.length > 2 && w[2].equals("dead")) {
            for (int n = 0; n < cluster.getNumNameNodes(); n++) {
              if (nnStopped.get(n)) continue;
              FSNamesystem ns = cluster.getNamesystem(n);
              DFSTestUtil.setDatanodeDead(
                  NameNodeAdapter.getDatanode(ns, p.getDatanode().getDatanodeId()));
              BlockManagerTestUtil.checkHeartbeat(ns.getBlockManager());
            }
          }
        }
        return state(null, null).put("index", i);
      }
      case "start-datanode": {
        int i = index(w, dnXfer.size(), "DataNode");
        MiniDFSCluster.DataNodeProperties p = dnStopped.get(i);
        if (p != null) {
          if (!cluster.restartDataNode(p, true)) throw new IllegalStateException("restart failed");
          dnStopped.set(i, null);
          DataNode dn = findDataNode(i);
          cluster.waitDatanodeFullyStarted(dn, (int) DATANODE_START_TIMEOUT_MS);
          cluster.triggerHeartbeats();
        }
        return state(null, null).put("index", i);
      }
      case "failover": {
        if (!ha) throw new IllegalStateException("failover needs an HA cluster (--ha)");
        int active = activeIndex();
        int next = -1;
        for (int n = 0; n < cluster.getNumNameNodes(); n++) {
          if (n != active && !nnStopped.get(n)) { next = n; break; }
        }
        if (next < 0) throw new IllegalStateException("no running standby NameNode");
        long t0 = System.nanoTime();
        if (active >= 0) cluster.transitionToStandby(active);
        cluster.transitionToActive(next);
        long ms = (System.nanoTime() - t0) / 1_000_000;
        return state(null, null).put("from", active).put("to", next).put("failover_ms", ms);
      }
      case "stop-namenode": {
        int n = index(w, cluster.getNumNameNodes(), "NameNode");
        if (!nnStopped.get(n)) {
          cluster.shutdownNameNode(n);
          nnStopped.set(n, true);
        }
        return state(null, null).put("index", n);
      }
      case "start-namenode": {
        int n = index(w, cluster.getNumNameNodes(), "NameNode");
        if (nnStopped.get(n)) {
          cluster.restartNameNode(n, false);
          nnStopped.set(n, false);
          if (!ha) cluster.waitActive(n);
        }
        return state(null, null).put("index", n);
      }
      case "restart": {
        // Every NameNode and DataNode down and up again on the same ports and
        // storage (what MiniDFS.restart() does for minidfs).
        for (int i = 0; i < dnStopped.size(); i++) {
          if (dnStopped.get(i) == null) dnStopped.set(i, cluster.stopDataNode(dnXfer.get(i)));
        }
        if (adminFs != null) {
          adminFs.close();
          adminFs = null;
        }
        for (int n = 0; n < cluster.getNumNameNodes(); n++) {
          if (!nnStopped.get(n)) cluster.shutdownNameNode(n);
          cluster.restartNameNode(n, false);
          nnStopped.set(n, false);
        }
        if (ha) cluster.transitionToActive(0);
        for (int i = 0; i < dnStopped.size(); i++) {
          if (!cluster.restartDataNode(dnStopped.get(i), true)) {
            throw new IllegalStateException("DataNode " + i + " did not restart");
          }
          dnStopped.set(i, null);
        }
        cluster.waitActive();
        return state(null, null);
      }
      case "set-ec": {
        if (w.length != 3) throw new IllegalArgumentException("usage: set-ec PATH POLICY");
        Path path = new Path(w[1]);
        DistributedFileSystem fs = admin();
        fs.enableErasureCodingPolicy(w[2]);
        fs.mkdirs(path);
        fs.setErasureCodingPolicy(path, w[2]);
        ErasureCodingPolicy p = fs.getErasureCodingPolicy(path);
        return new Json().put("path", w[1]).put("policy", p == null ? null : p.getName());
      }
      default:
        throw new IllegalArgumentException("unknown command " + w[0]);
    }
  }

  private static int index(String[] w, int size, String what) {
    if (w.length < 2) throw new IllegalArgumentException(w[0] + " needs an index");
    int i = Integer.parseInt(w[1]);
    if (i < 0 || i >= size) throw new IllegalArgumentException(what + " index out of range: " + i);
    return i;
  }

  private DataNode findDataNode(int slot) {
    for (DataNode dn : cluster.getDataNodes()) {
      if (addr(dn.getXferAddress()).equals(dnXfer.get(slot))) return dn;
    }
    return null;
  }

  private int activeIndex() {
    for (int n = 0; n < cluster.getNumNameNodes(); n++) {
      if (!nnStopped.get(n) && cluster.getNameNode(n) != null
          && cluster.getNameNode(n).isActiveState()) return n;
    }
    return -1;
  }

  // ------------------------------------------------------------------ reports

  /** The non-HA URI, kept while the NameNode is down (it comes back on the same port). */
  private String lastUri;

  private String uri() {
    if (ha) return "hdfs://" + nameservice;
    NameNode nn = nnStopped.get(0) ? null : cluster.getNameNode(0);
    if (nn != null) lastUri = "hdfs://" + addr(nn.getNameNodeAddress());
    return lastUri;
  }

  private String nnRpc(int n) {
    // Ports survive a NameNode restart; read them from the config once they are known.
    MiniDFSCluster.NameNodeInfo info = cluster.getNameNodeInfos()[n];
    if (info.nameNode != null) return addr(info.nameNode.getNameNodeAddress());
    String key = ha ? "dfs.namenode.rpc-address." + nameservice + "." + info.getNamenodeId()
        : "dfs.namenode.rpc-address";
    return cluster.getConfiguration(n).get(key);
  }

  /** The Hadoop keys a client needs for this cluster (fs.defaultFS plus HA). */
  private Map<String, String> clientConf() {
    Map<String, String> c = new LinkedHashMap<>();
    c.put("fs.defaultFS", uri());
    if (ha) {
      List<String> ids = new ArrayList<>();
      for (MiniDFSCluster.NameNodeInfo info : cluster.getNameNodeInfos()) ids.add(info.getNamenodeId());
      c.put("dfs.nameservices", nameservice);
      c.put("dfs.ha.namenodes." + nameservice, String.join(",", ids));
      for (int n = 0; n < ids.size(); n++) {
        c.put("dfs.namenode.rpc-address." + nameservice + "." + ids.get(n), nnRpc(n));
      }
      c.put("dfs.client.failover.proxy.provider." + nameservice,
          "org.apache.hadoop.hdfs.server.namenode.ha.ConfiguredFailoverProxyProvider");
    }
    return c;
  }

  private Json state(String key, String value) throws Exception {
    Json j = new Json();
    if (key != null) j.put(key, value);
    j.put("uri", uri());
    j.put("nameservice", ha ? nameservice : null);
    j.put("ha", ha);
    List<Json> nns = new ArrayList<>();
    MiniDFSCluster.NameNodeInfo[] infos = cluster.getNameNodeInfos();
    for (int n = 0; n < infos.length; n++) {
      NameNode nn = nnStopped.get(n) ? null : infos[n].nameNode;
      Json x = new Json().put("index", n).put("id", infos[n].getNamenodeId())
          .put("rpc", nnRpc(n)).put("running", nn != null)
          .put("state", nn == null ? "stopped" : nn.getState().toLowerCase());
      if (nn != null && nn.getHttpAddress() != null) x.put("http", addr(nn.getHttpAddress()));
      nns.add(x);
    }
    j.putList("namenodes", nns);
    j.put("active", activeIndex());
    List<Json> dns = new ArrayList<>();
    for (int i = 0; i < dnXfer.size(); i++) {
      boolean up = dnStopped.get(i) == null;
      Json x = new Json().put("index", i).put("xfer", dnXfer.get(i)).put("uuid", dnUuid.get(i))
          .put("running", up);
      DataNode dn = up ? findDataNode(i) : null;
      if (dn != null) x.put("ipc", HOST + ":" + dn.getIpcPort()).put("http", HOST + ":" + dn.getInfoPort());
      dns.add(x);
    }
    j.putList("datanodes", dns);
    j.putMap("client_conf", clientConf());
    j.put("block_size", blockSize);
    j.put("replication", replication);
    j.put("min_block_size", conf.getLong("dfs.namenode.fs-limits.min-block-size", 1 << 20));
    j.put("user", UserGroupInformation.getCurrentUser().getShortUserName());
    j.put("supergroup", conf.get("dfs.permissions.superusergroup", "supergroup"));
    int live = ha ? Math.max(activeIndex(), 0) : 0;
    if (!nnStopped.get(live)) {
      j.put("cluster_id", cluster.getNamesystem(live).getClusterId());
      j.put("block_pool_id", cluster.getNamesystem(live).getBlockPoolId());
    }
    // Asked of the NameNode only while one is active: with none (a test stopped
    // it) the client would sit out its whole failover back-off.
    if (activeIndex() >= 0) {
      try {
        List<String> enabled = new ArrayList<>();
        for (ErasureCodingPolicyInfo p : admin().getAllErasureCodingPolicies()) {
          if (p.isEnabled()) enabled.add(p.getPolicy().getName());
        }
        enabledEc = enabled;
      } catch (Exception e) {
        System.err.println("hdfs-csi launcher: listing EC policies failed: " + describe(e));
      }
    }
    if (enabledEc != null) j.putStrings("ec_policies", enabledEc);
    j.put("pid", ProcessHandle.current().pid());
    return j;
  }

  private static String addr(InetSocketAddress a) {
    return a.getAddress().getHostAddress() + ":" + a.getPort();
  }

  private static String describe(Throwable t) {
    StringWriter sw = new StringWriter();
    Throwable c = t;
    String sep = "";
    while (c != null) {
      sw.append(sep).append(c.getClass().getName()).append(": ").append(String.valueOf(c.getMessage()));
      sep = " <- ";
      c = c.getCause() == c ? null : c.getCause();
    }
    return sw.toString();
  }

  private void shutdown() {
    if (!down.compareAndSet(false, true)) return;
    try {
      if (adminFs != null) adminFs.close();
    } catch (Exception ignored) {
      // shutting down anyway
    }
    if (cluster != null) {
      try {
        cluster.shutdown();
      } catch (Throwable t) {
        t.printStackTrace();
      }
    }
  }

  /** Just enough JSON for our flat replies (no JSON library on the shaded classpath). */
  static final class Json {
    private final StringBuilder sb = new StringBuilder("{");
    private boolean first = true;

    private Json key(String k) {
      if (!first) sb.append(',');
      first = false;
      quote(sb, k);
      sb.append(':');
      return this;
    }

    Json put(String k, Object v) {
      key(k);
      if (v == null) sb.append("null");
      else if (v instanceof Number || v instanceof Boolean) sb.append(v);
      else quote(sb, v.toString());
      return this;
    }

    Json putList(String k, List<Json> items) {
      key(k);
      sb.append('[');
      for (int i = 0; i < items.size(); i++) sb.append(i > 0 ? "," : "").append(items.get(i).end());
      sb.append(']');
      return this;
    }

    Json putStrings(String k, List<String> items) {
      key(k);
      sb.append('[');
      for (int i = 0; i < items.size(); i++) {
        if (i > 0) sb.append(',');
        quote(sb, items.get(i));
      }
      sb.append(']');
      return this;
    }

    Json putMap(String k, Map<String, String> m) {
      Json inner = new Json();
      for (Map.Entry<String, String> e : m.entrySet()) inner.put(e.getKey(), e.getValue());
      key(k);
      sb.append(inner.end());
      return this;
    }

    String end() {
      return sb.toString() + "}";
    }

    private static void quote(StringBuilder sb, String s) {
      sb.append('"');
      for (int i = 0; i < s.length(); i++) {
        char c = s.charAt(i);
        switch (c) {
          case '"': sb.append("\\\""); break;
          case '\\': sb.append("\\\\"); break;
          case '\n': sb.append("\\n"); break;
          case '\r': sb.append("\\r"); break;
          case '\t': sb.append("\\t"); break;
          default:
            if (c < 0x20) sb.append(String.format("\\u%04x", (int) c));
            else sb.append(c);
        }
      }
      sb.append('"');
    }
  }
}
