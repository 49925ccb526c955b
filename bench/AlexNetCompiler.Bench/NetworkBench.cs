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
/// The `bench` command: the project's generated networks against TorchSharp (libtorch CPU) in one process, same
/// threads, batch, weights and inputs, and for the forward pass also against ONNX Runtime (CPU provider, graph
/// optimisation on) running the network's own ONNX export; forward (inference) and training step (forward, loss, backward, SGD with
/// momentum and weight decay, dropout on), at each batch. Peak memory comes from child processes (one per
/// implementation, network, batch) that run two training steps and report the kernel's RSS high-water mark.
/// </summary>
internal static class NetworkBench
{
    public static int Run(int threads, int[] batches, string[] networks, int repetitions, bool measureMemory)
    {
        torch.set_num_threads(threads);
        using var ctx = new CpuContext(threads);
        Console.WriteLine($"bench: {threads} thread(s) for both (torch.set_num_threads({threads}); CpuContext({threads})), {repetitions} timed repetitions after 1 warm-up, median reported.");
        Console.WriteLine($"GEMM micro-kernel: {Gemm.BestKernel}; libtorch {torch.__version__}; {Environment.ProcessorCount} logical processors; load average now {LoadAverage()}.");
        var rows = new List<string>();
        foreach (string key in networks)
        {
            BenchNetwork net = BenchNetwork.Find(key);
            foreach (int batch in batches)
            {
                float[] images = BenchSetup.Images(net.Descriptor, batch);
                int[] labels = BenchSetup.Labels(net.Descriptor, batch);
                INetwork ours = BenchSetup.CreateOurs(net, batch, ctx);
                var logits = new float[batch * net.Descriptor.ClassCount];
                var sgd = new Sgd(ours.Parameters.Length, BenchSetup.Sgd);
                using var module = BenchSetup.CreateTorch(net, ours.Parameters);
                using var optimizer = BenchSetup.TorchSgd(module);
                using Tensor x = BenchSetup.TorchImages(net.Descriptor, images, batch);
                using Tensor y = BenchSetup.TorchLabels(labels);

                // Forward first (before any update, so both start from identical weights), then the training step.
                double oursForward = Median(repetitions, () => ours.Forward(images, batch, logits));
                double torchForward = Median(repetitions, () => BenchSetup.TorchForward(module, x));
                double ortForward = OnnxRuntimeForward(ours, images, batch, threads, repetitions);
                ulong step = 0;
                double oursTrain = Median(repetitions, () => ours.TrainStep(images, labels, batch, sgd, BenchSetup.Seed + step++));
                double torchTrain = Median(repetitions, () => BenchSetup.TorchTrainStep(module, optimizer, x, y));
                rows.Add(Row(net.Key, batch, "forward", oursForward, torchForward));
                rows.Add(Row(net.Key, batch, "forward", oursForward, ortForward, "ONNX Runtime"));
                rows.Add(Row(net.Key, batch, "train step", oursTrain, torchTrain));
                Console.WriteLine(rows[^3]);
                Console.WriteLine(rows[^2]);
                Console.WriteLine(rows[^1]);
                ours = null!;
                GC.Collect();
            }
        }

        if (measureMemory)
        {
            Console.WriteLine();
            Console.WriteLine("Peak memory of a training step (2 steps in a fresh child process each; VmHWM = resident high-water");
            Console.WriteLine("mark; 'above start' subtracts the RSS just before the model is built, after the runtime and for");
            Console.WriteLine("TorchSharp libtorch are loaded):");
            foreach (string key in networks)
            {
                foreach (int batch in batches)
                {
                    var o = Probe("ours", key, batch, threads);
                    var t = Probe("torch", key, batch, threads);
                    Console.WriteLine(string.Format(CultureInfo.InvariantCulture,
                        "  {0,-12} batch {1,3}: project {2,8:F1} MiB peak ({3,7:F1} above start)   TorchSharp {4,8:F1} MiB peak ({5,7:F1} above start)   ratio (above start) {6:F2}",
                        key, batch, o.PeakKiB / 1024.0, (o.PeakKiB - o.StartKiB) / 1024.0, t.PeakKiB / 1024.0, (t.PeakKiB - t.StartKiB) / 1024.0,
                        (o.PeakKiB - o.StartKiB) / (double)Math.Max(1, t.PeakKiB - t.StartKiB)));
                }
            }
        }
        return 0;
    }

    private static string Row(string net, int batch, string what, double ours, double peer, string peerName = "TorchSharp") =>
        string.Format(CultureInfo.InvariantCulture,
            "  {0,-12} batch {1,3} {2,-10}: project {3,9:F1} ms {4,8:F1} img/s   {8,-12} {5,9:F1} ms {6,8:F1} img/s   speed-up {7,5:F2}x",
            net, batch, what, ours * 1e3, batch / ours, peer * 1e3, batch / peer, peer / ours, peerName);

    /// <summary>
    /// ONNX Runtime's forward on the network's own export (the same weights): CPU provider, all graph optimisations,
    /// the bench's thread count for its intra-op pool and one inter-op thread. Median seconds per call.
    /// </summary>
    private static double OnnxRuntimeForward(INetwork ours, float[] images, int batch, int threads, int repetitions)
    {
        string model = Path.Combine(Path.GetTempPath(), $"anc-bench-{Environment.ProcessId}-{ours.Descriptor.Name}.onnx");
        try
        {
            ours.ExportOnnx(model);
            using var options = new SessionOptions
            {
                IntraOpNumThreads = threads,
                InterOpNumThreads = 1,
                GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            };
            using var session = new InferenceSession(model, options);
            NetworkDescriptor d = ours.Descriptor;
            using OrtValue input = OrtValue.CreateTensorValueFromMemory(images, [batch, d.InputChannels, d.InputHeight, d.InputWidth]);
            using var runOptions = new RunOptions();
            string[] inputNames = [OnnxExporter.InputName], outputNames = [session.OutputNames.Single()];
            OrtValue[] inputs = [input];
            return Median(repetitions, () =>
            {
                using IDisposableReadOnlyCollection<OrtValue> outputs = session.Run(runOptions, inputNames, inputs, outputNames);
            });
        }
        finally
        {
            File.Delete(model);
        }
    }

    private static double Median(int repetitions, Action action)
    {
        action(); // warm-up: JIT, scratch growth, libtorch's first-call allocations
        var times = new double[repetitions];
        var sw = new Stopwatch();
        for (int i = 0; i < repetitions; i++)
        {
            sw.Restart();
            action();
            times[i] = sw.Elapsed.TotalSeconds;
        }
        Array.Sort(times);
        return times[repetitions / 2];
    }

    private static string LoadAverage()
    {
        try { return File.ReadAllText("/proc/loadavg").Split(' ')[0]; }
        catch (IOException) { return "unknown"; }
    }

    private static (long StartKiB, long PeakKiB) Probe(string impl, string net, int batch, int threads)
    {
        string self = Environment.ProcessPath ?? throw new InvalidOperationException("Cannot locate the bench executable.");
        var psi = new ProcessStartInfo(self) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        // Under `dotnet bench.dll` the process is the dotnet host: pass the assembly first.
        if (Path.GetFileNameWithoutExtension(self) == "dotnet") psi.ArgumentList.Add(typeof(NetworkBench).Assembly.Location);
        foreach (string a in new[] { "memory-probe", impl, net, batch.ToString(CultureInfo.InvariantCulture), threads.ToString(CultureInfo.InvariantCulture) })
            psi.ArgumentList.Add(a);
        using Process child = Process.Start(psi)!;
        string output = child.StandardOutput.ReadToEnd();
        string error = child.StandardError.ReadToEnd();
        child.WaitForExit();
        string? line = output.Split('\n').FirstOrDefault(l => l.StartsWith("memory ", StringComparison.Ordinal));
        if (child.ExitCode != 0 || line is null)
            throw new InvalidOperationException($"Memory probe '{impl} {net} {batch}' failed (exit {child.ExitCode}): {error}{output}");
        string[] parts = line.Split(' ');
        return (long.Parse(parts[1], CultureInfo.InvariantCulture), long.Parse(parts[2], CultureInfo.InvariantCulture));
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
            using var ctx = new CpuContext(threads);
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
