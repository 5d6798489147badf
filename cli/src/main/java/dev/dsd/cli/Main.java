package dev.dsd.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** Entry point of the {@code dsd} command; each verb is a picocli subcommand. */
@Command(
    name = "dsd",
    mixinStandardHelpOptions = true,
    version = "dsd 0.1.0",
    description = "Peer-to-peer LLM inference with speculative decoding across the pipeline.",
    subcommands = {GenerateCommand.class, NodeCommand.class, SwarmCommand.class, KeygenCommand.class, BenchCommand.class, SynthCommand.class, SimCommand.class,
        CommandLine.HelpCommand.class})
public final class Main implements Runnable {

  @Override
  public void run() {
    new CommandLine(this).usage(System.out);
  }

  public static void main(String[] args) {
    CommandLine cl = new CommandLine(new Main());
    // Errors users can act on are one line and exit code 2; anything else keeps its stack trace.
    cl.setExecutionExceptionHandler((ex, cmd, parsed) -> {
      if (ex instanceof CliException || ex instanceof dev.dsd.node.generate.GenerationException
          || ex instanceof dev.dsd.pipeline.model.ModelFormatException
          || ex instanceof dev.dsd.pipeline.runtime.RuntimeLimitException
          || ex instanceof IllegalArgumentException || ex instanceof dev.dsd.p2p.core.P2pException
          || ex instanceof java.io.IOException) {
        cmd.getErr().println("dsd: " + ex.getMessage());
        return 2;
      }
      throw ex;
    });
    System.exit(cl.execute(args));
  }
}
