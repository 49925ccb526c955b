using System.Diagnostics;
using System.Globalization;
using AlexNetCompiler.Cpu;
using AlexNetCompiler.Onnx;
using AlexNetCompiler.Training;
using Microsoft.ML.OnnxRuntime;
using TorchSharp;
using static TorchSharp.torch;

namespace AlexNetCompiler.Bench;

/// <summary>
/// The `bench` command: the project's generated networks against TorchSharp (libtorch CPU) and, for the forward pass,
/// ONNX Runtime (CPU provider, all graph optimisations) running the network's own ONNX export; same threads, batch,
/// weights and inputs. Every measurement — one system, one network, one batch, forward or training step (forward,
/// loss, backward, SGD with momentum and weight decay, dropout on) — runs in a fresh child process, so no system's
/// allocations, thread pools or caches are left behind for the next; the children run in an order shuffled by a
/// seed that the output prints (<c>--seed</c> repeats it). Each child warms its action until its times settle (see
/// <see cref="Timing"/>) and then times it <c>--reps</c> times; with <c>--rounds R</c> every measurement runs R times
/// (R processes), all shuffled together, and its figures pool the timed calls of all R. The machine's ceiling comes
/// from <see cref="FmaCeiling"/> in a child of its own, measured before and after the cells. Peak memory comes from further children that run
/// two training steps and report the kernel's RSS high-water mark.
/// </summary>
internal static class NetworkBench
{
    private static readonly string[] Systems = ["ours", "torch", "ort"];
    private static readonly string[] Modes = ["forward", "train"];

    private sealed record Cell(string System, string Mode, BenchNetwork Net, int Batch)
    {
        public string Label => $"{Net.Key} b{Batch} {Mode} {SystemName(System)}";
    }

    private sealed record Measured(Cell Cell, int Warmups, bool Stable, TimingSummary Seconds)
    {
        public double ImagesPerSecond => Cell.Batch / Seconds.Median;
    }

    public static int Run(int threads, int[] batches, string[] networks, int repetitions, int rounds, bool measureMemory, int seed)
    {
        if (repetitions < 5) throw new ArgumentException("--reps must be at least 5 (min/median/max over at least five runs).");
        Console.WriteLine($"bench: {threads} thread(s) for every system (CpuContext({threads}); torch.set_num_threads({threads}); ONNX Runtime intra-op {threads}, inter-op 1).");
        Console.WriteLine($"{rounds} round(s); each measurement in its own process, warmed for at least {Timing.MinWarmupTime.TotalSeconds:F0} s and until {Timing.StableWindow} consecutive samples agree within {Timing.StableSpread:P0} (at most {Timing.MaxWarmups} samples or {Timing.MaxWarmupTime.TotalSeconds:F0} s), then {repetitions} timed samples; a sample is one call, or a run of calls lasting at least {Timing.MinSampleTime.TotalMilliseconds:F0} ms divided by their number; min/median/max over the timed samples of all rounds.");
        Console.WriteLine($"GEMM micro-kernel: {Gemm.BestKernel}; libtorch {torch.__version__}; {Environment.ProcessorCount} logical processors ({ProcessorName()}); load average {LoadAverage()}; order seed {seed}.");

        (double ceilingBefore, double ceilingMedian) = MeasureCeiling(threads);
        Console.WriteLine($"Ceiling ({FmaCeiling.VectorName} FMA on {threads} thread(s)): {ceilingBefore:F1} GFLOP/s best, {ceilingMedian:F1} median.");

        BenchNetwork[] nets = networks.Select(BenchNetwork.Find).ToArray();
        var cells = (from net in nets
                     from batch in batches
                     from mode in Modes
                     from system in Systems
                     where !(system == "ort" && mode == "train") // ONNX Runtime runs inference only
                     select new Cell(system, mode, net, batch)).ToList();
        // Every round runs every cell once, all rounds' cells shuffled together: a slow spell of the machine then
        // falls on a mix of systems instead of on one of them.
        var runs = Enumerable.Range(0, rounds).SelectMany(_ => cells).ToList();
        Shuffle(runs, new Random(seed));

        var timings = cells.ToDictionary(c => c, _ => new List<double>());
        var warmups = cells.ToDictionary(c => c, _ => new List<int>());
        var stable = cells.ToDictionary(c => c, _ => true);
        for (int i = 0; i < runs.Count; i++)
        {
            Cell cell = runs[i];
            (int warm, bool settled, double[] seconds) = RunCell(cell, threads, repetitions);
            timings[cell].AddRange(seconds);
            warmups[cell].Add(warm);
            stable[cell] &= settled;
            Console.WriteLine(string.Format(CultureInfo.InvariantCulture,
                "  [{0,2}/{1}] {2,-40} {3,9:F2} ms median ({4,3} warm-up samples{5})",
                i + 1, runs.Count, cell.Label, TimingSummary.Of(seconds).Median * 1e3, warm, settled ? "" : ", NOT STABLE"));
        }
        var results = cells.Select(c => new Measured(c, warmups[c].Min(), stable[c], TimingSummary.Of(timings[c]))).ToList();

        (double ceilingAfter, _) = MeasureCeiling(threads);
        double ceiling = Math.Max(ceilingBefore, ceilingAfter);
        Console.WriteLine($"Ceiling measured again: {ceilingAfter:F1} GFLOP/s best; the tables divide by the higher, {ceiling:F1}. Load average now {LoadAverage()}.");
        Console.WriteLine();
        PrintTable(results, nets, batches, ceiling);
        Console.WriteLine();
        PrintMarkdown(results, nets, batches, ceiling);

        if (measureMemory)
        {
            Console.WriteLine();
            Console.WriteLine("Peak memory of a training step (2 steps in a fresh child process each; VmHWM = resident high-water");
            Console.WriteLine("mark; 'above start' subtracts the RSS just before the model is built, after the runtime and for");
            Console.WriteLine("TorchSharp libtorch are loaded):");
            foreach (BenchNetwork net in nets)
            {
                foreach (int batch in batches)
                {
                    var o = Probe("ours", net.Key, batch, threads);
                    var t = Probe("torch", net.Key, batch, threads);
                    Console.WriteLine(string.Format(CultureInfo.InvariantCulture,
                        "  {0,-12} batch {1,3}: project {2,8:F1} MiB peak ({3,7:F1} above start)   TorchSharp {4,8:F1} MiB peak ({5,7:F1} above start)   ratio (above start) {6:F2}",
                        net.Key, batch, o.PeakKiB / 1024.0, (o.PeakKiB - o.StartKiB) / 1024.0, t.PeakKiB / 1024.0, (t.PeakKiB - t.StartKiB) / 1024.0,
                        (o.PeakKiB - o.StartKiB) / (double)Math.Max(1, t.PeakKiB - t.StartKiB)));
                }
            }
        }
        return 0;
    }

    private static string SystemName(string system) => system switch
    {
        "ours" => "project",
        "torch" => "TorchSharp",
        "ort" => "ONNX Runtime",
        _ => throw new ArgumentException($"Unknown system '{system}'."),
    };

    private static double FlopsPerImage(Cell c) =>
        c.Mode == "forward" ? Flops.ForwardPerImage(c.Net.Descriptor) : Flops.TrainingStepPerImage(c.Net.Descriptor);

    private static void PrintTable(List<Measured> results, BenchNetwork[] nets, int[] batches, double ceiling)
    {
        Console.WriteLine("network      batch mode     system          ms: min / median / max      img/s  GFLOP/s  of ceiling  project's speed-up (range)");
        foreach (BenchNetwork net in nets)
        foreach (int batch in batches)
        foreach (string mode in Modes)
        {
            Measured? ours = Find(results, "ours", mode, net, batch);
            foreach (string system in Systems)
            {
                Measured? m = Find(results, system, mode, net, batch);
                if (m is null) continue;
                double gflops = FlopsPerImage(m.Cell) * m.ImagesPerSecond / 1e9;
                string versus = system == "ours" || ours is null ? "" : string.Format(CultureInfo.InvariantCulture,
                    "{0:F2}x ({1:F2}-{2:F2})", m.Seconds.Median / ours.Seconds.Median, m.Seconds.Min / ours.Seconds.Max, m.Seconds.Max / ours.Seconds.Min);
                Console.WriteLine(string.Format(CultureInfo.InvariantCulture,
                    "{0,-12} {1,5} {2,-8} {3,-13} {4,8:F2} / {5,8:F2} / {6,8:F2} {7,9:F1} {8,8:F1} {9,10:P0}  {10}",
                    net.Key, batch, mode, SystemName(system), m.Seconds.Min * 1e3, m.Seconds.Median * 1e3, m.Seconds.Max * 1e3,
                    m.ImagesPerSecond, gflops, gflops / ceiling, versus));
            }
        }
    }

    private static void PrintMarkdown(List<Measured> results, BenchNetwork[] nets, int[] batches, double ceiling)
    {
        Console.WriteLine("| network, batch | mode | project img/s (min-max) | TorchSharp | ONNX Runtime | project vs TorchSharp | project vs ONNX Runtime | project GFLOP/s (of ceiling) |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        foreach (BenchNetwork net in nets)
        foreach (int batch in batches)
        foreach (string mode in Modes)
        {
            Measured? ours = Find(results, "ours", mode, net, batch);
            if (ours is null) continue;
            Measured? torchCell = Find(results, "torch", mode, net, batch), ort = Find(results, "ort", mode, net, batch);
            double gflops = FlopsPerImage(ours.Cell) * ours.ImagesPerSecond / 1e9;
            Console.WriteLine(string.Format(CultureInfo.InvariantCulture, "| {0}, {1} | {2} | {3} | {4} | {5} | {6} | {7} | {8:F0} ({9:P0}) |",
                net.Key, batch, mode, Rate(ours), Rate(torchCell), Rate(ort), Ratio(ours, torchCell), Ratio(ours, ort), gflops, gflops / ceiling));
        }

        static string Rate(Measured? m) => m is null ? "-" : string.Format(CultureInfo.InvariantCulture,
            "{0:F1} ({1:F1}-{2:F1})", m.ImagesPerSecond, m.Cell.Batch / m.Seconds.Max, m.Cell.Batch / m.Seconds.Min);

        static string Ratio(Measured ours, Measured? peer) => peer is null ? "-" : string.Format(CultureInfo.InvariantCulture,
            "**{0:F2}x**", peer.Seconds.Median / ours.Seconds.Median);
    }

    private static Measured? Find(List<Measured> results, string system, string mode, BenchNetwork net, int batch) =>
        results.FirstOrDefault(r => r.Cell.System == system && r.Cell.Mode == mode && r.Cell.Net == net && r.Cell.Batch == batch);

    private static void Shuffle<T>(List<T> items, Random random)
    {
        for (int i = items.Count - 1; i > 0; i--)
        {
            int j = random.Next(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    private static (double Best, double Median) MeasureCeiling(int threads)
    {
        string line = RunChild("ceiling ", "ceiling", threads.ToString(CultureInfo.InvariantCulture));
        string[] parts = line.Split(' ');
        return (double.Parse(parts[1], CultureInfo.InvariantCulture), double.Parse(parts[2], CultureInfo.InvariantCulture));
    }

    private static (int Warmups, bool Stable, double[] Seconds) RunCell(Cell cell, int threads, int repetitions)
    {
        string line = RunChild("cell ", "cell", cell.System, cell.Mode, cell.Net.Key,
            cell.Batch.ToString(CultureInfo.InvariantCulture), threads.ToString(CultureInfo.InvariantCulture),
            repetitions.ToString(CultureInfo.InvariantCulture));
        // "cell <warm-up calls> <stable> <seconds,seconds,...>"
        string[] parts = line.Split(' ');
        double[] seconds = parts[3].Split(',').Select(s => double.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        return (int.Parse(parts[1], CultureInfo.InvariantCulture), parts[2] == "stable", seconds);
    }

    /// <summary>Child process: `ceiling THREADS`, prints "ceiling BEST MEDIAN" (GFLOP/s).</summary>
    public static int CeilingChild(int threads)
    {
        (double best, double median) = FmaCeiling.Measure(threads);
        Console.WriteLine(string.Format(CultureInfo.InvariantCulture, "ceiling {0} {1}", best, median));
        return 0;
    }

    /// <summary>
    /// Child process: `cell SYSTEM MODE NET BATCH THREADS REPS`: builds one system with the bench's weights and inputs,
    /// warms and times one action, prints "cell WARMUPS stable|unstable SECONDS,...". Only the measured system's
    /// libraries are loaded (the ONNX and TorchSharp children build the project's network only to take its weights).
    /// </summary>
    public static int CellChild(string system, string mode, string key, int batch, int threads, int repetitions)
    {
        BenchNetwork net = BenchNetwork.Find(key);
        NetworkDescriptor d = net.Descriptor;
        float[] images = BenchSetup.Images(d, batch);
        int[] labels = BenchSetup.Labels(d, batch);
        Timing.Result result;
        switch (system, mode)
        {
            case ("ours", _):
            {
                using var ctx = BenchSetup.Context(threads);
                INetwork ours = BenchSetup.CreateOurs(net, batch, ctx);
                var logits = new float[batch * d.ClassCount];
                var sgd = new Sgd(ours.Parameters.Length, BenchSetup.Sgd);
                ulong step = 0, nonFinite = 0;
                result = mode == "forward"
                    ? Timing.WarmThenTime(repetitions, () => ours.Forward(images, batch, logits))
                    : Timing.WarmThenTime(repetitions, () =>
                    {
                        if (!float.IsFinite(ours.TrainStep(images, labels, batch, sgd, BenchSetup.Seed + step++))) nonFinite++;
                    });
                if (nonFinite > 0)
                {
                    // Such a step updates nothing, so it is cheaper than a training step: its time would flatter us.
                    Console.Error.WriteLine($"bench: {key} at batch {batch}: {nonFinite} of {step} training steps had a non-finite loss " +
                        "and updated nothing; lower BenchSetup.Sgd's learning rate.");
                    return 3;
                }
                break;
            }
            case ("torch", _):
            {
                torch.set_num_threads(threads);
                float[] parameters = BenchSetup.Parameters(d);
                using var module = BenchSetup.CreateTorch(net, parameters);
                parameters = null!;
                using var optimizer = BenchSetup.TorchSgd(module);
                using Tensor x = BenchSetup.TorchImages(d, images, batch);
                using Tensor y = BenchSetup.TorchLabels(labels);
                result = mode == "forward"
                    ? Timing.WarmThenTime(repetitions, () => BenchSetup.TorchForward(module, x))
                    : Timing.WarmThenTime(repetitions, () => BenchSetup.TorchTrainStep(module, optimizer, x, y));
                break;
            }
            case ("ort", "forward"):
                result = OnnxRuntimeForward(net, images, batch, threads, repetitions);
                break;
            default:
                throw new ArgumentException($"No such measurement: {system} {mode}.");
        }
        Console.WriteLine("cell " + result.Warmups.ToString(CultureInfo.InvariantCulture) + " " + (result.Stable ? "stable" : "unstable") + " " +
            string.Join(",", result.Seconds.Select(Timing.Format)));
        return 0;
    }

    /// <summary>
    /// ONNX Runtime's forward on the network's own export (the bench's weights): CPU provider, all graph
    /// optimisations, the bench's thread count for its intra-op pool and one inter-op thread.
    /// </summary>
    private static Timing.Result OnnxRuntimeForward(BenchNetwork net, float[] images, int batch, int threads, int repetitions) =>
        WithOnnxRuntimeForward(net, images, batch, threads, profilePrefix: null, (_, run) => Timing.WarmThenTime(repetitions, run));

    /// <summary>
    /// `ort-layers --nets NET --batches B`: ONNX Runtime's own per-node profile of its forward pass (the same session
    /// options as the bench's cells), warmed as a cell is and then run for the profile: each node's median time in
    /// execution order. Beside `kernels` (ours, per layer) it shows where the two differ. Not part of the table.
    /// </summary>
    public static int OrtLayers(string key, int batch, int threads, int runs)
    {
        BenchNetwork net = BenchNetwork.Find(key);
        float[] images = BenchSetup.Images(net.Descriptor, batch);
        string prefix = Path.Combine(Path.GetTempPath(), $"anc-ort-layers-{Environment.ProcessId}-{net.Key}");
        string profile = WithOnnxRuntimeForward(net, images, batch, threads, prefix, (session, run) =>
        {
            Timing.WarmThenTime(1, run);
            for (int i = 0; i < runs; i++) run();
            return session.EndProfiling();
        });
        try
        {
            // The profile holds the warm-up too: only the last runs count.
            PrintOrtProfile(profile, key, batch, threads, runs);
            return 0;
        }
        finally
        {
            File.Delete(profile);
        }
    }

    /// <summary>
    /// Exports the network (the bench's weights) to a temporary ONNX file, opens it in ONNX Runtime with the bench's
    /// session options (profiling into <paramref name="profilePrefix"/> when given) and hands <paramref name="use"/> the
    /// session and one forward call on the images.
    /// </summary>
    private static T WithOnnxRuntimeForward<T>(BenchNetwork net, float[] images, int batch, int threads, string? profilePrefix,
        Func<InferenceSession, Action, T> use)
    {
        string model = Path.Combine(Path.GetTempPath(), $"anc-bench-{Environment.ProcessId}-{net.Key}.onnx");
        try
        {
            using (var ctx = new CpuContext(1))
            {
                BenchSetup.CreateOurs(net, 1, ctx).ExportOnnx(model);
            }
            GC.Collect();
            using var options = new SessionOptions
            {
                IntraOpNumThreads = threads,
                InterOpNumThreads = 1,
                GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            };
            if (profilePrefix is not null)
            {
                options.EnableProfiling = true;
                options.ProfileOutputPathPrefix = profilePrefix;
            }
            using var session = new InferenceSession(model, options);
            NetworkDescriptor d = net.Descriptor;
            using OrtValue input = OrtValue.CreateTensorValueFromMemory(images, [batch, d.InputChannels, d.InputHeight, d.InputWidth]);
            using var runOptions = new RunOptions();
            string[] inputNames = [OnnxExporter.InputName], outputNames = [session.OutputNames.Single()];
            OrtValue[] inputs = [input];
            return use(session, () =>
            {
                using IDisposableReadOnlyCollection<OrtValue> outputs = session.Run(runOptions, inputNames, inputs, outputNames);
            });
        }
        finally
        {
            File.Delete(model);
        }
    }

    /// <summary>Each node's median "kernel time" in an ONNX Runtime profile (Chrome trace format), in execution order.</summary>
    private static void PrintOrtProfile(string path, string key, int batch, int threads, int lastRuns)
    {
        using var document = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(path));
        System.Text.Json.JsonElement[] events = document.RootElement.EnumerateArray().ToArray();
        static string Text(System.Text.Json.JsonElement e, string property) => e.GetProperty(property).GetString() ?? "";
        // The start of the first of the last runs: node events before it belong to the warm-up.
        double[] runStarts = events.Where(e => Text(e, "cat") == "Session" && Text(e, "name") == "model_run")
            .Select(e => e.GetProperty("ts").GetDouble()).Order().ToArray();
        double from = runStarts.Length <= lastRuns ? double.MinValue : runStarts[^lastRuns];
        var order = new List<string>();
        var times = new Dictionary<string, (string Op, List<double> Micros)>();
        var runs = new List<double>();
        foreach (System.Text.Json.JsonElement e in events)
        {
            if (e.GetProperty("ts").GetDouble() < from) continue;
            string category = Text(e, "cat"), name = Text(e, "name");
            double micros = e.GetProperty("dur").GetDouble();
            if (category == "Session" && name == "model_run") runs.Add(micros);
            if (category != "Node" || !name.EndsWith("_kernel_time", StringComparison.Ordinal)) continue;
            string node = name[..^"_kernel_time".Length];
            if (!times.TryGetValue(node, out var entry))
            {
                string op = e.TryGetProperty("args", out var args) && args.TryGetProperty("op_name", out var o) ? o.GetString() ?? "" : "";
                entry = (op, new List<double>());
                times[node] = entry;
                order.Add(node);
            }
            entry.Micros.Add(micros);
        }
        static double Median(List<double> values)
        {
            values.Sort();
            int n = values.Count;
            return n == 0 ? 0 : n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
        }
        Console.WriteLine($"ONNX Runtime {OrtEnv.Instance().GetVersionString()}, {key} at batch {batch}, {threads} thread(s): " +
            $"{runs.Count} runs, median {Median(runs) / 1e3:F2} ms; each node's median:");
        double sum = 0;
        foreach (string node in order)
        {
            double median = Median(times[node].Micros);
            sum += median;
            Console.WriteLine($"  {node,-40} {times[node].Op,-16} {median / 1e3,8:F2} ms");
        }
        Console.WriteLine($"  {"sum of the nodes",-57} {sum / 1e3,8:F2} ms");
    }

    /// <summary>The first "model name" of /proc/cpuinfo: the ratios in a run hold for that processor, not for others.</summary>
    private static string ProcessorName()
    {
        try
        {
            string? line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
            return line is null ? "processor unknown" : line[(line.IndexOf(':') + 1)..].Trim();
        }
        catch (IOException) { return "processor unknown"; }
    }

    private static string LoadAverage()
    {
        try { return File.ReadAllText("/proc/loadavg").Split(' ')[0]; }
        catch (IOException) { return "unknown"; }
    }

    private static (long StartKiB, long PeakKiB) Probe(string impl, string net, int batch, int threads)
    {
        string line = RunChild("memory ", "memory-probe", impl, net, batch.ToString(CultureInfo.InvariantCulture), threads.ToString(CultureInfo.InvariantCulture));
        string[] parts = line.Split(' ');
        return (long.Parse(parts[1], CultureInfo.InvariantCulture), long.Parse(parts[2], CultureInfo.InvariantCulture));
    }

    /// <summary>Runs this program again with the arguments and returns its one output line that starts with the prefix.</summary>
    private static string RunChild(string linePrefix, params string[] arguments)
    {
        string self = Environment.ProcessPath ?? throw new InvalidOperationException("Cannot locate the bench executable.");
        var psi = new ProcessStartInfo(self) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        // Under `dotnet bench.dll` the process is the dotnet host: pass the assembly first.
        if (Path.GetFileNameWithoutExtension(self) == "dotnet") psi.ArgumentList.Add(typeof(NetworkBench).Assembly.Location);
        foreach (string a in arguments) psi.ArgumentList.Add(a);
        using Process child = Process.Start(psi)!;
        Task<string> error = child.StandardError.ReadToEndAsync();
        string output = child.StandardOutput.ReadToEnd();
        child.WaitForExit();
        string? line = output.Split('\n').FirstOrDefault(l => l.StartsWith(linePrefix, StringComparison.Ordinal));
        if (child.ExitCode != 0 || line is null)
            throw new BenchChildFailedException($"child '{string.Join(' ', arguments)}' failed (exit {child.ExitCode}): {(error.Result + output).Trim()}");
        return line.Trim();
    }

    /// <summary>Child process: build one implementation, run two training steps, print "memory startKiB peakKiB".</summary>
    public static int MemoryProbe(string impl, string key, int batch, int threads)
    {
        BenchNetwork net = BenchNetwork.Find(key);
        float[] images = BenchSetup.Images(net.Descriptor, batch);
        int[] labels = BenchSetup.Labels(net.Descriptor, batch);
        if (impl == "ours")
        {
            long start = ReadStatusKiB("VmRSS");
            using var ctx = BenchSetup.Context(threads);
            INetwork ours = BenchSetup.CreateOurs(net, batch, ctx);
            var sgd = new Sgd(ours.Parameters.Length, BenchSetup.Sgd);
            for (ulong i = 0; i < 2; i++) ours.TrainStep(images, labels, batch, sgd, BenchSetup.Seed + i);
            Console.WriteLine($"memory {start} {ReadStatusKiB("VmHWM")}");
            GC.KeepAlive(ours);
            return 0;
        }
        if (impl == "torch")
        {
            torch.set_num_threads(threads);
            using (torch.ones(1).add(1)) { } // load libtorch before the start mark
            long start = ReadStatusKiB("VmRSS");
            // Torch's own initialisation: the weights' values do not change the memory used.
            using var module = net.CreateTorch();
            using var optimizer = BenchSetup.TorchSgd(module);
            using Tensor x = BenchSetup.TorchImages(net.Descriptor, images, batch);
            using Tensor y = BenchSetup.TorchLabels(labels);
            for (int i = 0; i < 2; i++) BenchSetup.TorchTrainStep(module, optimizer, x, y);
            Console.WriteLine($"memory {start} {ReadStatusKiB("VmHWM")}");
            return 0;
        }
        throw new ArgumentException($"Unknown implementation '{impl}' (ours, torch).");
    }

    private static long ReadStatusKiB(string field)
    {
        foreach (string line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
                return long.Parse(line[(field.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
        }
        throw new InvalidOperationException($"/proc/self/status has no {field} (Linux only).");
    }
}

/// <summary>A measurement's child process failed; the message carries what it printed.</summary>
internal sealed class BenchChildFailedException(string message) : Exception(message);
