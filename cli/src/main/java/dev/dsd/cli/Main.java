package dev.dsd.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** Entry point of the {@code dsd} command; each verb is a picocli subcommand. */
@Command(
    name = "dsd",
    mixinStandardHelpOptions = true,
    version = "dsd 0.1.0",
    description = "Peer-to-peer LLM inference with speculative decoding across the pipeline.",
    subcommands = {CommandLine.HelpCommand.class})
public final class Main implements Runnable {

  @Override
  public void run() {
    new CommandLine(this).usage(System.out);
  }

  public static void main(String[] args) {
    System.exit(new CommandLine(new Main()).execute(args));
  }
}
