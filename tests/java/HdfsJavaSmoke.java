import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.security.PrivilegedExceptionAction;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.BlockLocation;
import org.apache.hadoop.fs.ContentSummary;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileAlreadyExistsException;
import org.apache.hadoop.fs.FileChecksum;
import org.apache.hadoop.fs.FsShell;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.FsServerDefaults;
import org.apache.hadoop.fs.FsStatus;
import org.apache.hadoop.fs.LocatedFileStatus;
import org.apache.hadoop.fs.Options;
import org.apache.hadoop.fs.ParentNotDirectoryException;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RemoteIterator;
import org.apache.hadoop.fs.Trash;
import org.apache.hadoop.fs.permission.AclStatus;
import org.apache.hadoop.fs.permission.FsPermission;
import org.apache.hadoop.hdfs.DistributedFileSystem;
import org.apache.hadoop.hdfs.client.HdfsDataOutputStream;
import org.apache.hadoop.hdfs.protocol.HdfsConstants;
import org.apache.hadoop.security.AccessControlException;
import org.apache.hadoop.security.UserGroupInformation;
import org.apache.hadoop.util.ToolRunner;

/**
 * Smoke test of Hadoop's own Java client (DistributedFileSystem, Hadoop 3.5.0)
 * against an HDFS endpoint, written to find where minidfs differs from HDFS.
 *
 * <p>Why a standalone program rather than JUnit: the tier must run with nothing
 * but a JDK and the client jars; pytest drives it and maps each printed
 * {@code PASS name} / {@code FAIL name: reason} line to one test.  Stack traces
 * go to stderr so failures can be reported with the exact client frame.
 *
 * <p>Usage:
 * <pre>
 *   HdfsJavaSmoke smoke URI [--datanodes N] [--block-size BYTES] [--only a,b] [--timeout SEC]
 *   HdfsJavaSmoke put URI LOCAL REMOTE   (multi-block write with hflush/hsync)
 *   HdfsJavaSmoke get URI REMOTE LOCAL
 *   HdfsJavaSmoke append URI LOCAL REMOTE
 *   HdfsJavaSmoke hold URI LOCAL REMOTE  (hflush half, print FLUSHED, wait for stdin, finish)
 * </pre>
 * Check names are declared with {@code check("name", ...)} on one line each;
 * the pytest tier parses them from this file to parametrize its tests.
 */
public final class HdfsJavaSmoke {

  @FunctionalInterface
  interface Body {
    void run() throws Exception;
  }

  /** A check failed in a way that is not an exception from the client. */
  static final class CheckFailed extends Exception {
    private static final long serialVersionUID = 1L;

    CheckFailed(String msg) {
      super(msg);
    }

    CheckFailed(String msg, Throwable cause) {
      super(msg, cause);
    }
  }

  private final Map<String, Body> checks = new LinkedHashMap<>();
  private final URI uri;
  private final int datanodes;
  private final long blockSize;
  private final Configuration conf;
  private final String user;
  private FileSystem fs;
  private DistributedFileSystem dfs;
  private Path base;

  // Shared multi-block file written by write_multiblock_hflush_hsync and read by later checks.
  private Path big;
  private byte[] bigData;

  private HdfsJavaSmoke(URI uri, int datanodes, long blockSize) throws IOException {
    this.uri = uri;
    this.datanodes = datanodes;
    this.blockSize = blockSize;
    this.conf = clientConf(datanodes, blockSize);
    this.user = UserGroupInformation.getCurrentUser().getShortUserName();
  }

  static Configuration clientConf(int datanodes, long blockSize) {
    Configuration c = new Configuration();
    c.set("dfs.blocksize", Long.toString(blockSize));
    c.set("dfs.replication", Integer.toString(datanodes));
    c.setBoolean("dfs.client.use.datanode.hostname", false);
    // Small client-side listing hint; the NameNode decides the real page size.
    c.setInt("dfs.ls.limit", 100);
    // Fail fast instead of retrying for minutes when the server is gone.
    c.setInt("ipc.client.connect.max.retries", 2);
    c.setInt("ipc.client.connect.max.retries.on.timeouts", 2);
    c.setBoolean("fs.hdfs.impl.disable.cache", true);
    return c;
  }

  // ---------------------------------------------------------------- helpers

  static byte[] data(long seed, int len) {
    byte[] b = new byte[len];
    new Random(seed).nextBytes(b);
    return b;
  }

  static void expect(boolean cond, String what) throws CheckFailed {
    if (!cond) {
      throw new CheckFailed(what);
    }
  }

  static void expectEq(Object expected, Object actual, String what) throws CheckFailed {
    if (expected == null ? actual != null : !expected.equals(actual)) {
      throw new CheckFailed(what + ": expected <" + expected + "> but was <" + actual + ">");
    }
  }

  static void expectBytes(byte[] expected, int eoff, byte[] actual, int aoff, int len, String what)
      throws CheckFailed {
    for (int i = 0; i < len; i++) {
      if (expected[eoff + i] != actual[aoff + i]) {
        throw new CheckFailed(what + ": first byte mismatch at +" + i + " (offset " + (eoff + i)
            + "): expected " + expected[eoff + i] + " got " + actual[aoff + i]);
      }
    }
  }

  /** Run body and require an exception of one of the given types (directly or as cause/remote). */
  @SafeVarargs
  static Throwable expectThrows(Body body, String what, Class<? extends Throwable>... types)
      throws Exception {
    try {
      body.run();
    } catch (Throwable t) {
      for (Class<? extends Throwable> k : types) {
        if (k.isInstance(t)) {
          return t;
        }
      }
      throw new CheckFailed(what + ": expected one of " + names(types) + " but got " + t, t);
    }
    throw new CheckFailed(what + ": expected one of " + names(types) + " but nothing was thrown");
  }

  /** Like expectThrows but matches by class name in the exception text (RemoteException etc.). */
  static Throwable expectThrowsNamed(Body body, String what, String... classNames) throws Exception {
    try {
      body.run();
    } catch (Throwable t) {
      String s = t.getClass().getName() + ": " + t.getMessage();
      if (t instanceof org.apache.hadoop.ipc.RemoteException) {
        s += " " + ((org.apache.hadoop.ipc.RemoteException) t).getClassName();
      }
      for (String n : classNames) {
        if (s.contains(n)) {
          return t;
        }
      }
      throw new CheckFailed(what + ": expected " + Arrays.toString(classNames) + " but got " + t, t);
    }
    throw new CheckFailed(what + ": expected " + Arrays.toString(classNames) + " but nothing thrown");
  }

  @SafeVarargs
  static String names(Class<? extends Throwable>... types) {
    List<String> n = new ArrayList<>();
    for (Class<?> k : types) {
      n.add(k.getSimpleName());
    }
    return n.toString();
  }

  void write(Path p, byte[] content, boolean overwrite) throws IOException {
    try (FSDataOutputStream out = fs.create(p, overwrite)) {
      out.write(content);
    }
  }

  static byte[] readAll(FileSystem f, Path p) throws IOException {
    try (FSDataInputStream in = f.open(p)) {
      return readStream(in);
    }
  }

  static byte[] readStream(InputStream in) throws IOException {
    ByteArrayOutputStream bos = new ByteArrayOutputStream();
    byte[] buf = new byte[100_000]; // deliberately not a power of two
    int n;
    while ((n = in.read(buf)) > 0) {
      bos.write(buf, 0, n);
    }
    return bos.toByteArray();
  }

  Path p(String rel) {
    return new Path(base, rel);
  }

  FileSystem newClient() throws IOException {
    return FileSystem.newInstance(uri, conf);
  }

  FileSystem clientAs(String name) throws Exception {
    UserGroupInformation ugi = UserGroupInformation.createRemoteUser(name);
    return ugi.doAs((PrivilegedExceptionAction<FileSystem>) () -> FileSystem.newInstance(uri, conf));
  }

  void requireBig() throws CheckFailed {
    expect(bigData != null, "depends on write_multiblock_hflush_hsync, which failed");
  }

  void check(String name, Body body) {
    checks.put(name, body);
  }

  // ---------------------------------------------------------------- checks

  private void declare() {
    check("connect_root_status", () -> {
      FileStatus st = fs.getFileStatus(new Path("/"));
      expect(st.isDirectory(), "/ is a directory");
      expectEq("/", st.getPath().toUri().getPath(), "root path");
      expect(fs.mkdirs(base), "mkdirs(base) returned false");
      boolean listed = false;
      for (FileStatus c : fs.listStatus(new Path("/"))) {
        listed |= c.getPath().toUri().getPath().equals(base.toUri().getPath());
      }
      expect(listed, "base dir listed under /");
    });
    check("mkdirs", () -> {
      Path d = p("mk/a/b/c");
      expect(fs.mkdirs(d), "mkdirs returned false");
      FileStatus st = fs.getFileStatus(d);
      expect(st.isDirectory(), "not a directory");
      expectEq(user, st.getOwner(), "owner");
      // Default umask 022 applied by the Java client to 0777.
      expectEq(FsPermission.createImmutable((short) 0755), st.getPermission(), "permission");
      expect(fs.getFileStatus(p("mk/a")).isDirectory(), "parent created");
    });
    check("mkdirs_existing", () -> {
      Path d = p("mk2");
      expect(fs.mkdirs(d), "first mkdirs");
      expect(fs.mkdirs(d), "mkdirs on an existing dir must return true");
    });
    check("mkdirs_with_permission", () -> {
      Path d = p("mk3");
      expect(fs.mkdirs(d, new FsPermission((short) 0750)), "mkdirs");
      expectEq(FsPermission.createImmutable((short) 0750), fs.getFileStatus(d).getPermission(),
          "permission");
    });
    check("mkdirs_over_file", () -> {
      Path f = p("mkfile");
      write(f, new byte[3], true);
      expectThrows(() -> fs.mkdirs(f), "mkdirs over a file", FileAlreadyExistsException.class,
          ParentNotDirectoryException.class);
      expectThrows(() -> fs.mkdirs(new Path(f, "sub")), "mkdirs under a file",
          ParentNotDirectoryException.class, FileAlreadyExistsException.class);
    });
    check("create_parent_is_file", () -> {
      Path f = p("pfile");
      write(f, new byte[1], true);
      expectThrows(() -> fs.create(new Path(f, "child")).close(), "create under a file",
          ParentNotDirectoryException.class, FileAlreadyExistsException.class);
    });
    check("create_nonrecursive_missing_parent", () -> {
      Path f = p("no-such-parent/child");
      expectThrows(() -> fs.createNonRecursive(f, false, 4096, (short) datanodes, blockSize, null)
          .close(), "createNonRecursive with a missing parent", FileNotFoundException.class);
    });
    check("write_multiblock_hflush_hsync", () -> {
      Path f = p("big.bin");
      int len = (int) (2 * blockSize + blockSize / 2 + 777);
      byte[] d = data(42, len);
      int[] steps = {1, 511, 1000, 65536, 100_000, 300_001};
      try (FSDataOutputStream out = fs.create(f, true)) {
        int off = 0;
        int i = 0;
        boolean flushed = false;
        boolean synced = false;
        boolean flushed2 = false;
        while (off < len) {
          int n = Math.min(steps[i++ % steps.length], len - off);
          out.write(d, off, n);
          off += n;
          if (!flushed && off > 300_000) {
            out.hflush();
            flushed = true;
          } else if (!synced && off > blockSize + 200_000) {
            out.hsync();
            synced = true;
          } else if (!flushed2 && off > 2 * blockSize + 100_000) {
            out.hflush();
            flushed2 = true;
          }
        }
        expect(flushed && synced && flushed2, "all flush points reached");
      }
      FileStatus st = fs.getFileStatus(f);
      expectEq((long) len, st.getLen(), "length after close");
      big = f;
      bigData = d;
    });
    check("file_status", () -> {
      requireBig();
      FileStatus st = fs.getFileStatus(big);
      expect(st.isFile(), "isFile");
      expectEq((long) bigData.length, st.getLen(), "length");
      expectEq(blockSize, st.getBlockSize(), "block size");
      expectEq((short) datanodes, st.getReplication(), "replication");
      expectEq(user, st.getOwner(), "owner");
      expect(st.getGroup() != null && !st.getGroup().isEmpty(), "group set");
      expectEq(FsPermission.createImmutable((short) 0644), st.getPermission(), "permission");
      long now = System.currentTimeMillis();
      expect(Math.abs(now - st.getModificationTime()) < 600_000,
          "mtime within 10 min of now: " + st.getModificationTime());
      expect(st.getAccessTime() > 0, "atime set");
      expectEq(big.toUri().getPath(), st.getPath().toUri().getPath(), "path");
    });
    check("read_full", () -> {
      requireBig();
      try (FSDataInputStream in = fs.open(big)) {
        byte[] got = readStream(in);
        expectEq(bigData.length, got.length, "bytes read");
        expectBytes(bigData, 0, got, 0, got.length, "content");
        expectEq(-1, in.read(), "read at EOF");
      }
    });
    check("read_positional", () -> {
      requireBig();
      Random r = new Random(7);
      try (FSDataInputStream in = fs.open(big)) {
        int len = bigData.length;
        // Fixed awkward spots: block boundaries, chunk boundaries, the tail.
        long[][] spots = {{0, 1}, {511, 2}, {blockSize - 3, 10}, {blockSize, 513},
            {2 * blockSize - 1, 70_000}, {len - 1, 1}, {len - 1000, 1000}, {100, blockSize * 2}};
        for (long[] s : spots) {
          byte[] buf = new byte[(int) s[1]];
          in.readFully(s[0], buf);
          expectBytes(bigData, (int) s[0], buf, 0, buf.length, "pread@" + s[0] + "+" + s[1]);
        }
        for (int i = 0; i < 40; i++) {
          int n = 1 + r.nextInt(200_000);
          int pos = r.nextInt(len - n);
          byte[] buf = new byte[n];
          in.readFully(pos, buf);
          expectBytes(bigData, pos, buf, 0, n, "pread@" + pos + "+" + n);
        }
        expectThrows(() -> in.readFully(len - 10, new byte[20]), "pread past EOF",
            EOFException.class);
      }
    });
    check("seek_read", () -> {
      requireBig();
      Random r = new Random(8);
      try (FSDataInputStream in = fs.open(big)) {
        int len = bigData.length;
        long[] positions = {blockSize + 5, 3, len - 7, 2 * blockSize, 0};
        List<Long> all = new ArrayList<>();
        for (long pos : positions) {
          all.add(pos);
        }
        for (int i = 0; i < 20; i++) {
          all.add((long) r.nextInt(len));
        }
        for (long pos : all) {
          in.seek(pos);
          expectEq(pos, in.getPos(), "getPos after seek");
          int n = (int) Math.min(5000, len - pos);
          byte[] buf = new byte[n];
          in.readFully(buf);
          expectBytes(bigData, (int) pos, buf, 0, n, "seek@" + pos);
        }
        expectThrows(() -> in.seek(len + 10), "seek past EOF", EOFException.class);
      }
    });
    check("read_bytebuffer", () -> {
      requireBig();
      try (FSDataInputStream in = fs.open(big)) {
        in.seek(blockSize - 100);
        ByteBuffer bb = ByteBuffer.allocate(300);
        while (bb.hasRemaining()) {
          if (in.read(bb) < 0) {
            throw new CheckFailed("unexpected EOF");
          }
        }
        expectBytes(bigData, (int) blockSize - 100, bb.array(), 0, 300, "bytebuffer read");
      }
    });
    check("block_locations", () -> {
      requireBig();
      FileStatus st = fs.getFileStatus(big);
      BlockLocation[] locs = fs.getFileBlockLocations(st, 0, st.getLen());
      long nblocks = (st.getLen() + blockSize - 1) / blockSize;
      expectEq((int) nblocks, locs.length, "number of blocks");
      for (int i = 0; i < locs.length; i++) {
        expectEq(i * blockSize, locs[i].getOffset(), "offset of block " + i);
        expect(locs[i].getHosts().length >= 1, "block " + i + " has a host");
        expect(locs[i].getNames()[0].startsWith("127.0.0.1:"),
            "block " + i + " name " + Arrays.toString(locs[i].getNames()));
      }
      expectEq(st.getLen() - 2 * blockSize, locs[2].getLength(), "last block length");
      // A sub-range returns only overlapping blocks.
      BlockLocation[] mid = fs.getFileBlockLocations(st, blockSize + 1, 10);
      expectEq(1, mid.length, "blocks overlapping [bs+1, bs+11)");
      expectEq(blockSize, mid[0].getOffset(), "offset of the overlapping block");
    });
    check("block_replicas_match_replication", () -> {
      requireBig();
      FileStatus st = fs.getFileStatus(big);
      for (BlockLocation bl : fs.getFileBlockLocations(st, 0, st.getLen())) {
        expectEq((int) st.getReplication(), bl.getHosts().length,
            "hosts of the block at " + bl.getOffset() + " vs the file's replication");
        expectEq(bl.getHosts().length, new HashSet<>(Arrays.asList(bl.getNames())).size(),
            "distinct datanodes");
      }
    });
    check("create_no_overwrite", () -> {
      Path f = p("exists.txt");
      write(f, "one".getBytes(), true);
      expectThrows(() -> fs.create(f, false).close(), "create(overwrite=false) on existing",
          FileAlreadyExistsException.class);
      expectEq(3L, fs.getFileStatus(f).getLen(), "original untouched");
    });
    check("create_overwrite", () -> {
      Path f = p("over.txt");
      write(f, data(1, 5000), true);
      byte[] d2 = data(2, 1234);
      write(f, d2, true);
      byte[] got = readAll(fs, f);
      expectEq(d2.length, got.length, "length after overwrite");
      expectBytes(d2, 0, got, 0, got.length, "content after overwrite");
    });
    check("empty_file", () -> {
      Path f = p("empty");
      fs.create(f, true).close();
      FileStatus st = fs.getFileStatus(f);
      expect(st.isFile(), "isFile");
      expectEq(0L, st.getLen(), "length");
      try (FSDataInputStream in = fs.open(f)) {
        expectEq(-1, in.read(), "read of empty file");
      }
      expectEq(0, fs.getFileBlockLocations(st, 0, 10).length, "no blocks");
      Path g = p("empty-flushed");
      try (FSDataOutputStream out = fs.create(g, true)) {
        out.hflush();
        out.hsync();
        ((HdfsDataOutputStream) out).hsync(EnumSet.of(HdfsDataOutputStream.SyncFlag.UPDATE_LENGTH));
      }
      expectEq(0L, fs.getFileStatus(g).getLen(), "length of a flushed empty file");
    });
    check("unicode_names", () -> {
      Path d = p("üñí 文件");
      expect(fs.mkdirs(d), "mkdirs");
      Path f = new Path(d, "naïve name with spaces + % & #.txt");
      write(f, "x".getBytes(), true);
      FileStatus[] ls = fs.listStatus(d);
      expectEq(1, ls.length, "entries");
      expectEq(f.getName(), ls[0].getPath().getName(), "listed name");
      expectEq(1L, fs.getFileStatus(f).getLen(), "length");
    });
    check("not_found", () -> {
      Path m = p("missing/really");
      expectThrows(() -> fs.getFileStatus(m), "getFileStatus", FileNotFoundException.class);
      expectThrows(() -> fs.open(m).close(), "open", FileNotFoundException.class);
      expectThrows(() -> fs.listStatus(m), "listStatus", FileNotFoundException.class);
      expectThrows(() -> fs.getContentSummary(m), "getContentSummary",
          FileNotFoundException.class);
      expectThrows(() -> fs.append(m).close(), "append", FileNotFoundException.class);
      expectThrows(() -> fs.setPermission(m, new FsPermission((short) 0700)), "setPermission",
          FileNotFoundException.class);
      expectThrows(() -> fs.setTimes(m, 1000, 1000), "setTimes", FileNotFoundException.class);
    });
    check("open_directory", () -> {
      Path d = p("opendir");
      fs.mkdirs(d);
      expectThrows(() -> {
        try (FSDataInputStream in = fs.open(d)) {
          in.read();
        }
      }, "open(dir)", FileNotFoundException.class);
    });
    check("exists", () -> {
      Path f = p("ex");
      write(f, new byte[10], true);
      expect(fs.exists(f), "file exists");
      expect(fs.exists(base), "dir exists");
      expect(!fs.exists(p("nope")), "missing does not exist");
      expect(fs.getFileStatus(f).isFile(), "isFile");
    });
    check("list_status", () -> {
      Path d = p("ls");
      fs.mkdirs(d);
      String[] files = {"b", "a", "c.txt", "B", "_x"};
      for (int i = 0; i < files.length; i++) {
        write(new Path(d, files[i]), new byte[i * 10], true);
      }
      fs.mkdirs(new Path(d, "zdir"));
      fs.mkdirs(new Path(d, "adir"));
      FileStatus[] ls = fs.listStatus(d);
      List<String> got = new ArrayList<>();
      for (FileStatus st : ls) {
        got.add(st.getPath().getName());
        expectEq(d.toUri().getPath() + "/" + st.getPath().getName(), st.getPath().toUri().getPath(),
            "listed full path");
      }
      // HDFS returns children sorted by UTF-8 bytes.
      expectEq(Arrays.asList("B", "_x", "a", "adir", "b", "c.txt", "zdir"), got, "listing");
      for (FileStatus st : ls) {
        String n = st.getPath().getName();
        if (n.endsWith("dir")) {
          expect(st.isDirectory(), n + " is dir");
        } else {
          int idx = Arrays.asList(files).indexOf(n);
          expect(st.isFile(), n + " is file");
          expectEq((long) idx * 10, st.getLen(), n + " length");
          expectEq(blockSize, st.getBlockSize(), n + " blocksize");
        }
      }
      expectEq(7, fs.getFileStatus(d).isDirectory() ? ls.length : -1, "count");
    });
    check("list_status_of_file", () -> {
      Path f = p("lsf");
      write(f, new byte[5], true);
      FileStatus[] ls = fs.listStatus(f);
      expectEq(1, ls.length, "entries");
      expectEq(f.toUri().getPath(), ls[0].getPath().toUri().getPath(), "path of the file entry");
      expectEq(5L, ls[0].getLen(), "length");
    });
    check("list_status_paged", () -> {
      Path d = p("many");
      fs.mkdirs(d);
      int n = 1005;
      for (int i = 0; i < n; i++) {
        Path c = new Path(d, String.format("e%05d", i));
        if (i % 100 == 0) {
          write(c, new byte[i % 7], true);
        } else {
          expect(fs.mkdirs(c), "mkdirs " + c);
        }
      }
      FileStatus[] ls = fs.listStatus(d);
      expectEq(n, ls.length, "entries via listStatus");
      for (int i = 0; i < n; i++) {
        expectEq(String.format("e%05d", i), ls[i].getPath().getName(), "entry " + i);
      }
      Set<String> seen = new HashSet<>();
      RemoteIterator<FileStatus> it = fs.listStatusIterator(d);
      while (it.hasNext()) {
        expect(seen.add(it.next().getPath().getName()), "duplicate in listStatusIterator");
      }
      expectEq(n, seen.size(), "entries via listStatusIterator");
      ContentSummary cs = fs.getContentSummary(d);
      expectEq((long) n, cs.getDirectoryCount() + cs.getFileCount() - 1, "content summary counts");
    });
    check("list_located_status", () -> {
      requireBig();
      Path d = big.getParent();
      RemoteIterator<LocatedFileStatus> it = fs.listLocatedStatus(d);
      boolean found = false;
      int entries = 0;
      while (it.hasNext()) {
        LocatedFileStatus st = it.next();
        entries++;
        if (st.getPath().getName().equals(big.getName())) {
          found = true;
          BlockLocation[] bl = st.getBlockLocations();
          expectEq(3, bl.length, "blocks of big in listLocatedStatus");
          expectEq(blockSize, bl[1].getOffset(), "offset of block 1");
          expect(bl[0].getHosts().length >= 1, "hosts");
        }
      }
      expect(found, "big.bin listed");
      expect(entries > 3, "entries listed: " + entries);
    });
    check("list_files_recursive", () -> {
      Path d = p("tree");
      String[] files = {"f1", "a/f2", "a/b/f3", "a/b/c/f4", "z/f5"};
      for (String f : files) {
        write(new Path(d, f), data(f.hashCode(), 1500), true);
      }
      fs.mkdirs(new Path(d, "emptydir"));
      Set<String> got = new HashSet<>();
      RemoteIterator<LocatedFileStatus> it = fs.listFiles(d, true);
      while (it.hasNext()) {
        LocatedFileStatus st = it.next();
        String rel = st.getPath().toUri().getPath().substring(d.toUri().getPath().length() + 1);
        got.add(rel);
        expectEq(1, st.getBlockLocations().length, rel + " block locations");
      }
      expectEq(new HashSet<>(Arrays.asList(files)), got, "recursive listing");
      RemoteIterator<LocatedFileStatus> top = fs.listFiles(d, false);
      int n = 0;
      while (top.hasNext()) {
        top.next();
        n++;
      }
      expectEq(1, n, "non-recursive listFiles");
    });
    check("append", () -> {
      Path f = p("app.bin");
      ByteArrayOutputStream expected = new ByteArrayOutputStream();
      byte[] d0 = data(10, 1000);
      write(f, d0, true);
      expected.write(d0);
      int[] sizes = {500, 36, 1, 777, 4096, (int) blockSize + 13};
      for (int i = 0; i < sizes.length; i++) {
        byte[] d = data(100 + i, sizes[i]);
        try (FSDataOutputStream out = fs.append(f)) {
          out.write(d);
        }
        expected.write(d);
        expectEq((long) expected.size(), fs.getFileStatus(f).getLen(), "length after append " + i);
      }
      byte[] exp = expected.toByteArray();
      byte[] got = readAll(fs, f);
      expectEq(exp.length, got.length, "length read");
      expectBytes(exp, 0, got, 0, exp.length, "content after appends");
    });
    check("append_with_hflush", () -> {
      Path f = p("app2.bin");
      byte[] d0 = data(20, 1500);
      write(f, d0, true);
      byte[] d1 = data(21, 3000);
      try (FSDataOutputStream out = fs.append(f)) {
        out.write(d1, 0, 1000);
        out.hflush();
        out.write(d1, 1000, 2000);
        out.hsync();
      }
      byte[] got = readAll(fs, f);
      expectEq(4500, got.length, "length");
      expectBytes(d0, 0, got, 0, 1500, "original part");
      expectBytes(d1, 0, got, 1500, 3000, "appended part");
    });
    check("append_block_aligned", () -> {
      // File ends exactly at a block boundary: the append must go to a new block.
      Path f = p("app3.bin");
      byte[] d0 = data(30, (int) blockSize);
      write(f, d0, true);
      byte[] d1 = data(31, 100);
      try (FSDataOutputStream out = fs.append(f)) {
        out.write(d1);
      }
      byte[] got = readAll(fs, f);
      expectEq((int) blockSize + 100, got.length, "length");
      expectBytes(d1, 0, got, (int) blockSize, 100, "appended part");
    });
    check("rename_old", () -> {
      Path a = p("ren/a");
      Path b = p("ren/b");
      byte[] d = data(3, 2000);
      write(a, d, true);
      expect(fs.rename(a, b), "rename returned false");
      expect(!fs.exists(a), "source gone");
      byte[] got = readAll(fs, b);
      expectBytes(d, 0, got, 0, d.length, "content after rename");
      expectEq(d.length, got.length, "length");
    });
    check("rename_old_into_dir", () -> {
      Path a = p("ren2/a");
      Path dir = p("ren2/dir");
      write(a, new byte[4], true);
      fs.mkdirs(dir);
      expect(fs.rename(a, dir), "rename into existing dir returned false");
      expect(fs.exists(new Path(dir, "a")), "moved into the directory");
      expect(!fs.exists(a), "source gone");
    });
    check("rename_old_failures_return_false", () -> {
      Path a = p("ren3/a");
      Path b = p("ren3/b");
      write(a, new byte[4], true);
      write(b, new byte[5], true);
      expect(!fs.rename(p("ren3/missing"), p("ren3/x")), "rename of a missing source is false");
      expect(!fs.rename(a, b), "rename onto an existing file is false");
      expectEq(4L, fs.getFileStatus(a).getLen(), "source untouched");
      expectEq(5L, fs.getFileStatus(b).getLen(), "destination untouched");
    });
    check("rename_dir", () -> {
      Path d = p("ren4/d");
      write(new Path(d, "x/y"), new byte[7], true);
      Path e = p("ren4/e");
      expect(fs.rename(d, e), "rename dir");
      expectEq(7L, fs.getFileStatus(new Path(e, "x/y")).getLen(), "child moved");
      expect(!fs.exists(d), "old dir gone");
      // HDFS: the old rename swallows the error (false), rename2 throws.
      expect(!fs.rename(e, new Path(e, "x/inside")), "old rename of a dir into itself is false");
      expectThrows(() -> dfs.rename(e, new Path(e, "x/inside"), Options.Rename.NONE),
          "rename2 of a dir into itself", IOException.class);
      expect(fs.exists(new Path(e, "x/y")), "dir intact after the refused rename");
    });
    check("rename_with_options", () -> {
      Path a = p("ren5/a");
      Path b = p("ren5/b");
      Path c = p("ren5/c");
      write(a, data(5, 100), true);
      write(c, data(6, 200), true);
      dfs.rename(a, b, Options.Rename.NONE);
      expect(!fs.exists(a) && fs.exists(b), "plain rename2");
      expectThrows(() -> dfs.rename(b, c, Options.Rename.NONE), "rename2 onto existing",
          FileAlreadyExistsException.class);
      dfs.rename(b, c, Options.Rename.OVERWRITE);
      expectEq(100L, fs.getFileStatus(c).getLen(), "overwritten destination");
      expect(!fs.exists(b), "source gone after overwrite");
      expectThrows(() -> dfs.rename(c, p("ren5/nodir/x"), Options.Rename.NONE),
          "rename2 into missing parent", FileNotFoundException.class);
      Path dir = p("ren5/dir");
      fs.mkdirs(dir);
      expectThrows(() -> dfs.rename(c, dir, Options.Rename.NONE),
          "rename2 onto an existing dir does not move into it", FileAlreadyExistsException.class,
          IOException.class);
      expect(fs.exists(c), "source still there");
    });
    check("delete", () -> {
      Path d = p("del");
      Path f = new Path(d, "sub/f");
      write(f, new byte[9], true);
      expect(fs.delete(f, false), "delete file");
      expect(!fs.exists(f), "file gone");
      write(f, new byte[9], true);
      expectThrowsNamed(() -> fs.delete(new Path(d, "sub"), false),
          "non-recursive delete of a non-empty dir", "PathIsNotEmptyDirectoryException");
      expect(fs.exists(f), "still there");
      expect(fs.delete(d, true), "recursive delete");
      expect(!fs.exists(d), "dir gone");
      expect(!fs.delete(p("del-missing"), true), "delete of a missing path is false");
      fs.mkdirs(d);
      expect(fs.delete(d, false), "non-recursive delete of an empty dir");
    });
    check("set_permission", () -> {
      Path f = p("perm");
      write(f, new byte[1], true);
      fs.setPermission(f, new FsPermission((short) 0600));
      expectEq(FsPermission.createImmutable((short) 0600), fs.getFileStatus(f).getPermission(),
          "file permission");
      Path d = p("permdir");
      fs.mkdirs(d);
      fs.setPermission(d, new FsPermission((short) 01777));
      FsPermission got = fs.getFileStatus(d).getPermission();
      expect(got.getStickyBit(), "sticky bit: " + got);
      expectEq((short) 01777, got.toShort(), "dir permission");
    });
    check("set_owner", () -> {
      Path f = p("own");
      write(f, new byte[1], true);
      fs.setOwner(f, "alice", "staff");
      FileStatus st = fs.getFileStatus(f);
      expectEq("alice", st.getOwner(), "owner");
      expectEq("staff", st.getGroup(), "group");
      fs.setOwner(f, null, "other");
      st = fs.getFileStatus(f);
      expectEq("alice", st.getOwner(), "owner unchanged when null");
      expectEq("other", st.getGroup(), "group");
      fs.setOwner(f, "carol", null);
      st = fs.getFileStatus(f);
      expectEq("carol", st.getOwner(), "owner");
      expectEq("other", st.getGroup(), "group unchanged when null");
    });
    check("set_times", () -> {
      Path f = p("times");
      write(f, new byte[1], true);
      fs.setTimes(f, 1_500_000_000_000L, 1_400_000_000_000L);
      FileStatus st = fs.getFileStatus(f);
      expectEq(1_500_000_000_000L, st.getModificationTime(), "mtime");
      expectEq(1_400_000_000_000L, st.getAccessTime(), "atime");
      fs.setTimes(f, -1, 1_450_000_000_000L);
      st = fs.getFileStatus(f);
      expectEq(1_500_000_000_000L, st.getModificationTime(), "mtime kept with -1");
      expectEq(1_450_000_000_000L, st.getAccessTime(), "atime");
      fs.setTimes(f, 1_600_000_000_000L, -1);
      st = fs.getFileStatus(f);
      expectEq(1_600_000_000_000L, st.getModificationTime(), "mtime");
      expectEq(1_450_000_000_000L, st.getAccessTime(), "atime kept with -1");
    });
    check("set_replication", () -> {
      Path f = p("repl");
      write(f, new byte[100], true);
      expect(fs.setReplication(f, (short) datanodes), "setReplication returned false");
      expectEq((short) datanodes, fs.getFileStatus(f).getReplication(), "replication");
    });
    check("content_summary", () -> {
      Path d = p("cs");
      write(new Path(d, "a"), new byte[1000], true);
      write(new Path(d, "s/b"), new byte[234], true);
      fs.mkdirs(new Path(d, "s/t"));
      ContentSummary cs = fs.getContentSummary(d);
      expectEq(1234L, cs.getLength(), "length");
      expectEq(2L, cs.getFileCount(), "fileCount");
      expectEq(3L, cs.getDirectoryCount(), "directoryCount (cs, s, t)");
      expectEq(-1L, cs.getQuota(), "quota");
      expectEq(-1L, cs.getSpaceQuota(), "spaceQuota");
      expectEq(1234L * datanodes, cs.getSpaceConsumed(), "spaceConsumed");
      ContentSummary fcs = fs.getContentSummary(new Path(d, "a"));
      expectEq(1000L, fcs.getLength(), "file length");
      expectEq(1L, fcs.getFileCount(), "file fileCount");
      expectEq(0L, fcs.getDirectoryCount(), "file directoryCount");
    });
    check("get_status", () -> {
      FsStatus st = fs.getStatus();
      expect(st.getCapacity() > 0, "capacity > 0: " + st.getCapacity());
      expect(st.getUsed() >= 0, "used >= 0");
      expect(st.getRemaining() >= 0 && st.getRemaining() <= st.getCapacity(),
          "0 <= remaining <= capacity: " + st.getRemaining());
    });
    check("server_defaults", () -> {
      FsServerDefaults d = fs.getServerDefaults(base);
      expect(d.getBlockSize() > 0, "blockSize");
      expectEq(512, d.getBytesPerChecksum(), "bytesPerChecksum");
      expect(!d.getEncryptDataTransfer(), "encryptDataTransfer must be false");
      expect(d.getReplication() >= 1, "replication");
    });
    check("hsync_update_length", () -> {
      Path f = p("hsync-len");
      byte[] d = data(9, 70_000);
      try (FSDataOutputStream out = fs.create(f, true)) {
        out.write(d, 0, 50_000);
        ((HdfsDataOutputStream) out).hsync(EnumSet.of(HdfsDataOutputStream.SyncFlag.UPDATE_LENGTH));
        expectEq(50_000L, fs.getFileStatus(f).getLen(), "NameNode length after hsync(UPDATE_LENGTH)");
        out.write(d, 50_000, 20_000);
      }
      expectEq(70_000L, fs.getFileStatus(f).getLen(), "length after close");
    });
    check("read_while_open_after_hflush", () -> {
      Path f = p("open-read.bin");
      int first = (int) (blockSize + blockSize / 2 + 100);
      byte[] d = data(11, first + 5000);
      try (FileSystem reader = newClient(); FSDataOutputStream out = fs.create(f, true)) {
        out.write(d, 0, first);
        out.hflush();
        byte[] got;
        try (FSDataInputStream in = reader.open(f)) {
          got = readStream(in);
        }
        expectEq(first, got.length, "visible bytes after hflush");
        expectBytes(d, 0, got, 0, first, "content visible after hflush");
        out.write(d, first, 5000);
        out.hflush();
        try (FSDataInputStream in = reader.open(f)) {
          got = readStream(in);
        }
        expectEq(d.length, got.length, "visible bytes after 2nd hflush");
        expectBytes(d, 0, got, 0, d.length, "content after 2nd hflush");
        byte[] tail = new byte[100];
        try (FSDataInputStream in = reader.open(f)) {
          in.readFully(d.length - 100, tail);
        }
        expectBytes(d, d.length - 100, tail, 0, 100, "pread of the tail of an open file");
        FileStatus ost = reader.getFileStatus(f);
        expectEq(2, reader.getFileBlockLocations(ost, 0, Long.MAX_VALUE).length,
            "block locations of the open file");
        boolean seen = false;
        RemoteIterator<LocatedFileStatus> it = reader.listLocatedStatus(f.getParent());
        while (it.hasNext()) {
          LocatedFileStatus st = it.next();
          if (st.getPath().getName().equals(f.getName())) {
            seen = true;
            expectEq(2, st.getBlockLocations().length, "listLocatedStatus blocks of open file");
          }
        }
        expect(seen, "open file in listLocatedStatus");
      }
      expectEq((long) d.length, fs.getFileStatus(f).getLen(), "length after close");
    });
    check("concurrent_writer_rejected", () -> {
      Path f = p("leased.bin");
      try (FileSystem other = newClient(); FSDataOutputStream out = fs.create(f, true)) {
        out.write(new byte[10]);
        out.hflush();
        expectThrowsNamed(() -> other.append(f).close(), "append by a second client",
            "AlreadyBeingCreatedException", "RecoveryInProgressException");
        // Real HDFS runs lease recovery first and so answers AlreadyBeingCreatedException.
        expectThrowsNamed(() -> other.create(f, false).close(),
            "create(overwrite=false) by 2nd client", "AlreadyBeingCreatedException",
            "FileAlreadyExistsException");
        out.write(new byte[10]);
      }
      expectEq(20L, fs.getFileStatus(f).getLen(), "first writer finished fine");
    });
    check("recover_lease", () -> {
      Path f = p("recover.bin");
      byte[] d = data(12, 3000);
      FileSystem writerFs = newClient();
      FSDataOutputStream out = writerFs.create(f, true);
      out.write(d);
      out.hflush();
      boolean closed = false;
      for (int i = 0; i < 20 && !closed; i++) {
        closed = dfs.recoverLease(f);
        if (!closed) {
          Thread.sleep(500);
        }
      }
      expect(closed, "recoverLease never returned true");
      byte[] got = readAll(fs, f);
      expectEq(d.length, got.length, "recovered length");
      expectBytes(d, 0, got, 0, d.length, "recovered content");
      try {
        out.close(); // the old writer lost its lease; failing here is expected
      } catch (IOException expected) {
        // ignored
      }
      try {
        writerFs.close();
      } catch (IOException expected) {
        // ignored
      }
    });
    check("is_file_closed", () -> {
      // ClientProtocol.isFileClosed: used after recoverLease by HBase/Flume-style writers.
      Path f = p("closed.bin");
      try (FSDataOutputStream out = fs.create(f, true)) {
        out.write(new byte[10]);
        out.hflush();
        expect(!dfs.isFileClosed(f), "isFileClosed while open");
      }
      expect(dfs.isFileClosed(f), "isFileClosed after close");
    });
    check("concurrent_clients", () -> {
      // Several writers and readers at once: the server must not serialise them into a deadlock.
      int n = 4;
      int len = (int) (blockSize + blockSize / 4);
      ExecutorService ex = Executors.newFixedThreadPool(n);
      try {
        List<Future<Void>> fs2 = new ArrayList<>();
        for (int i = 0; i < n; i++) {
          final int k = i;
          fs2.add(ex.submit(() -> {
            try (FileSystem c = newClient()) {
              Path f = p("conc/" + k);
              byte[] d = data(60 + k, len);
              try (FSDataOutputStream out = c.create(f, true)) {
                out.write(d, 0, len / 2);
                out.hflush();
                out.write(d, len / 2, len - len / 2);
              }
              byte[] got = readAll(c, f);
              expectEq(len, got.length, "length of " + f);
              expectBytes(d, 0, got, 0, len, "content of " + f);
            }
            return null;
          }));
        }
        for (Future<Void> f : fs2) {
          f.get(120, TimeUnit.SECONDS);
        }
        // Concurrent preads on one shared stream (DFSInputStream pread is thread-safe).
        requireBig();
        try (FSDataInputStream in = fs.open(big)) {
          List<Future<Void>> rs = new ArrayList<>();
          for (int i = 0; i < n; i++) {
            final int k = i;
            rs.add(ex.submit(() -> {
              Random r = new Random(k);
              for (int j = 0; j < 10; j++) {
                int m = 1 + r.nextInt(100_000);
                int pos = r.nextInt(bigData.length - m);
                byte[] buf = new byte[m];
                in.readFully(pos, buf);
                expectBytes(bigData, pos, buf, 0, m, "concurrent pread@" + pos);
              }
              return null;
            }));
          }
          for (Future<Void> f : rs) {
            f.get(120, TimeUnit.SECONDS);
          }
        }
      } finally {
        ex.shutdownNow();
      }
    });
    check("idle_reconnect", () -> {
      // The Java client drops idle NameNode connections (10 s by default) and cached
      // DataNode sockets (3 s); shortened here so reconnecting is exercised quickly.
      Configuration ic = new Configuration(conf);
      ic.setInt("ipc.client.connection.maxidletime", 300);
      ic.setLong("dfs.client.socketcache.expiryMsec", 300);
      Path f = p("idle.bin");
      byte[] d = data(70, 5000);
      try (FileSystem c = FileSystem.newInstance(uri, ic)) {
        try (FSDataOutputStream out = c.create(f, true)) {
          out.write(d);
        }
        for (int i = 0; i < 3; i++) {
          Thread.sleep(1000);
          expectEq(5000L, c.getFileStatus(f).getLen(), "stat after idle " + i);
          byte[] got = readAll(c, f);
          expectBytes(d, 0, got, 0, d.length, "read after idle " + i);
        }
      }
    });
    check("writer_heartbeats", () -> {
      // DataStreamer sends heartbeat packets (seqno -1) every socket-timeout/2 while idle.
      Configuration hc = new Configuration(conf);
      hc.setInt("dfs.client.socket-timeout", 4000);
      Path f = p("heartbeat.bin");
      byte[] d = data(71, 200_000);
      try (FileSystem c = FileSystem.newInstance(uri, hc);
          FSDataOutputStream out = c.create(f, true)) {
        out.write(d, 0, 100_000);
        out.hflush();
        Thread.sleep(5000); // >= 2 heartbeats
        out.write(d, 100_000, 100_000);
        out.close();
        byte[] got = readAll(c, f);
        expectEq(d.length, got.length, "length");
        expectBytes(d, 0, got, 0, d.length, "content");
      }
    });
    check("bare_config_client", () -> {
      // What most users run: no dfs.replication (3), no dfs.blocksize (128 MiB).
      Configuration bare = new Configuration();
      Path f = p("bare.bin");
      byte[] d = data(80, 300_000);
      try (FileSystem c = FileSystem.newInstance(uri, bare)) {
        try (FSDataOutputStream out = c.create(f, true)) {
          out.write(d, 0, 100_000);
          out.hflush();
          out.write(d, 100_000, 100_000);
        }
        FileStatus st = c.getFileStatus(f);
        expectEq(128L << 20, st.getBlockSize(), "block size from the client's default");
        // HDFS stores the factor asked for, whatever the cluster size; the blocks just
        // have as many replicas as there are DataNodes (and count as under-replicated).
        expectEq((short) 3, st.getReplication(), "replication = requested 3");
        BlockLocation[] bl = c.getFileBlockLocations(st, 0, st.getLen());
        expectEq(Math.min(3, datanodes), bl[0].getHosts().length, "replicas of the block");
        byte[] got = readAll(c, f);
        expectEq(200_000, got.length, "length");
        expectBytes(d, 0, got, 0, got.length, "content");
        if (datanodes < 3) {
          // An append opens a pipeline of fewer nodes than the replication: the DEFAULT
          // replace-datanode-on-failure policy asks getAdditionalDatanode for the rest,
          // there is none to spare, and the write fails (as every small HDFS cluster does).
          FSDataOutputStream out = c.append(f);
          try {
            expectThrowsNamed(() -> {
              out.write(d, 200_000, 100_000);
              out.hsync();
            }, "append with fewer DataNodes than the replication",
                "Failed to replace a bad datanode on the existing pipeline");
          } finally {
            try {
              out.close();
            } catch (IOException expected) {
              // the same failure again
            }
          }
        }
      }
      // best-effort: carry on with the nodes there are (what small clusters configure)
      Configuration best = new Configuration();
      best.setBoolean("dfs.client.block.write.replace-datanode-on-failure.best-effort", true);
      Path g = p("bare-best-effort.bin");
      try (FileSystem c = FileSystem.newInstance(uri, best)) {
        try (FSDataOutputStream out = c.create(g, true)) {
          out.write(d, 0, 200_000);
        }
        try (FSDataOutputStream out = c.append(g)) {
          out.write(d, 200_000, 100_000);
          out.hsync();
        }
        expectEq((short) 3, c.getFileStatus(g).getReplication(), "replication after append");
        byte[] got = readAll(c, g);
        expectEq(d.length, got.length, "length after append");
        expectBytes(d, 0, got, 0, d.length, "content after append");
      }
    });
    check("crc32_checksum_type", () -> {
      // Writers may choose CRC32 (not C) and another bytes-per-checksum; HDFS stores per block.
      Configuration cc = new Configuration(conf);
      cc.set("dfs.checksum.type", "CRC32");
      cc.setInt("dfs.bytes-per-checksum", 1024);
      Path f = p("crc32.bin");
      byte[] d = data(81, (int) blockSize + 3000);
      try (FileSystem c = FileSystem.newInstance(uri, cc)) {
        try (FSDataOutputStream out = c.create(f, true)) {
          out.write(d, 0, 5000);
          out.hflush();
          out.write(d, 5000, d.length - 5000);
        }
        try (FSDataOutputStream out = c.append(f)) {
          out.write(d, 0, 777);
        }
      }
      byte[] got = readAll(fs, f);
      expectEq(d.length + 777, got.length, "length");
      expectBytes(d, 0, got, 0, d.length, "content");
      expectBytes(d, 0, got, d.length, 777, "appended content");
    });
    check("datanode_hostname_mode", () -> {
      // Clients outside the cluster network set this and connect to DatanodeID.hostName.
      Configuration hc = new Configuration(conf);
      hc.setBoolean("dfs.client.use.datanode.hostname", true);
      Path f = p("hostname.bin");
      byte[] d = data(82, 100_000);
      try (FileSystem c = FileSystem.newInstance(uri, hc)) {
        try (FSDataOutputStream out = c.create(f, true)) {
          out.write(d);
        }
        byte[] got = readAll(c, f);
        expectBytes(d, 0, got, 0, d.length, "content");
        expectEq(d.length, got.length, "length");
      }
    });
    // ---- extended: features real HDFS has that the product (or ops tooling) may touch
    check("acl_status", () -> {
      Path f = p("acl");
      write(f, new byte[1], true);
      fs.setPermission(f, new FsPermission((short) 0640));
      AclStatus a = fs.getAclStatus(f);
      expectEq(user, a.getOwner(), "owner");
      expectEq(0, a.getEntries().size(), "no extended entries");
      expectEq(FsPermission.createImmutable((short) 0640), a.getPermission(), "permission");
    });
    check("snapshots", () -> {
      Path d = p("snapdir");
      Path f = new Path(d, "f");
      Path g = new Path(d, "g");
      byte[] v1 = data(40, 3000);
      write(f, v1, true);
      write(g, data(41, 100), true);
      dfs.allowSnapshot(d);
      expect(fs.getFileStatus(d).isSnapshotEnabled(), "isSnapshotEnabled flag");
      Path snap = dfs.createSnapshot(d, "s1");
      expectEq(new Path(d, ".snapshot/s1").toUri().getPath(), snap.toUri().getPath(), "path");
      write(f, data(42, 10), true);
      try (FSDataOutputStream out = fs.append(g)) {
        out.write(new byte[50]);
      }
      fs.delete(g, false);
      byte[] old = readAll(fs, new Path(snap, "f"));
      expectEq(v1.length, old.length, "snapshot length of overwritten file");
      expectBytes(v1, 0, old, 0, v1.length, "snapshot content");
      expectEq(100L, fs.getFileStatus(new Path(snap, "g")).getLen(), "deleted file in snapshot");
      FileStatus[] snaps = fs.listStatus(new Path(d, ".snapshot"));
      expectEq(1, snaps.length, "entries in .snapshot");
      expectEq("s1", snaps[0].getPath().getName(), "snapshot name");
      boolean listed = false;
      for (org.apache.hadoop.hdfs.protocol.SnapshottableDirectoryStatus st
          : dfs.getSnapshottableDirListing()) {
        listed |= st.getFullPath().toUri().getPath().equals(d.toUri().getPath());
      }
      expect(listed, "getSnapshottableDirListing lists the dir");
      expectThrows(() -> fs.create(new Path(snap, "new"), true).close(),
          "snapshots are read-only", IOException.class);
      dfs.renameSnapshot(d, "s1", "s2");
      expect(fs.exists(new Path(d, ".snapshot/s2/f")), "renamed snapshot");
      dfs.deleteSnapshot(d, "s2");
      expect(!fs.exists(new Path(d, ".snapshot/s2")), "deleted snapshot");
      dfs.disallowSnapshot(d);
    });
    check("quota", () -> {
      Path d = p("quota");
      fs.mkdirs(d);
      dfs.setQuota(d, 3, HdfsConstants.QUOTA_DONT_SET);
      expectEq(3L, fs.getContentSummary(d).getQuota(), "namespace quota");
      write(new Path(d, "a"), new byte[1], true);
      write(new Path(d, "b"), new byte[1], true);
      expectThrowsNamed(() -> write(new Path(d, "c"), new byte[1], true),
          "3rd entry over a namespace quota of 3", "NSQuotaExceededException");
      dfs.setQuota(d, HdfsConstants.QUOTA_RESET, HdfsConstants.QUOTA_DONT_SET);
      expectEq(-1L, fs.getContentSummary(d).getQuota(), "quota cleared");
      Path e = p("dsquota");
      fs.mkdirs(e);
      dfs.setQuota(e, HdfsConstants.QUOTA_DONT_SET, blockSize / 2);
      expectEq(blockSize / 2, fs.getContentSummary(e).getSpaceQuota(), "space quota");
      expectThrowsNamed(() -> write(new Path(e, "big"), new byte[1000], true),
          "write over a space quota smaller than one block", "DSQuotaExceededException");
      dfs.setQuota(e, HdfsConstants.QUOTA_DONT_SET, HdfsConstants.QUOTA_RESET);
      write(new Path(e, "big2"), new byte[1000], true);
    });
    check("trash", () -> {
      Path f = p("trashme");
      write(f, new byte[5], true);
      Configuration tc = new Configuration(conf);
      tc.set("fs.trash.interval", "10");
      expect(Trash.moveToAppropriateTrash(fs, f, tc), "moveToAppropriateTrash returned false");
      expect(!fs.exists(f), "source gone");
      Path inTrash = new Path(fs.getTrashRoot(f), "Current" + f.toUri().getPath());
      expectEq(5L, fs.getFileStatus(inTrash).getLen(), "file in " + inTrash);
    });
    check("file_checksum", () -> {
      requireBig();
      Path copy = p("big-copy.bin");
      write(copy, bigData, true);
      FileChecksum a = fs.getFileChecksum(big);
      FileChecksum b = fs.getFileChecksum(copy);
      expect(a != null, "checksum not null");
      expectEq(a, b, "same content and block size give the same checksum");
      write(copy, data(43, bigData.length), true);
      expect(!a.equals(fs.getFileChecksum(copy)), "different content, different checksum");
    });
    check("truncate", () -> {
      Path f = p("trunc");
      byte[] d = data(44, (int) blockSize + 5000);
      write(f, d, true);
      expect(fs.truncate(f, blockSize), "truncate at a block boundary completes at once");
      expectEq(blockSize, fs.getFileStatus(f).getLen(), "length after truncate");
      boolean done = fs.truncate(f, 1000);
      for (int i = 0; i < 40 && !done; i++) {
        Thread.sleep(250);
        done = dfs.isFileClosed(f);
      }
      expect(done, "mid-block truncate finished");
      byte[] got = readAll(fs, f);
      expectEq(1000, got.length, "length after mid-block truncate");
      expectBytes(d, 0, got, 0, 1000, "content after truncate");
    });
    check("shell_put_cat_ls_stat", () -> {
      java.io.File local = java.io.File.createTempFile("smoke", ".bin");
      local.deleteOnExit();
      byte[] d = data(50, 300_000);
      Files.write(local.toPath(), d);
      Path dir = p("shell");
      shell(0, "-mkdir", "-p", dir.toString());
      shell(0, "-put", local.getPath(), dir + "/f.bin");
      String cat = shell(0, "-cat", dir + "/f.bin");
      expectEq(d.length, cat.getBytes(java.nio.charset.StandardCharsets.ISO_8859_1).length,
          "bytes from -cat");
      String ls = shell(0, "-ls", "-R", dir.toString());
      expect(ls.contains("f.bin") && ls.contains("300000"), "-ls -R output: " + ls);
      String stat = shell(0, "-stat", "%b %r %o %u %F", dir + "/f.bin").trim();
      expectEq("300000 " + datanodes + " " + blockSize + " " + user + " regular file", stat,
          "-stat");
      shell(0, "-appendToFile", local.getPath(), dir + "/f.bin");
      expectEq(600_000L, fs.getFileStatus(new Path(dir, "f.bin")).getLen(), "-appendToFile");
      shell(0, "-test", "-e", dir + "/f.bin");
      shell(1, "-test", "-e", dir + "/nope");
      shell(1, "-cat", dir + "/nope");
    });
    check("shell_du_count_df", () -> {
      Path dir = p("shell2");
      write(new Path(dir, "a"), new byte[1000], true);
      write(new Path(dir, "s/b"), new byte[24], true);
      String du = shell(0, "-du", "-s", dir.toString()).trim();
      expect(du.startsWith("1024 "), "-du -s: " + du);
      String count = shell(0, "-count", "-q", dir.toString()).trim();
      expect(count.matches("none\\s+inf\\s+none\\s+inf\\s+2\\s+2\\s+1024\\s+.*"),
          "-count -q: " + count);
      String df = shell(0, "-df", dir.toString());
      expect(df.contains("Filesystem") && df.split("\n").length >= 2, "-df: " + df);
    });
    check("shell_mv_cp_rm_chmod_setrep", () -> {
      Path dir = p("shell3");
      write(new Path(dir, "a"), data(51, 5000), true);
      shell(0, "-cp", dir + "/a", dir + "/b");
      expectEq(5000L, fs.getFileStatus(new Path(dir, "b")).getLen(), "-cp");
      shell(0, "-mv", dir + "/b", dir + "/c");
      expect(!fs.exists(new Path(dir, "b")) && fs.exists(new Path(dir, "c")), "-mv");
      shell(0, "-chmod", "-R", "700", dir.toString());
      expectEq((short) 0700, fs.getFileStatus(new Path(dir, "c")).getPermission().toShort(),
          "-chmod -R");
      shell(0, "-chown", "-R", "alice:staff", dir.toString());
      expectEq("alice", fs.getFileStatus(new Path(dir, "c")).getOwner(), "-chown -R");
      shell(0, "-touchz", dir + "/z");
      expectEq(0L, fs.getFileStatus(new Path(dir, "z")).getLen(), "-touchz");
      // -setrep -w polls until every block has that many hosts: fail fast instead of hanging.
      FileStatus ast = fs.getFileStatus(new Path(dir, "a"));
      expectEq(datanodes, fs.getFileBlockLocations(ast, 0, ast.getLen())[0].getHosts().length,
          "hosts of a's block (-setrep -w would wait forever)");
      shell(0, "-setrep", "-w", Integer.toString(datanodes), dir + "/a");
      shell(0, "-rm", "-r", "-skipTrash", dir.toString());
      expect(!fs.exists(dir), "-rm -r");
    });
    check("permission_denied_other_user", () -> {
      Path priv = p("private");
      fs.mkdirs(priv);
      write(new Path(priv, "secret"), new byte[3], true);
      fs.setPermission(priv, new FsPermission((short) 0700));
      Path shared = p("shared");
      fs.mkdirs(shared);
      fs.setPermission(shared, new FsPermission((short) 0755));
      Path mine = new Path(shared, "roots-file");
      write(mine, new byte[3], true);
      try (FileSystem bob = clientAs("bob")) {
        expectThrows(() -> bob.listStatus(priv), "bob lists a 0700 dir",
            AccessControlException.class);
        expectThrows(() -> bob.getFileStatus(new Path(priv, "secret")),
            "bob stats a file in a 0700 dir", AccessControlException.class);
        expectThrows(() -> bob.create(new Path(shared, "bobs"), false).close(),
            "bob creates in a 0755 dir", AccessControlException.class);
        expectThrows(() -> bob.mkdirs(new Path(shared, "bobdir")), "bob mkdirs in a 0755 dir",
            AccessControlException.class);
        expectThrows(() -> bob.delete(mine, false), "bob deletes in a 0755 dir",
            AccessControlException.class);
        expectThrows(() -> bob.setPermission(mine, new FsPermission((short) 0777)),
            "bob chmods root's file", AccessControlException.class);
        expectThrows(() -> bob.append(mine).close(), "bob appends to a 0644 file",
            AccessControlException.class);
        expectThrows(() -> bob.setOwner(mine, "bob", null), "bob chowns root's file",
            AccessControlException.class);
        byte[] r = readAll(bob, mine);
        expectEq(3, r.length, "bob may read a 0644 file");
      }
    });
    check("other_user_owns_new_files", () -> {
      Path pub = p("public");
      fs.mkdirs(pub);
      fs.setPermission(pub, new FsPermission((short) 0777));
      Path f = new Path(pub, "bobs-file");
      try (FileSystem bob = clientAs("bob")) {
        try (FSDataOutputStream out = bob.create(f, false)) {
          out.write(data(13, 2000));
        }
        FileStatus st = bob.getFileStatus(f);
        expectEq("bob", st.getOwner(), "owner of bob's file");
        bob.setPermission(f, new FsPermission((short) 0600));
        expectThrows(() -> readAll(clientAsSafe("eve"), f), "eve reads bob's 0600 file",
            AccessControlException.class);
        try (FSDataOutputStream out = bob.append(f)) {
          out.write(new byte[10]);
        }
        expectEq(2010L, bob.getFileStatus(f).getLen(), "bob appended");
      }
      // The superuser (the client running this program) can still read it.
      expectEq(2010, readAll(fs, f).length, "superuser reads bob's 0600 file");
    });
  }

  /** Run one FsShell command in-process; return its stdout, require exit code rc. */
  String shell(int rc, String... args) throws Exception {
    java.io.PrintStream oldOut = System.out;
    java.io.PrintStream oldErr = System.err;
    ByteArrayOutputStream bout = new ByteArrayOutputStream();
    ByteArrayOutputStream berr = new ByteArrayOutputStream();
    int got;
    synchronized (HdfsJavaSmoke.class) {
      Configuration sc = new Configuration(conf);
      sc.set("fs.defaultFS", uri.toString());
      try {
        System.setOut(new java.io.PrintStream(bout, true, "ISO-8859-1"));
        System.setErr(new java.io.PrintStream(berr, true, "ISO-8859-1"));
        got = ToolRunner.run(new FsShell(sc), args);
      } finally {
        System.setOut(oldOut);
        System.setErr(oldErr);
      }
    }
    String out = bout.toString("ISO-8859-1");
    if (got != rc) {
      throw new CheckFailed("hadoop fs " + String.join(" ", args) + " exited " + got + " (want "
          + rc + "): " + berr.toString("ISO-8859-1").trim());
    }
    return out;
  }

  FileSystem clientAsSafe(String name) throws IOException {
    try {
      return clientAs(name);
    } catch (IOException e) {
      throw e;
    } catch (Exception e) {
      throw new IOException(e);
    }
  }

  // ---------------------------------------------------------------- driver

  private int runChecks(Set<String> only, int timeoutSec) throws Exception {
    fs = FileSystem.newInstance(uri, conf);
    if (!(fs instanceof DistributedFileSystem)) {
      System.out.println("FAIL setup: not a DistributedFileSystem: " + fs.getClass());
      return 2;
    }
    dfs = (DistributedFileSystem) fs;
    base = new Path("/java-smoke-" + Long.toHexString(System.nanoTime()));
    declare();
    int failed = 0;
    int ran = 0;
    ExecutorService pool = Executors.newCachedThreadPool(r -> {
      Thread t = new Thread(r, "check");
      t.setDaemon(true);
      return t;
    });
    for (Map.Entry<String, Body> e : checks.entrySet()) {
      String name = e.getKey();
      if (!only.isEmpty() && !only.contains(name) && !name.equals("connect_root_status")) {
        continue;
      }
      ran++;
      long t0 = System.nanoTime();
      Future<?> fut = pool.submit(() -> {
        e.getValue().run();
        return null;
      });
      String failure = null;
      Throwable cause = null;
      try {
        fut.get(timeoutSec, TimeUnit.SECONDS);
      } catch (TimeoutException te) {
        failure = "timed out after " + timeoutSec + "s";
        System.err.println("=== " + name + " timed out; stacks of check threads:");
        for (Map.Entry<Thread, StackTraceElement[]> st : Thread.getAllStackTraces().entrySet()) {
          if (st.getKey().getName().startsWith("check")) {
            System.err.println("--- " + st.getKey());
            for (StackTraceElement el : st.getValue()) {
              System.err.println("    at " + el);
            }
          }
        }
        System.err.println("=== end " + name);
        fut.cancel(true);
      } catch (java.util.concurrent.ExecutionException ee) {
        cause = ee.getCause();
        failure = oneLine(cause);
      }
      long ms = (System.nanoTime() - t0) / 1_000_000;
      if (failure == null) {
        System.out.println("PASS " + name + " (" + ms + " ms)");
      } else {
        failed++;
        System.out.println("FAIL " + name + ": " + failure);
        if (cause != null) {
          System.err.println("=== " + name + " failed:");
          StringWriter sw = new StringWriter();
          cause.printStackTrace(new PrintWriter(sw));
          System.err.print(sw);
          System.err.println("=== end " + name);
        }
      }
      System.out.flush();
      System.err.flush();
    }
    pool.shutdownNow();
    try {
      fs.close();
    } catch (IOException ignored) {
      // closing may fail if a check left a broken stream behind
    }
    System.out.println("SUMMARY " + (ran - failed) + " passed, " + failed + " failed");
    return failed == 0 ? 0 : 1;
  }

  static String oneLine(Throwable t) {
    // try-with-resources over a DFSOutputStream that rethrows its stored failure from close()
    // yields "Self-suppression not permitted" with the real exception as the cause.
    while (t instanceof IllegalArgumentException && t.getCause() != null
        && "Self-suppression not permitted".equals(t.getMessage())) {
      t = t.getCause();
    }
    String s = (t instanceof CheckFailed) ? t.getMessage() : t.toString();
    return s == null ? t.getClass().getName() : s.replace('\n', ' ').replace('\r', ' ');
  }

  /** Cross-client helper: write LOCAL to REMOTE in several packets with hflush/hsync between. */
  static int put(URI uri, String local, String remote, long blockSize) throws IOException {
    byte[] d = Files.readAllBytes(Paths.get(local));
    try (FileSystem f = FileSystem.newInstance(uri, clientConf(1, blockSize));
        FSDataOutputStream out = f.create(new Path(remote), true)) {
      int third = d.length / 3;
      out.write(d, 0, third);
      out.hflush();
      out.write(d, third, third);
      out.hsync();
      out.write(d, 2 * third, d.length - 2 * third);
    }
    return 0;
  }

  /** Cross-client helper: append LOCAL to an existing REMOTE (hflush halfway). */
  static int append(URI uri, String local, String remote, long blockSize) throws IOException {
    byte[] d = Files.readAllBytes(Paths.get(local));
    try (FileSystem f = FileSystem.newInstance(uri, clientConf(1, blockSize));
        FSDataOutputStream out = f.append(new Path(remote))) {
      int half = d.length / 2;
      out.write(d, 0, half);
      out.hflush();
      out.write(d, half, d.length - half);
    }
    return 0;
  }

  /** Cross-client helper: write the first half, hflush, wait for a line on stdin, finish. */
  static int hold(URI uri, String local, String remote, long blockSize) throws IOException {
    byte[] d = Files.readAllBytes(Paths.get(local));
    try (FileSystem f = FileSystem.newInstance(uri, clientConf(1, blockSize));
        FSDataOutputStream out = f.create(new Path(remote), true)) {
      int half = d.length / 2;
      out.write(d, 0, half);
      out.hflush();
      System.out.println("FLUSHED " + half);
      System.out.flush();
      new java.io.BufferedReader(new java.io.InputStreamReader(System.in)).readLine();
      out.write(d, half, d.length - half);
    }
    System.out.println("CLOSED");
    return 0;
  }

  static int get(URI uri, String remote, String local, long blockSize) throws IOException {
    try (FileSystem f = FileSystem.newInstance(uri, clientConf(1, blockSize))) {
      Files.write(Paths.get(local), readAll(f, new Path(remote)));
    }
    return 0;
  }

  public static void main(String[] args) throws Exception {
    if (args.length < 2) {
      System.err.println("usage: HdfsJavaSmoke smoke|put|get|append|hold URI ...");
      System.exit(64);
    }
    String mode = args[0];
    URI uri = URI.create(args[1]);
    int datanodes = 1;
    long blockSize = 1 << 20;
    int timeout = 120;
    Set<String> only = new HashSet<>();
    List<String> rest = new ArrayList<>();
    for (int i = 2; i < args.length; i++) {
      switch (args[i]) {
        case "--datanodes": datanodes = Integer.parseInt(args[++i]); break;
        case "--block-size": blockSize = Long.parseLong(args[++i]); break;
        case "--timeout": timeout = Integer.parseInt(args[++i]); break;
        case "--only": only.addAll(Arrays.asList(args[++i].split(","))); break;
        default: rest.add(args[i]);
      }
    }
    int rc;
    switch (mode) {
      case "smoke":
        rc = new HdfsJavaSmoke(uri, datanodes, blockSize).runChecks(only, timeout);
        break;
      case "put":
        rc = put(uri, rest.get(0), rest.get(1), blockSize);
        break;
      case "get":
        rc = get(uri, rest.get(0), rest.get(1), blockSize);
        break;
      case "append":
        rc = append(uri, rest.get(0), rest.get(1), blockSize);
        break;
      case "hold":
        rc = hold(uri, rest.get(0), rest.get(1), blockSize);
        break;
      default:
        System.err.println("unknown mode " + mode);
        rc = 64;
    }
    // Hadoop leaves non-daemon threads (lease renewer etc.) behind: exit explicitly.
    System.exit(rc);
  }
}
