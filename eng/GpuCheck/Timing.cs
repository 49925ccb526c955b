using System.Text.Json.Nodes;
using AlexNetCompiler;
using AlexNetCompiler.Cuda;
using AlexNetCompiler.Training;

namespace GpuCheck;

/// <summary>
/// The training step (forward, loss, backward, SGD) and the inference forward of one network at a batch size,
/// timed between CUDA events with a runner that tunes the GEMM tiles given, as a user's runner does. Records
/// timing.NET.MODE: milliseconds, images/s, TFLOP/s and fraction of the mode's peak, the tuning table and, when
/// profiled, every kernel of one training pass.
/// </summary>
internal static class Timing
{
    private const int WarmupSteps = 3;

    public static void Run(CudaDevice device, KernelCache cache, CheckedNetwork net, bool tf32, IReadOnlyList<CudaGemmTile> tiles, int batch, int steps, bool profile, JsonObject result)
    {
        string mode = tf32 ? "tf32" : "fp32";
        CudaLaunchPlan plan = net.Plan;
        using var gpu = new CudaNetworkRunner(device, plan, net.Source, batch, new CudaRunnerOptions(tf32, cache, GemmTiles: tiles));
        var parameters = new float[plan.ParameterCount];
        Initializer.Initialize(net.Model, parameters, net.Init, seed: 1);
        gpu.UploadParameters(parameters);
        gpu.SetBatch(CpuReference.RandomInput(batch * plan.InputLength, 3), CpuReference.RandomLabels(batch, plan.ClassCount, 3), batch);
        using var start = device.CreateEvent();
        using var end = device.CreateEvent();

        for (int i = 0; i < WarmupSteps; i++) { gpu.EnqueueForwardBackward(batch, (ulong)i); gpu.EnqueueSgd(0.01f, 0.9f, 5e-4f); }
        device.Synchronize();
        start.Record();
        for (int i = 0; i < steps; i++) { gpu.EnqueueForwardBackward(batch, (ulong)i); gpu.EnqueueSgd(0.01f, 0.9f, 5e-4f); }
        end.Record();
        double trainMs = CudaEvent.ElapsedMilliseconds(start, end) / steps;

        for (int i = 0; i < WarmupSteps; i++) gpu.EnqueueForward(batch, null);
        start.Record();
        for (int i = 0; i < steps; i++) gpu.EnqueueForward(batch, null);
        end.Record();
        double forwardMs = CudaEvent.ElapsedMilliseconds(start, end) / steps;

        var (peak, peakSource) = PeakTflops(device, tf32);
        double trainTflops = plan.TrainingFlopsPerSample * (double)batch / (trainMs * 1e-3) / 1e12;
        double forwardTflops = plan.ForwardFlopsPerSample * (double)batch / (forwardMs * 1e-3) / 1e12;
        Console.WriteLine();
        Console.WriteLine($"== Timing, {plan.NetworkName}, {mode}, batch {batch}, mean of {steps} steps after {WarmupSteps} (GPU events; peak {peak:F0} TFLOP/s {(tf32 ? "TF32 mma.sync" : "FP32")}, {peakSource})");
        Console.WriteLine($"training step: {trainMs:F2} ms, {batch / (trainMs * 1e-3):F0} images/s, {trainTflops:F1} TFLOP/s, {trainTflops / peak:P1} of peak");
        Console.WriteLine($"forward:       {forwardMs:F2} ms, {batch / (forwardMs * 1e-3):F0} images/s, {forwardTflops:F1} TFLOP/s, {forwardTflops / peak:P1} of peak");
        result["batch"] = batch;
        result["steps"] = steps;
        result["peak_tflops"] = peak;
        result["peak_source"] = peakSource;
        result["train_ms"] = CheckResults.Number(trainMs);
        result["train_images_per_s"] = CheckResults.Number(batch / (trainMs * 1e-3));
        result["train_tflops"] = CheckResults.Number(trainTflops);
        result["train_peak_fraction"] = CheckResults.Number(trainTflops / peak);
        result["forward_ms"] = CheckResults.Number(forwardMs);
        result["forward_images_per_s"] = CheckResults.Number(batch / (forwardMs * 1e-3));
        result["forward_tflops"] = CheckResults.Number(forwardTflops);
        result["forward_peak_fraction"] = CheckResults.Number(forwardTflops / peak);
        string key = net.Key + "_" + mode;
        Console.WriteLine($"RESULT {key}_train_images_per_s={batch / (trainMs * 1e-3):F1}");
        Console.WriteLine($"RESULT {key}_forward_images_per_s={batch / (forwardMs * 1e-3):F1}");
        Console.WriteLine($"RESULT {key}_train_tflops={trainTflops:F2}");
        Console.WriteLine($"RESULT {key}_train_peak_fraction={trainTflops / peak:F4}");

        if (gpu.GemmTunings.Count > 0)
        {
            // What the runner measured when it was created (batch, mean of 3 launches) and the tile it kept.
            Console.WriteLine($"GEMM tiles tried per kernel (ms at batch {batch}; * = kept):");
            Console.WriteLine($"  {"kernel",-32}" + string.Concat(gpu.GemmTiles.Select(t => $"{t,11}")));
            var tuning = new JsonArray();
            foreach (GemmTuning t in gpu.GemmTunings)
            {
                Console.WriteLine($"  {t.Kernel,-32}" + string.Concat(gpu.GemmTiles.Select(tile => $"{t.Milliseconds[tile],10:F3}{(tile == t.Chosen ? "*" : " ")}")));
                var ms = new JsonObject();
                foreach (CudaGemmTile tile in gpu.GemmTiles) ms[tile.ToString()] = CheckResults.Number(t.Milliseconds[tile]);
                tuning.Add((JsonNode)new JsonObject { ["kernel"] = t.Kernel, ["chosen"] = t.Chosen.ToString(), ["ms"] = ms });
            }
            double untuned = gpu.GemmTunings.Sum(t => t.Milliseconds[gpu.GemmTiles[0]]), tuned = gpu.GemmTunings.Sum(t => t.Milliseconds[t.Chosen]);
            Console.WriteLine($"  GEMM kernels, one launch each: {untuned:F3} ms with {gpu.GemmTiles[0]} everywhere, {tuned:F3} ms as tuned ({untuned / tuned:F2}x)");
            result["tuning"] = tuning;
            result["gemm_ms_first_tile"] = CheckResults.Number(untuned);
            result["gemm_ms_tuned"] = CheckResults.Number(tuned);
        }

        if (!profile) return;
        // Each step of one training pass, timed between GPU events.
        Console.WriteLine("per kernel (one forward + backward):");
        var kernels = new JsonArray();
        foreach (var (step, ms) in gpu.ProfileForwardBackward(batch, 1))
        {
            CudaGemmTile? tile = step is CudaLaunch l && gpu.GemmTileChoices.TryGetValue(l.Kernel, out CudaGemmTile t) ? t : null;
            string name = step is CudaLaunch launch ? launch.Kernel : "memset " + step.Comment;
            long flops = step is CudaLaunch withFlops ? withFlops.FlopsPerSample * (long)batch : 0;
            double tflops = flops == 0 ? 0 : flops / (ms * 1e-3) / 1e12;
            string rate = flops == 0 ? "" : $", {tflops,6:F1} TFLOP/s = {tflops / peak,6:P1} of peak";
            Console.WriteLine($"  {name + (tile is null ? "" : $" [{tile}]"),-50} {ms,8:F3} ms{rate}");
            kernels.Add((JsonNode)new JsonObject
            {
                ["name"] = name,
                ["tile"] = tile?.ToString(),
                ["ms"] = CheckResults.Number(ms),
                ["tflops"] = flops == 0 ? null : CheckResults.Number(tflops),
                ["peak_fraction"] = flops == 0 ? null : CheckResults.Number(tflops / peak),
            });
        }
        result["kernels"] = kernels;
    }

    /// <summary>
    /// Dense (non-sparse) peaks from NVIDIA's H100/H200 datasheets: SXM (and H200) 67 TFLOP/s FP32, PCIe 51. Their
    /// TF32 figures (495 and 378) are for wgmma; our kernels issue mma.sync, which on Hopper is assumed here to reach
    /// half of that rate (an assumption, named in the results, until a measured figure replaces it): 247 and 189.
    /// Other GPUs: estimated from SMs x clock x 128 FP32 lanes x 2 (FP32), x4 for TF32 mma.sync.
    /// </summary>
    public static (double Tflops, string Source) PeakTflops(CudaDevice device, bool tf32)
    {
        string name = device.Name;
        if (name.Contains("H100", StringComparison.OrdinalIgnoreCase) && name.Contains("PCIe", StringComparison.OrdinalIgnoreCase))
            return tf32 ? (189, "H100 PCIe datasheet TF32 378 (wgmma), assumed half for mma.sync") : (51, "H100 PCIe datasheet");
        if (name.Contains("H100", StringComparison.OrdinalIgnoreCase) || name.Contains("H200", StringComparison.OrdinalIgnoreCase))
            return tf32 ? (247, "H100 SXM/H200 datasheet TF32 495 (wgmma), assumed half for mma.sync") : (67, "H100 SXM/H200 datasheet");
        double fp32 = device.MultiprocessorCount * (device.ClockRateKHz * 1e3) * 128 * 2 / 1e12;
        return (tf32 ? fp32 * 4 : fp32, "estimated from SMs and clock");
    }
}
