using AlexNetCompiler.Cuda;
using System.Globalization;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace AlexNetCompiler.Tests.Cuda.Emulation;

/// <summary>
/// The CUDA backend end to end without a GPU: the GPU check program (eng/GpuCheck, the same program a GPU
/// machine runs) compiles each network's kernels with NVRTC, loads the CUBIN through the driver API and runs
/// forward, backward and five SGD steps, with the CPU emulator of the driver (tests/CudaEmulator) standing in
/// for libcuda and executing the kernels compiled from the same source by g++. The check compares every tensor
/// with the CPU backend. The emulator runs one block at a time, so these tests cover indexing, tiling,
/// barriers, warp collectives, launch shapes, buffer sizes and the runtime's driver calls; races inside a block
/// only as far as running its threads in two orders reveals them; not timing.
/// </summary>
public sealed class EmulatedGpuTests(ITestOutputHelper output) : EmulatedGpuCheck(output)
{
    [SkippableFact]
    public void TheEmulatorCatchesWhatItPromisesAndEmulatesCudaSemantics()
    {
        CudaEmulator.RequireTools();
        var (code, text) = CudaEmulator.RunNative(CudaEmulator.BuildSelfTest(), TimeSpan.FromMinutes(10));
        Output.WriteLine(text);
        // Each named check must be present and pass (a missing line is a failure, not a pass).
        foreach (string check in new[]
        {
            "missing kernel is reported", "write past the end is caught", "the fault names kernel, block and thread",
            "host pointer argument is rejected", "divergent __syncthreads is reported", "a barrier only in later blocks is reported",
            "a race gives different results in the two thread orders", "a race-free kernel gives the same results in both orders",
            "__syncthreads orders shared memory",
            "__shfl_xor_sync butterfly sums each warp", "to_tf32 rounds to nearest, ties away from zero",
            "mma.m16n8k8 with the PTX fragment layout computes A*B + C",
        })
            Assert.Contains("PASS " + check + "\n", text.Replace("\r\n", "\n"), StringComparison.Ordinal);
        Assert.Equal(0, code);
    }

    // FP32: the tolerances of the GPU check itself (relative L2 1e-4 per tensor, 1e-3 per SGD step and for the
    // momentum buffer), for every GEMM tile. (AlexNet: EmulatedAlexNetTests.)
    [SkippableTheory]
    [InlineData("fashionnet", 8)]
    [InlineData("unusual", 4)]
    [InlineData("rectangular", 4)]
    [InlineData("avgpool", 4)]
    public void Fp32KernelsMatchTheCpuBackend(string net, int batch) =>
        CheckWithin(net, batch, "fp32", "all", exactTf32: false, Fp32Tolerances);

    // The tensor-core path with every mantissa bit kept must match FP32 to FP32 tolerances: any fault in the
    // mma fragment layout or the warp tiling gives errors of order 1, while TF32 rounding is taken out.
    [SkippableFact]
    public void Tf32TensorCorePathWithoutRoundingMatchesFp32() =>
        CheckWithin("fashionnet", 8, "tf32", "all", exactTf32: true, Fp32Tolerances);

    // With TF32 rounding as the hardware does it, the GPU check's own TF32 tolerances hold (1e-2 for logits and
    // loss; 1e-1 per gradient and SGD step, for the ReLU flips explained in eng/GpuCheck/Program.cs).
    [SkippableFact]
    public void Tf32KernelsPassTheGpuChecksTf32Tolerances() =>
        CheckWithin("fashionnet", 8, "tf32", "all", exactTf32: false, Tf32Tolerances);

    // A race inside a block (a thread reading what another writes with no barrier between them) makes the result
    // depend on the order in which the block's threads run. The emulator runs them forward or in reverse; the
    // check's digest of every GPU result (logits, loss, gradients, parameters after each step, momentum) must be
    // the same both ways, bit for bit, for every GEMM tile.
    [SkippableTheory]
    [InlineData("fp32")]
    [InlineData("tf32")]
    public void ResultsDoNotDependOnTheOrderOfThreadsWithinABlock(string mode)
    {
        CudaEmulator.RequireTools();
        var (source, name) = Network("fashionnet");
        string library = CudaEmulator.BuildNetworkLibrary(name, source, tf32: mode == "tf32", gemmTiles: CudaGemmTile.All);
        string forward = RunCheckText(library, "fashionnet", mode, 4, CudaGemmTile.All, reverseThreadOrder: false);
        string reverse = RunCheckText(library, "fashionnet", mode, 4, CudaGemmTile.All, reverseThreadOrder: true);
        foreach (CudaGemmTile tile in CudaGemmTile.All)
            Assert.Equal(Digest(forward, "fashionnet", mode, tile), Digest(reverse, "fashionnet", mode, tile));
    }
}

/// <summary>
/// The GPU check's timing half on the CUDA emulator (the figures are the CPU's, so only the path is checked): the
/// runner compiles the tiles given, tunes every GEMM kernel, and the check prints the tuning table, one row per
/// GEMM kernel of the plan with exactly one kept tile, then the RESULT lines eng/gpu-check.sh reads.
/// </summary>
public sealed class EmulatedGpuTimingTests(ITestOutputHelper output) : EmulatedGpuCheck(output)
{
    [SkippableFact]
    public void TimingTunesEveryGemmKernelAndReportsTheTable()
    {
        CudaEmulator.RequireTools();
        var (source, name) = Network("fashionnet");
        CudaGemmTile[] tiles = [CudaGemmTile.Default, new(128, 128)];
        string library = CudaEmulator.BuildNetworkLibrary(name, source, tf32: false, gemmTiles: tiles);
        var (code, text) = CudaEmulator.RunGpuCheck(library,
            ["--nets=fashionnet", "--modes=fp32", "--check-batch=2", "--tiles=64x64,128x128", "--time-batch=4", "--steps=1"], Timeout);
        Output.WriteLine(text);
        Assert.Equal(0, code);
        var gemmKernels = FashionMnist.FashionNet.CudaPlan.Forward.Concat(FashionMnist.FashionNet.CudaPlan.Backward)
            .OfType<CudaLaunch>().Where(l => l.Gemm is not null).Select(l => l.Kernel).ToList();
        Assert.Equal(23, gemmKernels.Count);
        Assert.Contains("GEMM tiles tried per kernel (ms at batch 4; * = kept):", text, StringComparison.Ordinal);
        foreach (string kernel in gemmKernels)
        {
            Match row = Regex.Match(text, $@"^  {kernel} +(?<a>[0-9.]+)(?<a_kept>\*?) +(?<b>[0-9.]+)(?<b_kept>\*?)\s*$", RegexOptions.Multiline);
            Assert.True(row.Success, $"no tuning row for {kernel}");
            Assert.True(row.Groups["a_kept"].Length + row.Groups["b_kept"].Length == 1, $"{kernel}: not exactly one tile kept");
            // The kept tile is the faster one (ties keep the first).
            double a = double.Parse(row.Groups["a"].Value, CultureInfo.InvariantCulture), b = double.Parse(row.Groups["b"].Value, CultureInfo.InvariantCulture);
            Assert.Equal(b < a, row.Groups["b_kept"].Length == 1);
        }
        foreach (string key in new[] { "fashionnet_fp32_train_images_per_s", "fashionnet_fp32_forward_images_per_s", "fashionnet_fp32_train_tflops" })
            Assert.Matches($@"(?m)^RESULT {key}=[0-9.]+$", text);
    }
}

/// <summary>
/// The canonical AlexNet through the GPU check on the CUDA emulator: its shapes (stride 4, 11x11 kernels, groups,
/// long reductions split into chunks, 9216-wide dense layers) at batch 2. A class of its own, so that its runs,
/// the slowest to emulate, go beside EmulatedGpuTests' rather than after them.
/// </summary>
public sealed class EmulatedAlexNetTests(ITestOutputHelper output) : EmulatedGpuCheck(output)
{
    // FP32 with the smallest and the largest GEMM tile (the others are checked on FashionNet and UnusualNet).
    [SkippableFact]
    public void Fp32KernelsMatchTheCpuBackend() =>
        CheckWithin("alexnet", 2, "fp32", "64x64,128x128", exactTf32: false, Fp32Tolerances);

    // TF32 with the 128 x 128 tile, the one compiled for two blocks per SM (about three minutes per tile).
    [SkippableFact]
    public void Tf32KernelsPassTheGpuChecksTf32Tolerances() =>
        CheckWithin("alexnet", 2, "tf32", "128x128", exactTf32: false, Tf32Tolerances);
}

/// <summary>Runs the GPU check program on the CUDA emulator and reads its report.</summary>
public abstract partial class EmulatedGpuCheck(ITestOutputHelper output)
{
    // A hang guard only: on a loaded two-core machine an AlexNet run takes several times its usual few minutes.
    protected static readonly TimeSpan Timeout = TimeSpan.FromMinutes(30);

    protected ITestOutputHelper Output => output;

    /// <summary>The GPU check's relative L2 tolerances: logits and loss, each gradient, each SGD step and the momentum buffer.</summary>
    protected internal sealed record Tolerances(double LogitsAndLoss, double Gradient, double Sgd);

    // FP32: 1e-4 per tensor, 1e-3 per SGD step and for the momentum buffer. TF32: 1e-2 for logits and loss, 1e-1
    // per gradient and step (the ReLU flips explained in eng/GpuCheck/Program.cs).
    protected internal static readonly Tolerances Fp32Tolerances = new(1e-4, 1e-4, 1e-3);
    protected internal static readonly Tolerances Tf32Tolerances = new(1e-2, 1e-1, 1e-1);

    // Builds the emulator with the network's kernels for the given GEMM tiles, runs the GPU check on it (which
    // checks each tile on its own) and holds every reported error to the given tolerances.
    protected void CheckWithin(string net, int batch, string mode, string tiles, bool exactTf32, Tolerances tolerances)
    {
        CudaEmulator.RequireTools();
        var (source, name) = Network(net);
        IReadOnlyList<CudaGemmTile> gemmTiles = CudaGemmTile.ParseList(tiles);
        string library = CudaEmulator.BuildNetworkLibrary(name, source, tf32: mode == "tf32", exactTf32, gemmTiles);
        AssertAllWithin(RunCheck(library, net, mode, batch, gemmTiles), tolerances);
    }

    protected string RunCheckText(string library, string net, string mode, int batch, IReadOnlyList<CudaGemmTile> tiles, bool reverseThreadOrder = false)
    {
        var (code, text) = CudaEmulator.RunGpuCheck(library,
            [$"--nets={net}", $"--modes={mode}", $"--check-batch={batch}", $"--tiles={string.Join(',', tiles)}", "--no-timing"], Timeout, reverseThreadOrder);
        output.WriteLine(text);
        Assert.Contains("Device: CUDA emulator (CPU)", text, StringComparison.Ordinal);
        foreach (CudaGemmTile tile in tiles)
            Assert.Contains($"RESULT {net}_{mode}_{tile}_correctness=pass", text, StringComparison.Ordinal);
        Assert.Equal(0, code);
        return text;
    }

    protected static string Digest(string text, string net, string mode, CudaGemmTile tile)
    {
        Match m = Regex.Match(text, $@"^RESULT {net}_{mode}_{tile}_gpu_digest=(?<d>[0-9A-F]{{32}})$", RegexOptions.Multiline);
        Assert.True(m.Success, $"no digest line for tile {tile} in the check's output");
        return m.Groups["d"].Value;
    }

    private List<(string What, double RelativeL2)> RunCheck(string library, string net, string mode, int batch, IReadOnlyList<CudaGemmTile> tiles)
    {
        string text = RunCheckText(library, net, mode, batch, tiles);
        // The tile decides which thread computes which output, never the order of a sum: each output's products
        // are added k-tile by k-tile, k-step by k-step, in one thread (or one mma), and the emulator adds the
        // weight gradient's atomic chunks in block order. So every tile must give bit-identical results.
        foreach (CudaGemmTile tile in tiles.Skip(1))
            Assert.True(Digest(text, net, mode, tile) == Digest(text, net, mode, tiles[0]), $"{net} {mode}: tile {tile} computes different bits from {tiles[0]}");
        var results = ResultLine().Matches(text)
            .Select(m => (m.Groups["what"].Value, double.Parse(m.Groups["value"].Value, CultureInfo.InvariantCulture)))
            .ToList();
        // per tile: logits, loss, one line per parameter tensor, the worst SGD step and the momentum buffer
        var model = net switch
        {
            "alexnet" => CanonicalAlexNet.AlexNet2012.Model,
            "fashionnet" => FashionMnist.FashionNet.Model,
            "rectangular" => Networks.RectangularPoolNet.Model,
            "avgpool" => Networks.AvgPoolNet.Model,
            _ => Networks.UnusualNet.Model,
        };
        Assert.Equal(tiles.Count * (model.Parameters.Count + 4), results.Count);
        return results;
    }

    private static void AssertAllWithin(List<(string What, double RelativeL2)> results, Tolerances tolerances)
    {
        foreach (var (what, relative) in results)
        {
            double tolerance = what.Contains(" gradient ", StringComparison.Ordinal) ? tolerances.Gradient
                : what.Contains("worst of 5 steps", StringComparison.Ordinal) || what.Contains("momentum buffer", StringComparison.Ordinal) ? tolerances.Sgd
                : tolerances.LogitsAndLoss;
            Assert.True(relative <= tolerance, $"{what}: relative L2 {relative:E2} exceeds {tolerance:E0}");
        }
    }

    protected static (string Source, string Name) Network(string key) => key switch
    {
        "alexnet" => (CanonicalAlexNet.AlexNet2012.CudaSource, "AlexNet2012"),
        "fashionnet" => (FashionMnist.FashionNet.CudaSource, "FashionNet"),
        "unusual" => (Networks.UnusualNet.CudaSource, "UnusualNet"),
        "rectangular" => (Networks.RectangularPoolNet.CudaSource, "RectangularPoolNet"),
        "avgpool" => (Networks.AvgPoolNet.CudaSource, "AvgPoolNet"),
        _ => throw new ArgumentOutOfRangeException(nameof(key)),
    };

    [GeneratedRegex(@"^  (?:ok  |FAIL) (?<what>.+?): relative L2 (?<value>[0-9.E+-]+),", RegexOptions.Multiline)]
    private static partial Regex ResultLine();
}
