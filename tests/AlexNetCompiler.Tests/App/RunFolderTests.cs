using AlexNetCompiler.Checkpoints;
using AlexNetCompiler.Cpu;
using AlexNetCompiler.Data;
using AlexNetCompiler.Tests.Data;
using AlexNetCompiler.Training;
using FashionMnist;
using FashionMnist.App;
using FashionMnist.Commands;

namespace AlexNetCompiler.Tests.App;

/// <summary>Run folders: a fresh run never overwrites an earlier one, one run per folder, best and last agree.</summary>
public sealed class RunFolderTests : IDisposable
{
    private readonly TempFolder _folder = new();
    private readonly CpuContext _cpu = new(2);

    public RunFolderTests() => TinyData.WriteFolder(TinyData.Slice(10, 5), DataFolder);

    public void Dispose()
    {
        _cpu.Dispose();
        _folder.Dispose();
    }

    private string DataFolder => _folder.Path;
    private string Output => _folder.File("run");
    private string BestPath => Path.Combine(Output, Trainer.BestCheckpointName);
    private string LastPath => Path.Combine(Output, Trainer.LastCheckpointName);

    /// <summary>One epoch unless <paramref name="extra"/> gives --epochs.</summary>
    private int Train(params string[] extra) =>
        Cli.Run(["train", "--data", DataFolder, "--batch-size", "25", .. extra.Contains("--epochs") ? Array.Empty<string>() : ["--epochs", "1"],
            "--test-views", "1", "--output", Output, "--device", "cpu", "--threads", "2", .. extra]);

    [Fact]
    public void DefaultFolderHoldingARun_GivesWayToTheNextFreeNumber()
    {
        string fashion = _folder.File("fashion");
        Assert.Equal(fashion, RunFolder.ForFreshRun(fashion, outputGiven: false, force: false, out string? notice));
        Assert.Null(notice);

        Directory.CreateDirectory(fashion);
        File.WriteAllText(Path.Combine(fashion, MetricsLog.CsvName), "epoch\n");
        Directory.CreateDirectory(fashion + "-2");
        File.WriteAllText(Path.Combine(fashion + "-2", Trainer.LastCheckpointName), "x");
        Directory.CreateDirectory(fashion + "-3"); // exists but holds no run: free
        File.WriteAllText(Path.Combine(fashion + "-3", "notes.txt"), "mine");

        Assert.Equal(fashion + "-3", RunFolder.ForFreshRun(fashion, outputGiven: false, force: false, out notice));
        Assert.Contains(fashion + "-3", notice);
    }

    [Fact]
    public void NamedFolderHoldingARun_IsRefused_UnlessResumedOrForced()
    {
        Assert.Equal(0, Train());
        string bestBefore = Checkpoint.FileSha256(BestPath);
        string lastBefore = Checkpoint.FileSha256(LastPath);

        var refusal = Assert.Throws<IOException>(() => RunFolder.ForFreshRun(Output, outputGiven: true, force: false, out _));
        Assert.Contains(Output, refusal.Message);
        Assert.Contains("--resume", refusal.Message);
        Assert.Contains("--force", refusal.Message);
        Assert.Equal(1, Train("--seed", "2"));
        Assert.Equal(bestBefore, Checkpoint.FileSha256(BestPath));
        Assert.Equal(lastBefore, Checkpoint.FileSha256(LastPath));

        // --force deletes only what a run writes, then trains afresh.
        string notes = Path.Combine(Output, "notes.txt"), stale = BestPath + RunFolder.StaleBestSuffix;
        File.WriteAllText(notes, "mine");
        File.WriteAllText(stale, "old");
        Assert.Equal(1, Train("--force", "--resume")); // contradictory
        Assert.Equal(0, Train("--force", "--seed", "2"));
        Assert.True(File.Exists(notes));
        Assert.False(File.Exists(stale));
        Assert.NotEqual(lastBefore, Checkpoint.FileSha256(LastPath));
        Assert.False(File.Exists(Path.Combine(Output, RunFolderLock.FileName))); // released and removed

        // --resume continues it as before.
        Assert.Equal(0, Train("--epochs", "2", "--seed", "2", "--resume"));
        Assert.Equal(3, File.ReadAllLines(Path.Combine(Output, MetricsLog.CsvName)).Length);
    }

    [Fact]
    public void FolderLockedByAnotherRun_IsRefusedAtOnce_AndNothingIsWritten()
    {
        Directory.CreateDirectory(Output);
        using (var held = new FileStream(Path.Combine(Output, RunFolderLock.FileName), FileMode.Create, FileAccess.ReadWrite, FileShare.None))
        {
            held.Write("4242"u8);
            held.Flush();
            var e = Assert.Throws<IOException>(() => RunFolderLock.Acquire(Output));
            Assert.Contains(Output, e.Message);
            Assert.Contains("4242", e.Message);

            Assert.Equal(1, Train());
            Assert.Equal(1, Train("--resume"));
            Assert.Equal(1, Train("--force"));
            Assert.Equal([Path.Combine(Output, RunFolderLock.FileName)], Directory.GetFiles(Output));
        }
        // Released by the other holder: a run takes it, and a second one is told this process's id.
        using (RunFolderLock acquired = RunFolderLock.Acquire(Output))
        {
            var e = Assert.Throws<IOException>(() => RunFolderLock.Acquire(Output));
            Assert.Contains($"process {Environment.ProcessId}", e.Message);
        }
        Assert.False(File.Exists(Path.Combine(Output, RunFolderLock.FileName)));
    }

    private Trainer NewTrainer(ulong seed = 11) => new(new FashionNet(16, _cpu), TinyData.Slice(10, 5), new TrainSettings
    {
        Epochs = 3, BatchSize = 16, LearningRate = 0.01f, Seed = seed, StepEpochs = 10, Augmentation = AugmentationOptions.None, OutputFolder = Output,
    });

    private IReadOnlyDictionary<string, string> LastMetadata() => Checkpoint.Load(LastPath, FashionNet.Model, new float[FashionNet.Model.ParameterCount]);

    [Fact]
    public void BestIsWrittenBeforeLast_AndLastRecordsItsChecksum_AResumeRewritesAMismatchingBestOfTheSameState()
    {
        using (Trainer first = NewTrainer())
        {
            first.Start();
            Assert.Equal(EpochStatus.Completed, first.TrainEpoch());
        }
        Assert.True(File.GetLastWriteTimeUtc(BestPath) <= File.GetLastWriteTimeUtc(LastPath));
        Assert.Equal(Checkpoint.FileSha256(BestPath), LastMetadata()["best_sha256"]);
        string recorded = LastMetadata()["best_sha256"];

        // A best of another state (as after a crash between the two writes): best epoch 1 = epochs completed 1.
        File.WriteAllText(BestPath, "not this run's best");
        using Trainer resumed = NewTrainer();
        resumed.Resume(LastPath);
        string notice = Assert.Single(resumed.ResumeNotices);
        Assert.Contains("rewrote", notice);
        Assert.Equal(recorded, Checkpoint.FileSha256(BestPath));
    }

    [Fact]
    public void AResumeKeepsAsideABestThatIsNotTheResumedState_AndWritesBestAgainOnlyWhenBeaten()
    {
        using (Trainer first = NewTrainer())
        {
            first.Start();
            Assert.Equal(EpochStatus.Completed, first.TrainEpoch());
            using var cancel = new CancellationTokenSource();
            EpochStatus status = first.TrainEpoch(p => { if (p.Batch == 1) cancel.Cancel(); }, cancel.Token);
            Assert.Equal(EpochStatus.Interrupted, status);
            first.SaveCheckpoint();
        }
        File.WriteAllText(BestPath, "replaced");

        using Trainer resumed = NewTrainer();
        resumed.Resume(LastPath);
        string notice = Assert.Single(resumed.ResumeNotices);
        Assert.Contains(".stale", notice);
        Assert.Contains("beats", notice);
        Assert.False(File.Exists(BestPath));
        Assert.Equal("replaced", File.ReadAllText(BestPath + RunFolder.StaleBestSuffix));

        double recordedBest = resumed.BestAccuracy;
        Assert.Equal(EpochStatus.Completed, resumed.TrainEpoch());
        Assert.Equal(resumed.History[^1].TestAccuracy > recordedBest, File.Exists(BestPath));
    }
}
