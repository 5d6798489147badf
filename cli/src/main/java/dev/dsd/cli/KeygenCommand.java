package dev.dsd.cli;

import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.crypto.Identity;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

@Command(
    name = "keygen",
    mixinStandardHelpOptions = true,
    description = "Create an Ed25519 identity key file (0600) and print its peer id; an existing file is only read.",
    footer = {"", "Example:", "  dsd keygen ~/.dsd/identity.key && dsd node --identity ~/.dsd/identity.key"})
final class KeygenCommand implements Callable<Integer> {
  @Parameters(index = "0", paramLabel = "FILE", description = "Key file to create.")
  Path file;

  @Override
  public Integer call() {
    boolean existed = Files.exists(file);
    Identity id = Identity.loadOrCreate(file);
    System.out.println((existed ? "existing " : "created ") + file + " peer " + PeerId.fromPublicKey(id.publicKeyProto()));
    return 0;
  }
}
