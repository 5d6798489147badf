package dev.dsd.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dsd.node.generate.AdaptiveCalibration;
import dev.dsd.testnet.QualityBench;
import dev.dsd.verification.importance.ThresholdCalibration;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(
    name = "quality",
    mixinStandardHelpOptions = true,
    description = {
      "Adaptive verification judged by quality next to speed: the pair generates in this process,",
      "losslessly and with adaptive verification, greedy and sampled, on prompts that stop before a",
      "line break (models/quality-prompts.json). Per mode: tok/s, acceptance, tokens per round, next-line",
      "exact match and character similarity against the file's real next line, distinct 3/4-grams, and against the lossless output",
      "the first differing token and the edit distance.",
      "Without --calibrate: the held-out prompts, at the model's calibrated gap (or --gaps).",
      "With --calibrate: the training prompts, sweeping --gaps; the largest gap whose quality stays",
      "within the budget (and every smaller one's) is written to the target's " + AdaptiveCalibration.FILE + "."
    },
    footer = {"", "Examples:", "  dsd bench quality --calibrate --json calibration.json",
        "  dsd bench quality --json quality.json"})
final class BenchQualityCommand implements Callable<Integer> {
  @Spec
  CommandSpec spec;

  @Option(names = "--model", paramLabel = "DIR", description = "Target (default: bundled).")
  Path model;

  @Option(names = "--draft", paramLabel = "DIR", description = "Draft (default: bundled).")
  Path draft;

  @Option(names = "--prompts-file", paramLabel = "FILE", description = "Prompts (default: models/quality-prompts.json).")
  Path promptsFile;

  @Option(names = "--prompts", defaultValue = "0", description = "Use the first N prompts of the set (default: all).")
  int prompts;

  @Option(names = "--max-tokens", defaultValue = "96", description = "New tokens per prompt (default: ${DEFAULT-VALUE}).")
  int maxTokens;

  @Option(names = "--spec", defaultValue = "4", description = "Draft window k (default: ${DEFAULT-VALUE}).")
  int k;

  @Option(names = "--threads", defaultValue = "1", description = "ONNX Runtime threads (default: ${DEFAULT-VALUE}).")
  int threads;

  @Option(names = "--gaps", split = ",", description = {"Adaptive max gaps to run (default: the model's calibrated",
      "gap; with --calibrate 0.01,0.02,0.05,0.1,0.2)."})
  List<Double> gaps;

  @Option(names = "--temperatures", split = ",", defaultValue = "0,0.8",
      description = "0 = greedy; others sample with --top-p (default: ${DEFAULT-VALUE}).")
  List<Double> temperatures;

  @Option(names = "--top-p", defaultValue = "0.95", description = "Nucleus mass when sampling (default: ${DEFAULT-VALUE}).")
  double topP;

  @Option(names = "--seed", defaultValue = "1", description = "Run order and sampling seed (default: ${DEFAULT-VALUE}).")
  long seed;

  @Option(names = "--calibrate", description = "Sweep the gaps on the training prompts and write the chosen one.")
  boolean calibrate;

  @Option(names = "--budget-line", defaultValue = "0.025",
      description = "Most next-line exact match may drop below lossless (default: ${DEFAULT-VALUE}).")
  double budgetLine;

  @Option(names = "--budget-similarity", defaultValue = "0.02",
      description = "Most next-line similarity may drop below lossless (default: ${DEFAULT-VALUE}).")
  double budgetSimilarity;

  @Option(names = "--budget-distinct4", defaultValue = "0.02",
      description = "Most distinct 4-grams may drop below lossless (default: ${DEFAULT-VALUE}).")
  double budgetDistinct4;

  @Option(names = "--write", paramLabel = "FILE",
      description = "With --calibrate: where the chosen gap goes (default: the target's " + AdaptiveCalibration.FILE + ").")
  Path write;

  @Option(names = "--json", paramLabel = "FILE", description = "Also write the rows as JSON here.")
  Path json;

  @Override
  public Integer call() throws Exception {
    Path target = model != null ? model : Defaults.targetModel();
    Path draftDir = draft != null ? draft : Defaults.draftModel();
    if (draftDir == null) {
      throw new CliException("no --draft given and the bundled draft is missing");
    }
    Path file = promptsFile != null ? promptsFile : Defaults.home().resolve("models").resolve("quality-prompts.json");
    if (!Files.isRegularFile(file)) {
      throw new CliException("the prompts file " + file + " is missing (tools/train/quality_prompts.py writes it)");
    }
    String set = calibrate ? "calibration" : "heldout";
    List<QualityBench.Prompt> all = QualityBench.read(file, set);
    if (prompts < 0 || prompts > all.size()) {
      throw new CliException("--prompts must be 0 (all) .. " + all.size() + ", got " + prompts);
    }
    if (k < 1 || maxTokens < 1) {
      throw new CliException("--spec and --max-tokens must be at least 1");
    }
    List<Double> sweep = gaps != null ? gaps
        : calibrate ? List.of(0.01, 0.02, 0.05, 0.1, 0.2) : List.of(AdaptiveCalibration.maxGap(target));
    for (double g : sweep) {
      if (!(g >= 0 && g < 1)) {
        throw new CliException("--gaps must be in [0, 1), got " + g);
      }
    }
    var c = new QualityBench.Config(target, draftDir, prompts == 0 ? all : all.subList(0, prompts), maxTokens, k,
        threads, sweep, temperatures, topP, seed);
    String command = "dsd " + String.join(" ", spec.commandLine().getParseResult().originalArgs());
    System.out.println(command + "  (" + c.prompts().size() + " " + set + " prompts from " + file + ")");
    List<QualityBench.Row> rows = QualityBench.run(c, System.out::println);
    System.out.println(QualityBench.header());
    rows.forEach(r -> System.out.println(QualityBench.format(r)));
    ObjectNode extra = null;
    if (calibrate) {
      extra = calibrate(rows, target, draftDir, command, c.prompts().size());
    }
    if (json != null) {
      QualityBench.writeJson(rows, c, set, command, extra, json);
      System.out.println("wrote " + json.toAbsolutePath());
    }
    return 0;
  }

  private ObjectNode calibrate(List<QualityBench.Row> rows, Path target, Path draftDir, String command, int n)
      throws java.io.IOException {
    List<ThresholdCalibration.Point> points = new ArrayList<>();
    for (QualityBench.Row r : rows) {
      points.add(new ThresholdCalibration.Point(r.sampling(), r.maxGap(), r.nextLineExact(), r.nextLineSimilarity(),
          r.distinct4(), r.acceptance()));
    }
    var budget = new ThresholdCalibration.Budget(budgetLine, budgetSimilarity, budgetDistinct4);
    ThresholdCalibration.Choice choice = ThresholdCalibration.choose(points, budget);
    choice.verdicts().forEach(System.out::println);
    ObjectMapper m = new ObjectMapper();
    ObjectNode o = m.createObjectNode();
    o.put("max_gap", choice.maxGap());
    o.put("rule", "a rejected draft of an unimportant class is kept where it trails the target's argmax by less "
        + "than max_gap in probability (the argmax itself, rejected under sampling, where the target's top-2 margin "
        + "is below max_gap); dev.dsd.verification.acceptance.AdaptiveAcceptance");
    o.put("chosen_by", "largest gap such that it and every smaller gap swept keep next-line exact match and "
        + "similarity and distinct 4-grams within the budget of lossless and raise acceptance, for every sampling");
    o.putObject("budget").put("next_line_exact_drop", budgetLine).put("next_line_similarity_drop", budgetSimilarity)
        .put("distinct4_drop", budgetDistinct4);
    o.put("draft", draftDir.getFileName().toString());
    o.put("calibration_prompts", n);
    o.put("command", command);
    var verdicts = o.putArray("verdicts");
    choice.verdicts().forEach(verdicts::add);
    Path out = write != null ? write : target.resolve(AdaptiveCalibration.FILE);
    Files.writeString(out, m.writerWithDefaultPrettyPrinter().writeValueAsString(o) + "\n");
    System.out.println("chosen max gap " + choice.maxGap() + ", wrote " + out.toAbsolutePath());
    ObjectNode extra = m.createObjectNode();
    extra.set("calibration", o);
    return extra;
  }
}
