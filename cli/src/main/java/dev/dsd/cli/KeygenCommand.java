package dev.dsd.cli;

import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.crypto.Identity;
import dev.dsd.p2p.pnet.SwarmKey;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
    name = "keygen",
    mixinStandardHelpOptions = true,
    description = {"Create an Ed25519 identity key file (0600) and print its peer id; an existing file is only read.",
        "With --swarm, create a private-swarm key (libp2p pnet) to share with the swarm's members instead."},
    footer = {"", "Examples:", "  dsd keygen ~/.dsd/identity.key && dsd node --identity ~/.dsd/identity.key",
        "  dsd keygen --swarm swarm.key && dsd node --swarm-key swarm.key ..."})
final class KeygenCommand implements Callable<Integer> {
  @Parameters(index = "0", paramLabel = "FILE", description = "Key file to create.")
  Path file;

  @Option(names = "--swarm", description = "Write a new pre-shared swarm key (refuses to overwrite one).")
  boolean swarm;

  @Override
  public Integer call() throws IOException {
    if (swarm) {
      if (Files.exists(file)) {
        throw new CliException(file + " exists; a swarm key is never overwritten");
      }
      SwarmKey key = SwarmKey.generate();
      Files.writeString(Files.createFile(file, PosixFilePermissions.asFileAttribute(
          PosixFilePermissions.fromString("rw-------"))), key.encode());
      System.out.println("created swarm key " + file + " fingerprint " + key.fingerprint());
      return 0;
    }
    boolean existed = Files.exists(file);
    Identity id = Identity.loadOrCreate(file);
    System.out.println((existed ? "existing " : "created ") + file + " peer " + PeerId.fromPublicKey(id.publicKeyProto()));
    return 0;
  }
}
