using System.Diagnostics;
using AlexNetCompiler.Cuda;

namespace GpuCheck;

/// <summary>
/// Fills a kernel cache, without a GPU, with every module the packed run loads: each checked network in each mode
/// for each GEMM tile, and the main job's networks in FP32 for every tile. It compiles through
/// <see cref="CudaNetworkRunner.Compile"/>, the runner's own path, so the entries sit under exactly the keys the
/// runner looks up on the GPU machine (same NVRTC, architecture, options, prelude and source).
/// </summary>
internal static class Prebuild
{
    public static int Run(string cacheDirectory, string architecture, IReadOnlyList<CheckedNetwork> networks, IReadOnlyList<string> modes, IReadOnlyList<CudaGemmTile> tiles, bool mainJob)
    {
        if (!Nvrtc.IsAvailable(out string? reason))
        {
            Console.Error.WriteLine($"prebuild: NVRTC is not available: {reason}");
            return 3;
        }
        var cache = new KernelCache(cacheDirectory);
        var modules = new List<(string Name, CudaLaunchPlan Plan, string Source, bool Tf32, CudaGemmTile Tile)>();
        foreach (CheckedNetwork net in networks)
            foreach (string mode in modes)
                foreach (CudaGemmTile tile in tiles)
                    modules.Add((net.Key, net.Plan, net.Source, mode == "tf32", tile));
        if (mainJob)
        {
            foreach (var (name, plan, source) in CheckedNetworks.MainJob)
                foreach (CudaGemmTile tile in CudaGemmTile.All)
                    modules.Add((name, plan, source, false, tile));
        }

        // The main job's FashionNet modules are the check's: one source, one key. Each key is compiled once.
        modules = [.. modules.DistinctBy(m => (m.Source, m.Tf32, m.Tile))];
        Console.WriteLine($"NVRTC {Nvrtc.Version.Major}.{Nvrtc.Version.Minor}, {architecture}, {modules.Count} modules into {cacheDirectory}");
        var total = Stopwatch.StartNew();
        int compiled = 0, fromCache = 0;
        // Two at a time: each NVRTC program is independent, and two cores halve the wait.
        Parallel.ForEach(modules, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, Math.Min(Environment.ProcessorCount, 4)) }, module =>
        {
            var stopwatch = Stopwatch.StartNew();
            NvrtcOutput output = CudaNetworkRunner.Compile(module.Plan, module.Source, architecture, module.Tf32, module.Tile, cache, out bool hit);
            Interlocked.Increment(ref hit ? ref fromCache : ref compiled);
            Console.WriteLine($"  {module.Name} {(module.Tf32 ? "tf32" : "fp32")} {module.Tile}: {output.Image.Length / 1024} KiB, {(hit ? "already cached" : $"compiled in {stopwatch.Elapsed.TotalSeconds:F1} s")}");
        });
        Console.WriteLine($"{compiled} compiled, {fromCache} already cached, in {total.Elapsed.TotalSeconds:F0} s");
        return 0;
    }
}
