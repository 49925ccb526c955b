using System.Runtime.InteropServices;
using AlexNetCompiler.Cuda;
using AlexNetCompiler.Distributed;
using AlexNetCompiler.Tests.Networks;
using AlexNetCompiler.Training;
using Xunit.Abstractions;

namespace AlexNetCompiler.Tests.Cuda.Emulation;

/// <summary>
/// Data-parallel training on GPUs (<see cref="NcclCommunicator"/>, <see cref="CudaDataParallelEngine"/>) on the CUDA
/// emulator with the fake NCCL (tests/NcclFake), whose ranks are threads of one process. A process loads the driver and
/// NCCL once, so each scenario runs in a child process (this assembly as a program) with both libraries named; the
/// scenarios are in <see cref="NcclScenarios"/>. No GPU and no real NCCL take part: these tests check the binding's
/// calls, the engine's step and the error paths, not NCCL itself.
/// </summary>
public sealed class EmulatedNcclTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(10); // a hang guard, for a loaded two-core machine

    [SkippableFact]
    public void OneRankOverNcclTrainsAsOneGpuDoes() =>
        RunScenario(nameof(NcclScenarios.OneRankMatchesOneGpu), nameof(UnusualNet), UnusualNet.CudaSource);

    [SkippableFact]
    public void RanksOverNcclTrainAsOneGpuOverTheWholeBatch() =>
        RunScenario(nameof(NcclScenarios.RanksMatchOneGpu), nameof(RectangularPoolNet), RectangularPoolNet.CudaSource);

    [SkippableFact]
    public void NcclErrorsAreReportedClearly() =>
        RunScenario(nameof(NcclScenarios.Errors), nameof(RectangularPoolNet), RectangularPoolNet.CudaSource);

    [SkippableFact]
    public void AMissingNcclLibraryIsOneLineSayingWhatToInstall()
    {
        CudaEmulator.RequireTools();
        string library = CudaEmulator.BuildNetworkLibrary(nameof(RectangularPoolNet), RectangularPoolNet.CudaSource, tf32: false);
        var (code, text) = CudaEmulator.RunProgram(typeof(EmulatedNcclTests).Assembly.Location, [NcclScenarios.Command, nameof(NcclScenarios.MissingLibrary)],
            library, Timeout, extraEnvironment: new Dictionary<string, string> { ["ALEXNET_NCCL_PATH"] = "/nonexistent/libnccl.so.2" });
        output.WriteLine(text);
        Assert.True(code == 0, $"exited with {code}:\n{text}");
        Assert.Contains($"PASS {nameof(NcclScenarios.MissingLibrary)}", text, StringComparison.Ordinal);
    }

    private void RunScenario(string scenario, string networkName, string cudaSource)
    {
        CudaEmulator.RequireTools();
        string library = CudaEmulator.BuildNetworkLibrary(networkName, cudaSource, tf32: false);
        string nccl = CudaEmulator.BuildFakeNccl();
        var (code, text) = CudaEmulator.RunProgram(typeof(EmulatedNcclTests).Assembly.Location, [NcclScenarios.Command, scenario], library, Timeout,
            extraEnvironment: new Dictionary<string, string> { ["ALEXNET_NCCL_PATH"] = nccl });
        output.WriteLine(text);
        Assert.True(code == 0, $"scenario {scenario} exited with {code}:\n{text}");
        Assert.Contains($"PASS {scenario}", text, StringComparison.Ordinal);
    }
}

/// <summary>What the child process runs (see <see cref="EmulatedNcclTests"/>).</summary>
internal static unsafe class NcclScenarios
{
    public const string Command = "nccl-scenario";

    private static readonly SgdOptions Options = new(LearningRate: 0.01f, Momentum: 0.9f, WeightDecay: 5e-4f);
    private static readonly TimeSpan PeerTimeout = TimeSpan.FromSeconds(60);

    public static int Run(string scenario)
    {
        Action? body = scenario switch
        {
            nameof(OneRankMatchesOneGpu) => OneRankMatchesOneGpu,
            nameof(RanksMatchOneGpu) => RanksMatchOneGpu,
            nameof(Errors) => Errors,
            nameof(MissingLibrary) => MissingLibrary,
            _ => null,
        };
        if (body is null)
        {
            Console.Error.WriteLine($"Unknown scenario '{scenario}'.");
            return 2;
        }
        try
        {
            body();
            Console.WriteLine($"PASS {scenario}");
            return 0;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"FAIL {scenario}: {e}");
            return 1;
        }
    }

    /// <summary>
    /// One rank (its unique id passed through a file) trains UnusualNet, dropout included, for 3 steps as the plain GPU
    /// engine does: the sum over one rank is the identity and the shard is the whole batch, so parameters and momentum
    /// agree bit for bit.
    /// </summary>
    public static void OneRankMatchesOneGpu()
    {
        const int batch = 4;
        string folder = Directory.CreateTempSubdirectory("alexnet-nccl-id-").FullName;
        try
        {
            NcclUniqueId id = NcclCommunicator.ShareUniqueIdThroughFile(Path.Combine(folder, "nccl-id"), rank: 0, PeerTimeout);
            Assert.Equal(128, new FileInfo(Path.Combine(folder, "nccl-id")).Length);

            var plainHost = new UnusualNet(batch);
            var ncclHost = new UnusualNet(batch);
            Initializer.Initialize(UnusualNet.Model, plainHost.Parameters, InitScheme.He, 7);
            plainHost.Parameters.CopyTo(ncclHost.Parameters, 0);
            Sgd plainSgd = NewOptimizer(UnusualNet.Model), ncclSgd = NewOptimizer(UnusualNet.Model);

            using var plain = new CudaTrainingEngine(CreateGpu(UnusualNet.Model, UnusualNet.CudaPlan, UnusualNet.CudaSource, batch), plainHost, plainSgd);
            CudaNetwork gpu = CreateGpu(UnusualNet.Model, UnusualNet.CudaPlan, UnusualNet.CudaSource, batch);
            using NcclCommunicator nccl = NcclCommunicator.Create(gpu.Device, rank: 0, size: 1, id, PeerTimeout);
            Console.WriteLine(nccl.Description);
            Assert.Contains("NCCL 2.99.0, rank 0 of 1", nccl.Description, StringComparison.Ordinal);
            using var parallel = new CudaDataParallelEngine(gpu, ncclHost, ncclSgd, nccl);
            plain.CopyStateFromHost();
            parallel.CopyStateFromHost();
            for (int step = 0; step < 3; step++)
            {
                var (images, labels) = Data(UnusualNet.Model, batch, step);
                float expected = plain.TrainStep(images, labels, batch, 100 + (ulong)step);
                DataParallelStep actual = parallel.TrainShard(images, labels, batch, 0, batch, 100 + (ulong)step);
                Assert.Equal(expected, actual.MeanLoss);
                Assert.False(actual.StopRequested);
            }
            plain.CopyStateToHost();
            parallel.CopyStateToHost();
            Assert.Equal(plainHost.Parameters, ncclHost.Parameters);
            Assert.Equal(plainSgd.Velocity, ncclSgd.Velocity);
            Assert.Equal(3, ncclSgd.StepCount);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>
    /// 2 ranks (shards of 4 and 4) and 3 ranks (2, 2 and 3 of 7), threads of this process each with its own GPU network
    /// and NCCL communicator, train RectangularPoolNet (no dropout) for 3 steps; one GPU trains over the whole batch. The
    /// ranks start from different parameters, so the first broadcast must make them rank 0's. They end equal to each
    /// other bit for bit, and to the one GPU within 1e-5 of the largest parameter: the CPU engine's bound (the order of a
    /// batch's per-sample terms changes the sum by about n x 2^-24 of its magnitude; a lost shard or a wrong scale moves
    /// parameters by about lr x gradient, 1e-3 or more).
    /// </summary>
    public static void RanksMatchOneGpu()
    {
        foreach (var (ranks, batch) in new[] { (2, 8), (3, 7) })
        {
            NetworkDescriptor model = RectangularPoolNet.Model;
            var steps = Enumerable.Range(0, 3).Select(step => Data(model, batch, 10 * ranks + step)).ToArray();

            // One GPU over the whole batch.
            var singleHost = new RectangularPoolNet(batch);
            Initializer.Initialize(model, singleHost.Parameters, InitScheme.He, 3);
            Sgd singleSgd = NewOptimizer(model);
            using (var single = new CudaTrainingEngine(CreateGpu(model, RectangularPoolNet.CudaPlan, RectangularPoolNet.CudaSource, batch), singleHost, singleSgd))
            {
                single.CopyStateFromHost();
                foreach (var (images, labels) in steps) single.TrainStep(images, labels, batch, 0);
                single.CopyStateToHost();
            }

            NcclUniqueId id = NcclCommunicator.CreateUniqueId();
            var hosts = new RectangularPoolNet[ranks];
            var optimizers = new Sgd[ranks];
            var losses = new float[ranks][];
            Parallel.For(0, ranks, new ParallelOptions { MaxDegreeOfParallelism = ranks }, rank =>
            {
                hosts[rank] = new RectangularPoolNet(batch);
                Initializer.Initialize(model, hosts[rank].Parameters, InitScheme.He, 3 + (ulong)rank); // rank 0's seed is the single GPU's
                optimizers[rank] = NewOptimizer(model);
                CudaNetwork gpu = CreateGpu(model, RectangularPoolNet.CudaPlan, RectangularPoolNet.CudaSource, batch);
                using NcclCommunicator nccl = NcclCommunicator.Create(gpu.Device, rank, ranks, id, PeerTimeout);
                using var engine = new CudaDataParallelEngine(gpu, hosts[rank], optimizers[rank], nccl);
                engine.CopyStateFromHost();
                losses[rank] = steps.Select(s => engine.TrainStep(s.Images, s.Labels, batch, 0)).ToArray();
                engine.CopyStateToHost();
            });

            for (int rank = 1; rank < ranks; rank++)
            {
                Assert.Equal(hosts[0].Parameters, hosts[rank].Parameters);
                Assert.Equal(optimizers[0].Velocity, optimizers[rank].Velocity);
                Assert.Equal(losses[0], losses[rank]);
            }
            float largest = singleHost.Parameters.Max(Math.Abs);
            float difference = singleHost.Parameters.Zip(hosts[0].Parameters, (a, b) => Math.Abs(a - b)).Max();
            Console.WriteLine($"{ranks} ranks, batch {batch}: largest parameter difference from one GPU {difference:E2} (largest parameter {largest:F3})");
            Assert.True(difference <= 1e-5f * largest, $"{ranks} ranks: parameters differ from one GPU's by {difference:E2} > 1e-5 x {largest}");
            float velocityDifference = singleSgd.Velocity.Zip(optimizers[0].Velocity, (a, b) => Math.Abs(a - b)).Max();
            Assert.True(velocityDifference <= 1e-5f * singleSgd.Velocity.Max(Math.Abs), $"{ranks} ranks: momentum differs by {velocityDifference:E2}");
        }
    }

    /// <summary>
    /// An NCCL error code from a call, one NCCL reports asynchronously, a peer that never arrives at a collective, and
    /// one that never joins: each is one exception whose message says what failed, and a communicator that failed
    /// refuses further collectives.
    /// </summary>
    public static void Errors()
    {
        const int batch = 4;
        NetworkDescriptor model = RectangularPoolNet.Model;
        var (images, labels) = Data(model, batch, 0);

        // A call that returns an error: the message names the call, NCCL's text and the code.
        using (var setup = new Rank(batch, NcclCommunicator.CreateUniqueId(), 0, 1))
        {
            FakeNccl.FailNext("ncclAllReduce", 2);
            var e = Assert.Throws<NcclException>(() => setup.Engine.TrainShard(images, labels, batch, 0, batch, 0));
            Console.WriteLine(e.Message);
            Assert.Equal("ncclAllReduce failed: unhandled system error (NCCL error 2, ncclSystemError).", e.Message);
        }

        // An error NCCL reports after the call (a peer process gone): the wait reports it and aborts the communicator.
        using (var setup = new Rank(batch, NcclCommunicator.CreateUniqueId(), 0, 1))
        {
            FakeNccl.SetAsyncError(6);
            var e = Assert.Throws<NcclException>(() => setup.Engine.TrainShard(images, labels, batch, 0, batch, 0));
            FakeNccl.SetAsyncError(0);
            Console.WriteLine(e.Message);
            Assert.StartsWith("Rank 0 of 1: NCCL failed during all-reduce of ", e.Message, StringComparison.Ordinal);
            Assert.Contains("remote process exited or there was a network error (NCCL error 6, ncclRemoteError)", e.Message, StringComparison.Ordinal);
            var again = Assert.Throws<InvalidOperationException>(() => setup.Engine.TrainShard(images, labels, batch, 0, batch, 0));
            Assert.Contains("was aborted after an error", again.Message, StringComparison.Ordinal);
        }

        // Two ranks, of which rank 1 stops calling collectives after setup: rank 0's sum fails instead of hanging.
        FakeNccl.SetWaitMilliseconds(300);
        NcclUniqueId pair = NcclCommunicator.CreateUniqueId();
        Rank? first = null, second = null;
        Parallel.Invoke(() => first = new Rank(batch, pair, 0, 2), () => second = new Rank(batch, pair, 1, 2));
        using (first)
        using (second)
        {
            var e = Assert.Throws<NcclException>(() => first!.Engine.TrainShard(images[..(2 * model.InputLength)], labels[..2], 2, 0, batch, 0));
            Console.WriteLine(e.Message);
            Assert.StartsWith("Rank 0 of 2: NCCL failed during all-reduce of ", e.Message, StringComparison.Ordinal);
        }

        // A rank whose peer never joins: setup gives up after the peer timeout.
        CudaNetwork lonely = CreateGpu(model, RectangularPoolNet.CudaPlan, RectangularPoolNet.CudaSource, batch);
        using (lonely)
        {
            FakeNccl.SetWaitMilliseconds(60_000);
            var e = Assert.Throws<CommunicatorTimeoutException>(() => NcclCommunicator.Create(lonely.Device, 0, 2, NcclCommunicator.CreateUniqueId(), TimeSpan.FromSeconds(1)));
            Console.WriteLine(e.Message);
            Assert.Equal("Rank 0 of 2: NCCL's communicator setup did not complete within 1 s; another rank has died, stalled or is running different settings (see its output).", e.Message);
        }

        // A follower whose rank 0 never writes the id file.
        string missing = Path.Combine(Path.GetTempPath(), $"alexnet-no-such-id-{Environment.ProcessId}");
        var timeout = Assert.Throws<CommunicatorTimeoutException>(() => NcclCommunicator.ShareUniqueIdThroughFile(missing, 1, TimeSpan.FromMilliseconds(200)));
        Assert.Contains("the NCCL unique id did not appear in", timeout.Message, StringComparison.Ordinal);
    }

    /// <summary>ALEXNET_NCCL_PATH names a file that does not exist: one exception, one line naming it and what to install.</summary>
    public static void MissingLibrary()
    {
        var e = Assert.Throws<NcclUnavailableException>(() => NcclCommunicator.CreateUniqueId());
        Console.WriteLine(e.Message);
        Assert.Equal("Could not load NVIDIA's NCCL library libnccl.so.2 (pip install nvidia-nccl-cu13, or the libnccl2 package; or set ALEXNET_NCCL_PATH to the file); " +
            "tried /nonexistent/libnccl.so.2.", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    /// <summary>One rank's GPU network, communicator and engine.</summary>
    private sealed class Rank : IDisposable
    {
        public Rank(int batch, NcclUniqueId id, int rank, int size)
        {
            NetworkDescriptor model = RectangularPoolNet.Model;
            var host = new RectangularPoolNet(batch);
            Initializer.Initialize(model, host.Parameters, InitScheme.He, 3);
            CudaNetwork gpu = CreateGpu(model, RectangularPoolNet.CudaPlan, RectangularPoolNet.CudaSource, batch);
            Communicator = NcclCommunicator.Create(gpu.Device, rank, size, id, PeerTimeout);
            Engine = new CudaDataParallelEngine(gpu, host, NewOptimizer(model), Communicator);
            Engine.CopyStateFromHost();
        }

        public NcclCommunicator Communicator { get; }
        public CudaDataParallelEngine Engine { get; }

        public void Dispose() => Engine.Dispose(); // the communicator too
    }

    /// <summary>The fake's controls (tests/NcclFake/fake_nccl.cpp), from the library ALEXNET_NCCL_PATH names.</summary>
    private static class FakeNccl
    {
        private static readonly IntPtr Library = NativeLibrary.Load(Environment.GetEnvironmentVariable("ALEXNET_NCCL_PATH")!);

        public static void FailNext(string call, int result)
        {
            var function = (delegate* unmanaged<byte*, int, void>)NativeLibrary.GetExport(Library, "fake_nccl_fail_next");
            fixed (byte* name = System.Text.Encoding.UTF8.GetBytes(call + "\0")) function(name, result);
        }

        public static void SetAsyncError(int result) =>
            ((delegate* unmanaged<int, void>)NativeLibrary.GetExport(Library, "fake_nccl_set_async_error"))(result);

        public static void SetWaitMilliseconds(long milliseconds) =>
            ((delegate* unmanaged<long, void>)NativeLibrary.GetExport(Library, "fake_nccl_set_wait_ms"))(milliseconds);
    }

    private static CudaNetwork CreateGpu(NetworkDescriptor model, CudaLaunchPlan plan, string source, int batch) =>
        // One GEMM tile: no tuning runs, and the emulator library holds that tile's kernels.
        CudaNetwork.Create(model, plan, source, batch, new CudaRunnerOptions(GemmTiles: [CudaGemmTile.Default]));

    private static Sgd NewOptimizer(NetworkDescriptor model) => new(checked((int)model.ParameterCount), Options);

    // Batch number `index`: inputs uniform in [-1, 1), labels uniform over the classes.
    private static (float[] Images, int[] Labels) Data(NetworkDescriptor model, int batch, int index)
    {
        var random = SeededRandom.ForStream(42, (ulong)index);
        float[] images = new float[batch * model.InputLength];
        for (int i = 0; i < images.Length; i++) images[i] = 2 * random.NextSingle() - 1;
        int[] labels = new int[batch];
        for (int i = 0; i < labels.Length; i++) labels[i] = random.NextInt(model.ClassCount);
        return (images, labels);
    }
}
