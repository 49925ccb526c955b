using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using AlexNetCompiler;
using AlexNetCompiler.Cuda;

namespace GpuCheck;

/// <summary>
/// One network, mode and GEMM tile on the GPU against the CPU reference: logits, the dropout-on loss, every
/// gradient, five SGD steps and the momentum buffer, each judged by <see cref="Tolerances"/>. Prints one line per
/// tensor and records every figure under correctness.NET.MODE.TILE of the results.
/// </summary>
internal static class Correctness
{
    public static bool Check(CudaDevice device, KernelCache cache, CheckedNetwork net, CpuReference cpu, bool tf32, CudaGemmTile tile, Tolerances tolerances, JsonObject result)
    {
        string mode = tf32 ? "tf32" : "fp32";
        CudaLaunchPlan plan = net.Plan;
        int batch = cpu.Batch;
        Console.WriteLine();
        Console.WriteLine($"== Correctness, {plan.NetworkName}, {mode}, GEMM tile {tile}, batch {batch} (relative L2 against the CPU backend)");
        using var gpu = new CudaNetworkRunner(device, plan, net.Source, batch, new CudaRunnerOptions(tf32, cache, GemmTiles: [tile]));
        int maxRegisters = gpu.Resources.Count == 0 ? 0 : gpu.Resources.Max(r => r.Registers);
        long spills = gpu.Resources.Sum(r => (long)r.SpillStoreBytes);
        Console.WriteLine($"compiled for {gpu.Architecture} in {gpu.CompileTime.TotalSeconds:F1} s (cache {(gpu.CacheHit ? "hit" : "miss")}); max registers {maxRegisters}, spills {spills} B");
        result["batch"] = batch;
        result["architecture"] = gpu.Architecture;
        result["compile_s"] = gpu.CompileTime.TotalSeconds;
        result["cache_hit"] = gpu.CacheHit;
        result["max_registers"] = maxRegisters;
        result["spill_bytes"] = spills;
        var tensors = new JsonObject();
        result["tensors"] = tensors;
        gpu.UploadParameters(cpu.InitialParameters);
        bool ok = true;

        // A digest of everything the GPU computed: equal digests mean bit-identical results (the CUDA emulator's
        // race check compares runs in two thread orders; on a GPU, atomics make it vary from run to run).
        using var digest = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        void Digest(ReadOnlySpan<float> values) => digest.AppendData(MemoryMarshal.AsBytes(values));
        bool Judge(string tensor, TensorRole role, string label, ReadOnlySpan<float> expected, ReadOnlySpan<float> actual)
        {
            var (relative, maxAbs, finite) = Compare(expected, actual);
            return Record(tensor, role, label, relative, maxAbs, finite);
        }
        bool Record(string tensor, TensorRole role, string label, double relative, double maxAbs, bool finite)
        {
            var (tolerance, torchError, source) = tolerances.For(net.Key, tf32, tensor, role);
            bool pass = finite && relative <= tolerance;
            string versus = torchError is double t ? $", PyTorch TF32 {t:E2} ({(t > 0 ? relative / t : double.PositiveInfinity):F2}x)" : "";
            Console.WriteLine($"  {(pass ? "ok  " : "FAIL")} {mode} {label}: relative L2 {relative:E2}, max |diff| {maxAbs:E2}{(finite ? "" : ", NON-FINITE values")}, tolerance {tolerance:E1} ({source}{versus})");
            tensors[tensor] = new JsonObject
            {
                ["relative"] = CheckResults.Number(relative),
                ["max_abs"] = CheckResults.Number(maxAbs),
                ["finite"] = finite,
                ["tolerance"] = tolerance,
                ["tolerance_source"] = source,
                ["torch_tf32_error"] = torchError is double e ? CheckResults.Number(e) : null,
                ["pass"] = pass,
            };
            return pass;
        }

        var gpuLogits = new float[cpu.Logits.Length];
        gpu.Forward(cpu.Input, batch, gpuLogits);
        ok &= Judge("logits", TensorRole.Output, "forward logits", cpu.Logits, gpuLogits);
        Digest(gpuLogits);

        float gpuLoss = gpu.ForwardBackward(cpu.Input, cpu.Labels, batch, CpuReference.DropoutSeed);
        ok &= Judge("loss", TensorRole.Output, "loss (dropout on)", [cpu.Loss], [gpuLoss]);
        var gpuGradients = new float[plan.ParameterCount];
        gpu.DownloadGradients(gpuGradients);
        Digest([gpuLoss]);
        Digest(gpuGradients);
        foreach (ParameterDescriptor p in net.Model.Parameters)
            ok &= Judge("gradient " + p.Name, TensorRole.Gradient, "gradient " + p.Name, cpu.Gradients.AsSpan(p.Offset, p.Length), gpuGradients.AsSpan(p.Offset, p.Length));

        // The SGD steps of CpuReference, each from the CPU's parameters before it (see there for why).
        gpu.SgdSteps = 0;
        var gpuParameters = new float[plan.ParameterCount];
        var gpuDelta = new float[plan.ParameterCount];
        double worstStep = 0, worstMaxAbs = 0;
        bool stepsFinite = true;
        var stepLosses = new JsonArray();
        for (int step = 0; step < CpuReference.Steps; step++)
        {
            float[] before = cpu.ParametersBeforeStep[step];
            gpu.UploadParameters(before);
            float lg = gpu.TrainStep(cpu.Input, cpu.Labels, batch, CpuReference.StepSeed(step), CpuReference.Sgd.LearningRate, CpuReference.Sgd.Momentum, CpuReference.Sgd.WeightDecay);
            gpu.DownloadParameters(gpuParameters);
            Digest(gpuParameters);
            for (int i = 0; i < before.Length; i++) gpuDelta[i] = gpuParameters[i] - before[i];
            var (relative, maxAbs, finite) = Compare(cpu.StepDeltas[step], gpuDelta);
            stepsFinite &= finite;
            worstStep = Math.Max(worstStep, relative);
            worstMaxAbs = Math.Max(worstMaxAbs, maxAbs);
            stepLosses.Add((JsonNode)new JsonObject { ["cpu_loss"] = CheckResults.Number(cpu.StepLosses[step]), ["gpu_loss"] = CheckResults.Number(lg), ["relative"] = CheckResults.Number(relative) });
            Console.WriteLine($"  step {step + 1}: loss cpu {cpu.StepLosses[step]:F6} gpu {lg:F6}, parameter change relative L2 {relative:E2}");
        }
        result["sgd_steps"] = stepLosses;
        ok &= Record("sgd_step_worst", TensorRole.SgdStep, $"parameter change, worst of {CpuReference.Steps} steps", worstStep, worstMaxAbs, stepsFinite);
        var gpuVelocity = new float[plan.ParameterCount];
        gpu.DownloadVelocity(gpuVelocity);
        ok &= Judge("momentum", TensorRole.SgdStep, $"momentum buffer after {CpuReference.Steps} steps", cpu.Velocity, gpuVelocity);
        Digest(gpuVelocity);
        string digestText = Convert.ToHexString(digest.GetHashAndReset())[..32];
        result["digest"] = digestText;
        result["pass"] = ok;
        Console.WriteLine($"RESULT {net.Key}_{mode}_{tile}_gpu_digest={digestText}");
        Console.WriteLine($"RESULT {net.Key}_{mode}_{tile}_correctness={(ok ? "pass" : "FAIL")}");
        return ok;
    }

    public static (double Relative, double MaxAbs, bool Finite) Compare(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual)
    {
        double diff = 0, norm = 0, maxAbs = 0;
        bool finite = true;
        for (int i = 0; i < expected.Length; i++)
        {
            double d = (double)actual[i] - expected[i];
            finite &= float.IsFinite(actual[i]);
            diff += d * d;
            norm += (double)expected[i] * expected[i];
            maxAbs = Math.Max(maxAbs, Math.Abs(d));
        }
        return (norm == 0 ? Math.Sqrt(diff) : Math.Sqrt(diff / norm), maxAbs, finite);
    }
}
