package dev.dsd.cli;

import dev.dsd.pipeline.safetensors.DType;
import dev.dsd.pipeline.synth.SynthCheckpoint;
import dev.dsd.pipeline.synth.SynthShape;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(
    name = "synth",
    mixinStandardHelpOptions = true,
    description = {
      "Writes a random-weight checkpoint of a real model shape in Hugging Face layout (config.json,",
      "safetensors, sharded index for llama-2-7b, tokenizer.json copied from the bundled target), for",
      "benchmarks without a model hub. Memory stays small whatever the size."
    },
    footer = {"", "Example:", "  dsd synth --shape tinyllama-1.1b --out /tmp/tinyllama --dtype bf16"})
final class SynthCommand implements Callable<Integer> {
  @Option(names = "--shape", required = true,
      description = "tinyllama-1.1b, llama-3.2-1b, qwen2.5-1.5b or llama-2-7b.")
  String shape;

  @Option(names = "--out", required = true, paramLabel = "DIR", description = "Directory to write.")
  Path out;

  @Option(names = "--layers", description = "Fewer layers than the shape has (tests, quick runs).")
  Integer layers;

  @Option(names = "--dtype", defaultValue = "bf16", description = "f32, f16 or bf16 (default: ${DEFAULT-VALUE}).")
  String dtype;

  @Option(names = "--seed", defaultValue = "1", description = "Random seed (default: ${DEFAULT-VALUE}).")
  long seed;

  @Override
  public Integer call() throws Exception {
    SynthShape s = SynthShape.parse(shape);
    if (layers != null) {
      if (layers < 1 || layers > s.layers()) {
        throw new CliException("--layers must be 1.." + s.layers() + " for " + s.id());
      }
      s = s.withLayers(layers);
    }
    DType dt;
    try {
      dt = DType.valueOf(dtype.toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException e) {
      throw new CliException("--dtype must be f32, f16 or bf16, not " + dtype);
    }
    Path tokenizer = Defaults.targetModel().resolve("tokenizer.json");
    long t0 = System.nanoTime();
    SynthCheckpoint.Result r = SynthCheckpoint.write(s, out, dt, tokenizer, seed);
    System.out.printf("wrote %s: %s, %d layers x %d, vocab %d, %s, %.2f GB of weights in %d file(s), %.1f s%n",
        r.dir(), s.id(), s.layers(), s.hidden(), s.vocab(), dt, r.weightBytes() / 1e9, r.files().size(),
        (System.nanoTime() - t0) / 1e9);
    return 0;
  }
}
