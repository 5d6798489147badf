package dev.dsd.pipeline.checkpoint;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Remembers a checkpoint's model id, which hashes every byte of it (minutes for a 13 GB 7B checkpoint,
 * paid by every stage process at every start), under a key made of each file's absolute path, size,
 * modification time (ns) and inode: the check {@code make}, git and rsync rely on. A file rewritten
 * in any way that changes one of these gets a new key, so its id is computed again.
 *
 * <pre>
 *   DIR/&lt;SHA-256 of "path \t size \t mtime-ns \t file-key \n" per file, hex&gt;   one line: the id (64 hex)
 * </pre>
 *
 * Only checkpoints of at least {@link #MIN_BYTES} are remembered: below that hashing takes about a
 * second and a memo file would only litter the cache. A memo that is unreadable or not 64 hex digits
 * is ignored and rewritten; a memo that cannot be written costs nothing but the next start's hashing.
 */
final class ModelIdMemo {
  /** Checkpoints smaller than this are hashed every time. */
  static final long MIN_BYTES = 256L << 20;
  /** Largest memo file read. */
  static final long MAX_MEMO_BYTES = 128;
  private static final Logger log = LoggerFactory.getLogger(ModelIdMemo.class);

  private final Path dir;
  private final long minBytes;

  ModelIdMemo(Path dir, long minBytes) {
    this.dir = dir;
    this.minBytes = minBytes;
  }

  /** The memo shared by every checkpoint: {@code ~/.cache/dsd/model-ids}. */
  static ModelIdMemo standard() {
    return new ModelIdMemo(Path.of(System.getProperty("user.home"), ".cache", "dsd", "model-ids"), MIN_BYTES);
  }

  /** The id of {@code files}: remembered if their key has one, else {@code hash}'s, then remembered. */
  String get(List<Path> files, Supplier<String> hash) {
    String key;
    long total = 0;
    try {
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      for (Path p : files) {
        BasicFileAttributes a = Files.readAttributes(p, BasicFileAttributes.class);
        total += a.size();
        md.update((p.toAbsolutePath().normalize() + "\t" + a.size() + "\t" + a.lastModifiedTime().to(TimeUnit.NANOSECONDS)
            + "\t" + a.fileKey() + "\n").getBytes(StandardCharsets.UTF_8));
      }
      key = HexFormat.of().formatHex(md.digest());
    } catch (IOException | NoSuchAlgorithmException e) {
      return hash.get(); // the hash itself will report an unreadable file
    }
    if (total < minBytes) {
      return hash.get();
    }
    Path memo = dir.resolve(key);
    String known = read(memo);
    if (known != null) {
      return known;
    }
    String id = hash.get();
    try {
      Files.createDirectories(dir);
      Path tmp = Files.createTempFile(dir, key, ".tmp");
      Files.writeString(tmp, id + "\n");
      Files.move(tmp, memo, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      log.warn("cannot remember model id in {}: {}", dir, e.getMessage());
    }
    return id;
  }

  private static String read(Path memo) {
    try {
      if (!Files.isRegularFile(memo) || Files.size(memo) > MAX_MEMO_BYTES) {
        return null;
      }
      String id = Files.readString(memo).trim();
      return id.matches("[0-9a-f]{64}") ? id : null;
    } catch (IOException e) {
      return null;
    }
  }
}
