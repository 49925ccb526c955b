using System.Globalization;
using System.Runtime.Versioning;
using AlexNetCompiler.Checkpoints;
using AlexNetCompiler.Tests.Data;
using AlexNetCompiler.Training;
using FashionMnist;
using FashionMnist.App;
using Xunit.Abstractions;

namespace AlexNetCompiler.Tests.App;

/// <summary>The tiny data set, and the uninterrupted run every interrupted one must end up equal to.</summary>
[SupportedOSPlatform("linux")]
public sealed class FaultInjectionFixture : IDisposable
{
    public const int Epochs = 5;

    private readonly TempFolder _folder = new();
    private readonly Lazy<CheckpointState> _uninterrupted;

    public FaultInjectionFixture()
    {
        // 100 training images: 4 batches per epoch, so a run is mostly checkpoint writes of a few MB each.
        TinyData.WriteFolder(TinyData.Slice(10, 5), DataFolder);
        _uninterrupted = new(() =>
        {
            string output = _folder.File("uninterrupted");
            using CliProcess run = CliProcess.Run(FaultInjectionTests.TrainArguments(this, output, Epochs));
            Assert.True(run.ExitCode == 0, run.Describe());
            return CheckpointState.Load(Path.Combine(output, Trainer.LastCheckpointName));
        });
    }

    public string DataFolder => _folder.Path;

    /// <summary>last.safetensors of an uninterrupted run of <see cref="Epochs"/> epochs.</summary>
    public CheckpointState Uninterrupted => _uninterrupted.Value;

    public void Dispose() => _folder.Dispose();
}

/// <summary>A checkpoint read back in full: parameters, momentum and metadata.</summary>
public sealed record CheckpointState(float[] Parameters, float[] Velocity, IReadOnlyDictionary<string, string> Metadata)
{
    /// <summary>Checkpoint.Load checks the header, every tensor's shape and that the data section fills the file: a torn file fails.</summary>
    public static CheckpointState Load(string path)
    {
        var parameters = new float[FashionNet.Model.ParameterCount];
        var optimizer = new Sgd(parameters.Length, new SgdOptions());
        IReadOnlyDictionary<string, string> metadata = Checkpoint.Load(path, FashionNet.Model, parameters, optimizer);
        return new CheckpointState(parameters, optimizer.Velocity, metadata);
    }

    public int EpochsCompleted => int.Parse(Metadata["epochs_completed"], CultureInfo.InvariantCulture);
    public string BestSha256 => Metadata["best_sha256"];
}

/// <summary>
/// The train command as real processes under faults: killed (SIGKILL) or stopped (SIGTERM) in the middle of a
/// checkpoint write, a second run in a folder in use, an output folder it may not write. No user work may be lost.
/// </summary>
[Collection(nameof(FaultInjectionTests))]
[SupportedOSPlatform("linux")]
public sealed class FaultInjectionTests : IClassFixture<FaultInjectionFixture>, IDisposable
{
    /// <summary>
    /// Runs tried until a signal lands inside a write. A write (5 MB, fsync, rename) takes milliseconds and the
    /// signal follows the inotify event of its temporary file within a fraction of that, so nearly every run lands.
    /// </summary>
    private const int MaxAttempts = 8;

    private readonly FaultInjectionFixture _fixture;
    private readonly ITestOutputHelper _log;
    private readonly TempFolder _folder = new();
    private int _runs;

    public FaultInjectionTests(FaultInjectionFixture fixture, ITestOutputHelper log)
    {
        _fixture = fixture;
        _log = log;
    }

    public void Dispose() => _folder.Dispose();

    /// <summary>A train command line on the tiny data; seed 5 improves test accuracy in epochs 1, 2 and 4, which gives every <see cref="WriteTarget"/>.</summary>
    public static string[] TrainArguments(FaultInjectionFixture fixture, string output, int epochs, params string[] extra) =>
        ["train", "--data", fixture.DataFolder, "--batch-size", "25", "--epochs", epochs.ToString(CultureInfo.InvariantCulture), "--test-views", "1",
            "--device", "cpu", "--threads", "2", "--seed", "5", "--output", output, .. extra];

    private string[] Train(string output, params string[] extra) => TrainArguments(_fixture, output, FaultInjectionFixture.Epochs, extra);

    /// <summary>An empty output folder, existing already so that its writes can be watched from the start.</summary>
    private string NewOutputFolder()
    {
        string folder = _folder.File($"run{++_runs}");
        Directory.CreateDirectory(folder);
        return folder;
    }

    private static string LastPath(string folder) => Path.Combine(folder, Trainer.LastCheckpointName);
    private static string BestPath(string folder) => Path.Combine(folder, Trainer.BestCheckpointName);
    private static string[] TemporaryFiles(string folder) => Directory.GetFiles(folder, "*.tmp");

    /// <summary>The checkpoint write to interrupt; every one comes after epoch 1, so that a last exists to resume from.</summary>
    public enum WriteTarget
    {
        /// <summary>best of an epoch that improved.</summary>
        Best,
        /// <summary>last of any epoch.</summary>
        Last,
        /// <summary>last right after best, the epoch before having improved too: a resume rewrites best from its state.</summary>
        LastJustAfterBest,
        /// <summary>last right after best, the epoch before not having improved: a resume keeps that best aside.</summary>
        LastJustAfterBestFollowingNoImprovement,
    }

    private static bool IsTarget(CheckpointWrite write, WriteTarget target) => write.Epoch >= 2 && target switch
    {
        WriteTarget.Best => write.Checkpoint == "best",
        WriteTarget.Last => write.Checkpoint == "last",
        WriteTarget.LastJustAfterBest => write is { Checkpoint: "last", EpochImproved: true, PreviousEpochImproved: true },
        WriteTarget.LastJustAfterBestFollowingNoImprovement => write is { Checkpoint: "last", EpochImproved: true, PreviousEpochImproved: false },
        _ => throw new ArgumentOutOfRangeException(nameof(target)),
    };

    private sealed record Interruption(string Folder, CliProcess Run, CheckpointWrite Write);

    /// <summary>
    /// Starts a run and sends <paramref name="signal"/> as soon as the target write's temporary file appears; repeats
    /// with a fresh folder (up to <see cref="MaxAttempts"/>) while the signal arrives only after the rename.
    /// </summary>
    private Interruption Interrupt(WriteTarget target, int signal, List<CliProcess> started)
    {
        var misses = new List<string>();
        for (int attempt = 1; attempt <= MaxAttempts; attempt++)
        {
            string output = NewOutputFolder();
            var signalled = new TaskCompletionSource<(CheckpointWrite Write, bool Present)>(TaskCreationOptions.RunContinuationsAsynchronously);
            using var watcher = new CheckpointWriteWatcher(output, write =>
            {
                if (!IsTarget(write, target)) return false;
                CliProcess.Signal(write.WriterId, signal);
                signalled.SetResult((write, File.Exists(write.TemporaryPath)));
                return true;
            });
            CliProcess run = CliProcess.Start(Train(output));
            started.Add(run);
            run.WaitForExit();
            if (!signalled.Task.IsCompleted)
            {
                // The data and seed fix which epochs improve, so this is no accident of timing.
                Assert.Fail($"The run made no write of kind {target} (writes: {string.Join(", ", watcher.Seen.Select(w => $"{w.Checkpoint}@{w.Epoch}"))}); " +
                    $"choose another --seed in {nameof(TrainArguments)}. {run.Describe()}");
            }
            var (write, present) = signalled.Task.Result;
            Assert.Equal(run.Id, write.WriterId);
            // SIGKILL: the temporary file still there proves the write was cut short. SIGTERM lets the write
            // finish, so it is judged by the file being there just after the signal was sent.
            bool landed = signal == CliProcess.SigKill ? File.Exists(write.TemporaryPath) : present;
            if (landed)
            {
                _log.WriteLine($"attempt {attempt}: signal {signal} landed inside {Path.GetFileName(write.TemporaryPath)} (epoch {write.Epoch})");
                return new Interruption(output, run, write);
            }
            misses.Add($"attempt {attempt}: the signal reached process {run.Id} after {Path.GetFileName(write.TemporaryPath)} was renamed (exit {run.ExitCode})");
            _log.WriteLine(misses[^1]);
        }
        Assert.Fail($"In {MaxAttempts} runs no signal landed inside a checkpoint write, which takes milliseconds; is inotify delivering events late?\n" +
            string.Join("\n", misses));
        return null!;
    }

    [Theory]
    [InlineData(WriteTarget.Best)]
    [InlineData(WriteTarget.LastJustAfterBest)]
    [InlineData(WriteTarget.LastJustAfterBestFollowingNoImprovement)]
    public void KillDuringACheckpointWrite_KeepsThePreviousCheckpoints_AndResumeCleansUpAndContinuesExactly(WriteTarget target)
    {
        var started = new List<CliProcess>();
        try
        {
            Interruption killed = Interrupt(target, CliProcess.SigKill, started);
            string output = killed.Folder;
            Assert.True(killed.Run.ExitCode == 128 + CliProcess.SigKill, killed.Run.Describe());
            Assert.Equal([killed.Write.TemporaryPath], TemporaryFiles(output));

            // Both checkpoints are whole: last of the epoch before; best of an earlier epoch, or of this one when
            // the kill came in last's write, since best was renamed into place before that began.
            CheckpointState last = CheckpointState.Load(LastPath(output));
            CheckpointState best = CheckpointState.Load(BestPath(output));
            string bestSha256 = Checkpoint.FileSha256(BestPath(output));
            Assert.Equal(killed.Write.Epoch - 1, last.EpochsCompleted);
            if (target == WriteTarget.Best)
            {
                Assert.Equal(last.BestSha256, bestSha256);
            }
            else
            {
                Assert.Equal(killed.Write.Epoch, best.EpochsCompleted);
                Assert.NotEqual(last.BestSha256, bestSha256); // last still names the previous best: resume must notice
            }

            using CliProcess resumed = CliProcess.Run(Train(output, "--resume"));
            Assert.True(resumed.ExitCode == 0, resumed.Describe());
            Assert.DoesNotContain("   at ", resumed.Output);
            string notices = Unwrapped(resumed.Stdout);
            string stale = BestPath(output) + RunFolder.StaleBestSuffix;
            switch (target)
            {
                case WriteTarget.Best:
                    Assert.DoesNotContain("does not match", notices);
                    break;
                case WriteTarget.LastJustAfterBest:
                    Assert.Contains("does not match the checksum", notices);
                    Assert.Contains("rewrote it from the resumed state", notices);
                    Assert.False(File.Exists(stale));
                    break;
                case WriteTarget.LastJustAfterBestFollowingNoImprovement:
                    Assert.Contains("does not match the checksum", notices);
                    Assert.Contains("kept aside", notices);
                    Assert.Equal(bestSha256, Checkpoint.FileSha256(stale)); // the newer best is set aside, not deleted
                    break;
            }
            AssertFinishedLikeTheUninterruptedRun(output);
        }
        finally
        {
            foreach (CliProcess run in started) run.Dispose();
        }
    }

    [Theory]
    [InlineData(WriteTarget.Best)]
    [InlineData(WriteTarget.Last)]
    public void SigtermDuringACheckpointWrite_SavesLastAndExits130_AndResumeContinuesExactly(WriteTarget target)
    {
        var started = new List<CliProcess>();
        try
        {
            Interruption stopped = Interrupt(target, CliProcess.SigTerm, started);
            string output = stopped.Folder;
            Assert.Empty(TemporaryFiles(output));
            Assert.False(File.Exists(Path.Combine(output, RunFolderLock.FileName)), "the lock file is removed on the way out");
            CheckpointState last = CheckpointState.Load(LastPath(output));
            int exitCode = stopped.Run.ExitCode;
            _log.WriteLine($"exit {exitCode}; last holds {last.EpochsCompleted} epochs");
            // 130 after saving; 0 only if the signal came too late to stop any epoch (the run had finished).
            Assert.True(exitCode == 130 || (exitCode == 0 && last.EpochsCompleted == FaultInjectionFixture.Epochs), stopped.Run.Describe());
            Assert.DoesNotContain("   at ", stopped.Run.Output);
            if (exitCode == 130)
            {
                Assert.Contains("Interrupted", stopped.Run.Stdout);
                Assert.True(last.EpochsCompleted >= stopped.Write.Epoch, $"last holds {last.EpochsCompleted} epochs, the signal came during epoch {stopped.Write.Epoch}'s write");
            }
            Assert.Equal(last.BestSha256, Checkpoint.FileSha256(BestPath(output)));

            using CliProcess resumed = CliProcess.Run(Train(output, "--resume"));
            Assert.True(resumed.ExitCode == 0, resumed.Describe());
            Assert.DoesNotContain("   at ", resumed.Output);
            AssertFinishedLikeTheUninterruptedRun(output);
        }
        finally
        {
            foreach (CliProcess run in started) run.Dispose();
        }
    }

    /// <summary>All epochs, bit for bit the parameters and momentum of the run never interrupted, and best agreeing with last.</summary>
    private void AssertFinishedLikeTheUninterruptedRun(string output)
    {
        Assert.Empty(TemporaryFiles(output));
        Assert.False(File.Exists(Path.Combine(output, RunFolderLock.FileName)));
        CheckpointState last = CheckpointState.Load(LastPath(output));
        Assert.Equal(FaultInjectionFixture.Epochs, last.EpochsCompleted);
        CheckpointState expected = _fixture.Uninterrupted;
        Assert.Equal(expected.Metadata["step"], last.Metadata["step"]);
        Assert.True(expected.Parameters.AsSpan().SequenceEqual(last.Parameters), "parameters differ from the uninterrupted run");
        Assert.True(expected.Velocity.AsSpan().SequenceEqual(last.Velocity), "momentum differs from the uninterrupted run");
        Assert.Equal(expected.Metadata["best_epoch"], last.Metadata["best_epoch"]);
        Assert.NotEqual("", last.BestSha256);
        Assert.Equal(last.BestSha256, Checkpoint.FileSha256(BestPath(output)));
        CheckpointState.Load(BestPath(output));
    }

    [Fact]
    public void ASecondRunInAFolderInUse_FailsInOneLineNamingTheHolder_AndTheFirstFinishesIntact()
    {
        string output = NewOutputFolder();
        var started = new List<CliProcess>();
        try
        {
            // The first run is paused (SIGSTOP) at its first checkpoint write of epoch 2, when it holds the lock and
            // epoch 1's checkpoints, so that it cannot finish before the others run however slow or fast the machine is.
            using var paused = new ManualResetEventSlim();
            CliProcess first;
            using (new CheckpointWriteWatcher(output, write =>
            {
                if (write.Epoch < 2) return false;
                CliProcess.Signal(write.WriterId, CliProcess.SigStop);
                paused.Set();
                return true;
            }))
            {
                first = CliProcess.Start(Train(output));
                started.Add(first);
                while (!paused.Wait(TimeSpan.FromMilliseconds(100)))
                    Assert.False(first.HasExited, $"The first run ended before its checkpoints of epoch 2. {first.Describe()}");
            }
            IReadOnlyDictionary<string, string> before = Snapshot(output);
            Assert.Contains(Trainer.LastCheckpointName, before.Keys);

            var refused = new List<CliProcess>();
            foreach (string[] second in new[] { Train(output), Train(output, "--resume"), Train(output, "--force") })
            {
                CliProcess run = CliProcess.Run(second);
                started.Add(run);
                refused.Add(run);
                Assert.True(run.ExitCode == 1, run.Describe());
                Assert.Contains($"process {first.Id}", Unwrapped(run.Output));
                Assert.DoesNotContain("   at ", run.Output);
                Assert.Equal(before, Snapshot(output)); // nothing written, nothing deleted
            }

            Assert.True(first.Signal(CliProcess.SigCont));
            Assert.True(first.WaitForExit() == 0, first.Describe());
            Assert.Empty(TemporaryFiles(output));
            Assert.False(File.Exists(Path.Combine(output, RunFolderLock.FileName)));
            CheckpointState last = CheckpointState.Load(LastPath(output));
            Assert.Equal(FaultInjectionFixture.Epochs, last.EpochsCompleted);
            Assert.Equal(last.BestSha256, Checkpoint.FileSha256(BestPath(output)));

            foreach (CliProcess run in refused)
                Assert.Contains($"process {first.Id}", SingleErrorLine(run));
        }
        finally
        {
            foreach (CliProcess run in started) run.Dispose();
        }
    }

    [Fact]
    public void AnOutputFolderItMayNotWrite_FailsInOneLineNamingIt_AndDeletesNothing()
    {
        string output = NewOutputFolder();
        using (CliProcess setup = CliProcess.Run(TrainArguments(_fixture, output, 1)))
            Assert.True(setup.ExitCode == 0, setup.Describe());
        IReadOnlyDictionary<string, string> before = Snapshot(output);
        Assert.Contains(Trainer.LastCheckpointName, before.Keys);

        // Root ignores file modes: the child then runs as nobody, for whom the folder (root's, 0555) is read-only.
        using UnprivilegedUser? nobody = CliProcess.RunningAsRoot ? UnprivilegedUser.Create() : null;
        UnixFileMode mode = File.GetUnixFileMode(output);
        File.SetUnixFileMode(output, UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute |
            UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        var runs = new List<(CliProcess Run, string Named)>();
        try
        {
            string inside = Path.Combine(output, "fresh");
            foreach (var (arguments, named) in new[]
            {
                (TrainArguments(_fixture, output, 2, "--resume"), output),
                (TrainArguments(_fixture, output, 2, "--force"), output),
                (TrainArguments(_fixture, inside, 2), inside),
            })
            {
                CliProcess run = CliProcess.Run(arguments, nobody);
                runs.Add((run, named));
                Assert.True(run.ExitCode == 1, run.Describe());
                Assert.DoesNotContain("   at ", run.Output);
                Assert.Equal(before, Snapshot(output));
            }
            foreach (var (run, named) in runs)
                Assert.Contains(named, SingleErrorLine(run));
        }
        finally
        {
            File.SetUnixFileMode(output, mode);
            foreach (var (run, _) in runs) run.Dispose();
        }
    }

    /// <summary>The one line a failed command prints: "error: ..." (a log keeps it whole, a grep finds it).</summary>
    private static string SingleErrorLine(CliProcess run)
    {
        string[] lines = run.OutputLines;
        Assert.True(lines.Length == 1 && lines[0].StartsWith("error:", StringComparison.Ordinal),
            $"Expected one line \"error: ...\", got {lines.Length}:\n{string.Join("\n", lines)}");
        return lines[0];
    }

    /// <summary>The text with line breaks as spaces: the console wraps long lines at 80 columns when redirected.</summary>
    private static string Unwrapped(string text) => System.Text.RegularExpressions.Regex.Replace(text, @"\s+", " ");

    /// <summary>
    /// Every file in the folder (hidden ones too) with its SHA-256, or "in use" for one a running writer holds
    /// (the lock, a temporary file: .NET's reads take a shared flock, which their exclusive one refuses).
    /// </summary>
    private static IReadOnlyDictionary<string, string> Snapshot(string folder)
    {
        var files = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (string file in Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories))
        {
            string hash;
            try { hash = Checkpoint.FileSha256(file); }
            catch (IOException) { hash = "in use"; }
            files[Path.GetRelativePath(folder, file)] = hash;
        }
        return files;
    }
}

[CollectionDefinition(nameof(FaultInjectionTests))]
public sealed class FaultInjectionCollection;
