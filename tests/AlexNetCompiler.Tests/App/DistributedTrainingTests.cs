using System.Runtime.Versioning;
using AlexNetCompiler.Checkpoints;
using AlexNetCompiler.Testing;
using AlexNetCompiler.Training;
using FashionMnist;
using FashionMnist.App;

namespace AlexNetCompiler.Tests.App;

/// <summary>
/// <c>train --distributed</c> as real Open MPI jobs (<c>mpirun -np 2</c>) against one process over the same batches:
/// the parameters must agree, a resume may change the number of ranks, and a rank that dies or stalls must end the job
/// with a message that names what happened. About a minute on two cores.
/// </summary>
[Collection(nameof(DistributedTrainingTests))]
[SupportedOSPlatform("linux")]
public sealed class DistributedTrainingTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "alexnet-mpi-" + Guid.NewGuid().ToString("N"));
    private readonly string _data;

    public DistributedTrainingTests()
    {
        _data = Path.Combine(_root, "data");
        // 40 training images: 5 batches of 8 per epoch, split 4 + 4 over two ranks; 20 test images.
        TinyData.WriteFolder(TinyData.Slice(trainPerClass: 4, testPerClass: 2), _data);
    }

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (DirectoryNotFoundException) { }
    }

    private string[] TrainArguments(string output, int epochs, params string[] more) =>
    [
        "train", "--data", _data, "--epochs", epochs.ToString(System.Globalization.CultureInfo.InvariantCulture), "--batch-size", "8", "--lr", "0.01",
        // One kernel thread in every process: the single-process run then splits no sum over threads either.
        "--threads", "1", "--test-views", "1", "--device", "cpu", "--output", output, .. more,
    ];

    private static CliProcess Succeeds(CliProcess process)
    {
        using (process)
        {
            process.WaitForExit();
            Assert.True(process.ExitCode == 0, process.Describe());
            return process;
        }
    }

    private static (float[] Parameters, float[] Velocity, IReadOnlyDictionary<string, string> Metadata) Load(string folder)
    {
        var parameters = new float[FashionNet.ParameterCount];
        var optimizer = new Sgd(parameters.Length, new SgdOptions());
        IReadOnlyDictionary<string, string> metadata = Checkpoint.Load(Path.Combine(folder, Trainer.LastCheckpointName), FashionNet.Model, parameters, optimizer);
        return (parameters, optimizer.Velocity, metadata);
    }

    /// <summary>
    /// Equal within 1e-5 of the largest magnitude. Not bit-identical: one process sums each gradient over the batch's
    /// 8 samples in one pass, two ranks sum 4 and 4 and then add the two partial sums (the 2-rank sum itself, a + b, is
    /// the same on both ranks). The shards' gradients are scaled by 4/8 = 1/2, a power of two, which rounds nothing. A
    /// float32 sum's rounding is at most a few units of 2^-24 relative to the sum of magnitudes, so 1e-5 leaves a wide
    /// margin, while a wrong dropout mask or a shard missing from the sum moves parameters by lr * gradient, 1e-3 or
    /// more. These are whole runs, not single steps: a max pool choice between inputs within rounding of each other
    /// could flip in a later step and move parameters by lr * gradient too (docs/distributed.md). On this data it does
    /// not, and with one thread per rank the runs are deterministic, so the outcome is the same on every run.
    /// </summary>
    private static void AssertClose(float[] expected, float[] actual, string what)
    {
        float scale = expected.Max(MathF.Abs);
        float worst = 0;
        int at = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            float difference = MathF.Abs(expected[i] - actual[i]);
            if (difference > worst) (worst, at) = (difference, i);
        }
        Assert.True(worst <= 1e-5f * scale, $"{what}: largest difference {worst:G3} at {at} ({actual[at]} vs {expected[at]}), largest magnitude {scale:G3}");
    }

    [SkippableFact]
    public void TwoRanks_EndWithTheParametersOfOneProcess_AndAResumeMayChangeTheNumberOfRanks()
    {
        ToolRequirement.OpenMpi();
        string single = Path.Combine(_root, "single"), parallel = Path.Combine(_root, "parallel");
        Succeeds(CliProcess.Start(TrainArguments(single, epochs: 2)));
        CliProcess job = Succeeds(CliProcess.StartMpi(2, TrainArguments(parallel, epochs: 2, "--distributed")));

        // Rank 0 alone printed and wrote: one header, one line per epoch, the run's files in the folder.
        Assert.Equal(1, CountOf(job.Stdout, "alexnet-fashion train"));
        Assert.Equal(2, job.OutputLines.Count(l => l.StartsWith("test loss ", StringComparison.Ordinal))); // the epoch lines
        Assert.Contains("rank 0 of 2", job.Stdout);
        Assert.Equal(3, File.ReadAllLines(Path.Combine(parallel, MetricsLog.CsvName)).Length); // header + 2 epochs
        (float[] oneProcess, float[] oneVelocity, _) = Load(single);
        (float[] twoRanks, float[] twoVelocity, IReadOnlyDictionary<string, string> metadata) = Load(parallel);
        Assert.Equal("10", metadata["step"]);
        AssertClose(oneProcess, twoRanks, "parameters after 2 epochs, 1 process vs 2 ranks");
        AssertClose(oneVelocity, twoVelocity, "momentum after 2 epochs, 1 process vs 2 ranks");

        // A third epoch: the one-process run by one process, a copy of it by two ranks, the two-rank run by one process.
        string singleToTwo = Path.Combine(_root, "single-then-two");
        CopyFolder(single, singleToTwo);
        Succeeds(CliProcess.Start(TrainArguments(single, epochs: 3, "--resume")));
        Succeeds(CliProcess.StartMpi(2, TrainArguments(singleToTwo, epochs: 3, "--resume", "--distributed")));
        Succeeds(CliProcess.Start(TrainArguments(parallel, epochs: 3, "--resume")));
        (float[] expected, _, _) = Load(single);
        AssertClose(expected, Load(singleToTwo).Parameters, "after resuming a 1-process checkpoint with 2 ranks");
        AssertClose(expected, Load(parallel).Parameters, "after resuming a 2-rank checkpoint in 1 process");
        Assert.Equal("15", Load(singleToTwo).Metadata["step"]);
    }

    [SkippableFact]
    public void ARankKilledMidRun_EndsTheJob_AndMpirunNamesIt()
    {
        ToolRequirement.OpenMpi();
        // The peer timeout is far longer than mpirun needs to end the job, so the job must end through mpirun, not
        // through rank 0 giving up on its own (which the last assertion rules out).
        using CliProcess job = CliProcess.StartMpi(2, TrainArguments(Path.Combine(_root, "killed"), epochs: 10_000, "--distributed", "--peer-timeout", "120"));
        WaitForTraining(job);
        Assert.True(CliProcess.Signal(job.RankProcessIds()[1], CliProcess.SigKill));
        job.WaitForExit();
        Assert.NotEqual(0, job.ExitCode);
        Assert.Contains("process rank 1", job.Output);
        Assert.Contains("exited on signal 9", job.Output);
        Assert.DoesNotContain("did not complete within", job.Output);
    }

    [SkippableFact]
    public void AStalledRank_MakesTheOthersStopAfterThePeerTimeout_WithOneErrorLine()
    {
        ToolRequirement.OpenMpi();
        // Rank 1 is stopped (SIGSTOP) and never answers: rank 0 must give up after --peer-timeout and say why. The
        // limit only has to outlast a normal step and rank 0's evaluation at an epoch's end (well under a second here;
        // 20 s leaves room for a loaded machine).
        using CliProcess job = CliProcess.StartMpi(2, TrainArguments(Path.Combine(_root, "stalled"), epochs: 10_000, "--distributed", "--peer-timeout", "20"));
        WaitForTraining(job);
        int stalled = job.RankProcessIds()[1];
        Assert.True(CliProcess.Signal(stalled, CliProcess.SigStop));
        try
        {
            job.WaitForExit();
        }
        finally
        {
            CliProcess.Signal(stalled, CliProcess.SigKill); // whatever mpirun did with it
        }
        Assert.NotEqual(0, job.ExitCode);
        // Rank 0 reports first. When mpirun then ends the job it continues the stopped rank (SIGCONT, then SIGTERM),
        // which may report its own timeout before it goes: each error line is one such line, no stack trace.
        string[] errors = job.OutputLines.Where(l => l.StartsWith("error:", StringComparison.Ordinal)).ToArray();
        Assert.True(errors.Length is 1 or 2, job.Describe());
        Assert.StartsWith("error: Rank 0 of 2: ", errors[0]);
        Assert.All(errors, e => Assert.Matches(@"^error: Rank [01] of 2: (all-reduce|broadcast) of \d+ floats did not complete within 20 s; another rank has died, stalled", e));
        Assert.DoesNotContain(job.OutputLines, l => l.StartsWith("at ", StringComparison.Ordinal)); // no stack frame
    }

    [Fact]
    public void PeerTimeoutWithoutDistributed_AndTf32OnTheCpu_AreRefusedNamingTheOption()
    {
        using CliProcess timeout = CliProcess.Run(TrainArguments(Path.Combine(_root, "a"), 1, "--peer-timeout", "5"));
        Assert.Equal(1, timeout.ExitCode);
        Assert.Equal("error: --peer-timeout applies to --distributed training only.", Assert.Single(timeout.OutputLines, l => l.StartsWith("error", StringComparison.Ordinal)));
        using CliProcess tf32 = CliProcess.Run(["train", "--data", _data, "--distributed", "--tf32", "--output", Path.Combine(_root, "b")]);
        Assert.Equal(1, tf32.ExitCode);
        Assert.Contains("error: --tf32 needs --device cuda: --distributed trains on the CPU unless --device cuda is given.", tf32.Output);
        using CliProcess zero = CliProcess.Run(["train", "--data", _data, "--distributed", "--peer-timeout", "0", "--output", Path.Combine(_root, "c")]);
        Assert.Contains("error: --peer-timeout 0: must be in [1, 86400] seconds.", zero.Output);
        Assert.False(Directory.Exists(Path.Combine(_root, "a")) || Directory.Exists(Path.Combine(_root, "b")) || Directory.Exists(Path.Combine(_root, "c")));
    }

    [Fact]
    public void DistributedWithoutOpenMpi_IsOneLineSayingWhatToInstall()
    {
        // The library is looked up when MPI starts; a path to nothing stands for a machine without Open MPI.
        using CliProcess run = CliProcess.Run(["train", "--data", _data, "--distributed", "--output", Path.Combine(_root, "no-mpi")],
            environment: new Dictionary<string, string> { ["ALEXNET_MPI_PATH"] = Path.Combine(_root, "missing", "libmpi.so") });
        Assert.Equal(1, run.ExitCode);
        string error = Assert.Single(run.OutputLines, l => l.StartsWith("error", StringComparison.Ordinal));
        Assert.StartsWith("error: --distributed: Could not load Open MPI's libmpi (install openmpi-bin, or set ALEXNET_MPI_PATH)", error);
        Assert.False(Directory.Exists(Path.Combine(_root, "no-mpi")));
    }

    [SkippableFact]
    public void CtrlCToMpirun_StopsEveryRankAtOneBatch_RankZeroSaves_AndTheRunResumes()
    {
        ToolRequirement.OpenMpi();
        const int SigInt = 2; // what a terminal sends mpirun for Ctrl+C; mpirun passes it on to the ranks as SIGTERM
        string output = Path.Combine(_root, "interrupted");
        using (CliProcess job = CliProcess.StartMpi(2, TrainArguments(output, epochs: 10_000, "--distributed")))
        {
            WaitForTraining(job);
            Assert.True(CliProcess.Signal(job.Id, SigInt));
            job.WaitForExit();
            Assert.NotEqual(0, job.ExitCode);
            Assert.Contains("Interrupted.", job.Stdout);
            Assert.DoesNotContain("did not complete within", job.Output); // the ranks agreed; none waited for the other
        }
        (_, _, IReadOnlyDictionary<string, string> metadata) = Load(output);
        long step = long.Parse(metadata["step"], System.Globalization.CultureInfo.InvariantCulture);
        int completed = int.Parse(metadata["epochs_completed"], System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(step >= 1, "the run stopped after training, so it saved at least one step");

        // Resumed by the same two ranks for one more epoch: it continues from the saved step.
        string epochs = (completed + 1).ToString(System.Globalization.CultureInfo.InvariantCulture);
        CliProcess resumed = Succeeds(CliProcess.StartMpi(2, TrainArguments(output, epochs: completed + 1, "--resume", "--distributed")));
        Assert.Contains("Resumed from", resumed.Stdout);
        (_, _, IReadOnlyDictionary<string, string> after) = Load(output);
        Assert.Equal(epochs, after["epochs_completed"]);
        Assert.Equal((5 * (completed + 1)).ToString(System.Globalization.CultureInfo.InvariantCulture), after["step"]); // 5 batches an epoch
    }

    [Fact]
    public void DistributedOnCudaWithoutNccl_IsOneLineSayingWhatToInstall()
    {
        // NCCL is loaded before MPI, the device or the output folder; a path to nothing stands for a machine without it.
        string missing = Path.Combine(_root, "missing", "libnccl.so.2");
        using CliProcess run = CliProcess.Run(["train", "--data", _data, "--distributed", "--device", "cuda", "--output", Path.Combine(_root, "no-nccl")],
            environment: new Dictionary<string, string> { ["ALEXNET_NCCL_PATH"] = missing });
        Assert.Equal(1, run.ExitCode);
        string error = Assert.Single(run.OutputLines, l => l.StartsWith("error", StringComparison.Ordinal));
        Assert.Equal("error: --distributed --device cuda: Could not load NVIDIA's NCCL library libnccl.so.2 (pip install nvidia-nccl-cu13, or the libnccl2 " +
            $"package; or set ALEXNET_NCCL_PATH to the file); tried {missing}.", error);
        Assert.False(Directory.Exists(Path.Combine(_root, "no-nccl")));
    }

    /// <summary>Until rank 0 has printed its first progress line ("epoch 1/N batch b/B ..."): both ranks are then inside the training loop.</summary>
    private static void WaitForTraining(CliProcess job)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!System.Text.RegularExpressions.Regex.IsMatch(job.Stdout, @" batch \d+/\d+ "))
        {
            Assert.False(job.HasExited, "the job ended before training: " + job.Describe());
            Assert.True(clock.Elapsed < CliProcess.HangGuard, "no progress line: " + job.Describe());
            Thread.Sleep(100);
        }
    }

    private static int CountOf(string text, string part) => (text.Length - text.Replace(part, "", StringComparison.Ordinal).Length) / part.Length;

    private static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (string file in Directory.GetFiles(from)) File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
    }
}
