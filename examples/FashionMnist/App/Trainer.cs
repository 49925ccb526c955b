using System.Diagnostics;
using System.Globalization;
using AlexNetCompiler;
using AlexNetCompiler.Checkpoints;
using AlexNetCompiler.Data;
using AlexNetCompiler.Distributed;
using AlexNetCompiler.Training;

namespace FashionMnist.App;

/// <summary>One finished epoch, as written to metrics.csv.</summary>
public sealed record EpochRecord(
    int Epoch, float LearningRate, double TrainLoss, double TrainAccuracy, double TestLoss, double TestAccuracy,
    double Seconds, double ImagesPerSecond);

/// <summary>Progress inside an epoch, reported after every batch.</summary>
public readonly record struct BatchProgress(int Epoch, int Batch, int Batches, double MeanLoss, double Accuracy, double ImagesPerSecond);

public enum EpochStatus { Completed, Interrupted, Diverged }

/// <summary>
/// Trains any <see cref="INetwork"/> with SGD: per-epoch training with a double-buffered loader, evaluation,
/// learning-rate schedule, checkpoints (last every epoch, best by test accuracy), metrics. The whole state that
/// decides the next step (parameters, momentum, step count, epoch and batch position, schedule, running sums)
/// is in the checkpoint, so a resumed run continues exactly where the saved one stopped.
/// </summary>
public sealed class Trainer : IDisposable
{
    public const string LastCheckpointName = "last.safetensors";
    public const string BestCheckpointName = "best.safetensors";

    private readonly INetwork _network;
    private readonly ITrainingEngine _engine;
    // Set for data-parallel training: this rank's engine, which trains its shard of every batch.
    private readonly IDataParallelEngine? _parallel;
    private readonly IBatchSource _trainLoader;
    private readonly IDisposable? _ownedLoader;
    private readonly List<EpochRecord> _history = [];

    // Position and running sums of a partly trained epoch (non-zero only after an interruption).
    private int _batchInEpoch;
    private double _partialLossSum;
    private long _partialCorrect, _partialSeen;
    private double _partialSeconds;

    private int _plateauBadEpochs;

    // SHA-256 of best.safetensors as this run wrote it, recorded in last's metadata so that a resume can tell a
    // best file that does not belong to last (a crash between the two writes, or a replaced file). Empty when none.
    private string _bestSha256 = "";
    private readonly List<string> _resumeNotices = [];

    /// <param name="engine">
    /// Creates the engine that runs the steps from the host network and optimizer (which stay the checkpointed
    /// state); null trains with the network's own CPU code. The trainer owns and disposes the engine. With a
    /// communicator it must create an <see cref="IDataParallelEngine"/> over that communicator (GPUs over NCCL).
    /// </param>
    /// <param name="communicator">
    /// Data-parallel training over these ranks (with the network's CPU code unless <paramref name="engine"/> is given):
    /// each rank trains its shard of every batch, and the ranks apply the same summed update. Only rank 0 evaluates and
    /// writes; give the other ranks an empty <see cref="TrainSettings.OutputFolder"/>. Null: one process.
    /// </param>
    public Trainer(INetwork network, ITrainingData data, TrainSettings settings, Normalization? normalization = null,
        Func<INetwork, Sgd, ITrainingEngine>? engine = null, ICommunicator? communicator = null)
    {
        if (communicator is not null && communicator.Rank != 0 && !string.IsNullOrEmpty(settings.OutputFolder))
            throw new ArgumentException($"Rank {communicator.Rank} must not write: only rank 0 has an output folder.");
        settings.Validate();
        if (settings.BatchSize > network.MaxBatch)
            throw new ArgumentException($"Batch size {settings.BatchSize} exceeds the network's MaxBatch {network.MaxBatch}.");
        NetworkDescriptor d = network.Descriptor;
        if (data.Channels != d.InputChannels || data.Height != d.InputHeight || data.Width != d.InputWidth)
            throw new ArgumentException($"{data.Description}: images are [{data.Channels}, {data.Height}, {data.Width}], {d.Name} takes [{d.InputChannels}, {d.InputHeight}, {d.InputWidth}].");
        // Fewer classes than outputs is allowed: class k trains output k (an image folder of K classes on AlexNet's 1000).
        if (data.ClassNames.Count > d.ClassCount)
            throw new ArgumentException($"{data.Description}: {data.ClassNames.Count} classes, {d.Name} has {d.ClassCount} outputs.");
        _network = network;
        // In-memory images' test views crop as training did.
        Data = data is LoadedData inMemory ? inMemory with { CropPadding = settings.Augmentation.CropPadding } : data;
        Settings = settings;
        Normalization = normalization ?? data.ComputeNormalization();
        Optimizer = new Sgd(network.Parameters.Length, new SgdOptions(settings.LearningRate, settings.Momentum, settings.WeightDecay, settings.Optimizer));
        _trainLoader = data.CreateTrainLoader(settings, Normalization, communicator?.Rank ?? 0, communicator?.Size ?? 1, out _ownedLoader);
        Initializer.Initialize(d, network.Parameters, settings.Init, settings.Seed);
        try
        {
            if (communicator is not null)
            {
                _engine = engine is null ? new DataParallelEngine(network, Optimizer, communicator) : engine(network, Optimizer);
                _parallel = _engine as IDataParallelEngine;
                if (_parallel is null || !ReferenceEquals(_parallel.Communicator, communicator))
                {
                    _engine.Dispose();
                    throw new ArgumentException("With a communicator, the engine factory must create a data-parallel engine over that communicator.", nameof(engine));
                }
            }
            else
            {
                _engine = engine is null ? new CpuTrainingEngine(network, Optimizer) : engine(network, Optimizer);
            }
            _engine.CopyStateFromHost();
        }
        catch
        {
            _ownedLoader?.Dispose();
            throw;
        }
    }

    public TrainSettings Settings { get; }
    public ITrainingData Data { get; }
    public Normalization Normalization { get; }
    public Sgd Optimizer { get; }
    public INetwork Network => _network;
    /// <summary>Where the steps run (<see cref="ITrainingEngine.Description"/> says which device).</summary>
    public ITrainingEngine Engine => _engine;
    public IReadOnlyList<EpochRecord> History => _history;
    /// <summary>Epochs fully trained and evaluated so far.</summary>
    public int CompletedEpochs => _history.Count;
    /// <summary>Optimizer steps so far; decides each step's dropout mask.</summary>
    public long Step { get; private set; }
    public double BestAccuracy { get; private set; } = double.NaN;
    public int BestEpoch { get; private set; }
    public EvaluationResult? LastEvaluation { get; private set; }
    public int BatchesPerEpoch => _trainLoader.BatchesPerEpoch;
    public string OutputFolder => Settings.OutputFolder;
    public string LastCheckpointPath => Path.Combine(OutputFolder, LastCheckpointName);
    public string BestCheckpointPath => Path.Combine(OutputFolder, BestCheckpointName);
    /// <summary>The last <see cref="EvaluateViews"/> result (null before one) and its number of views.</summary>
    public EvaluationResult? FinalViewsEvaluation { get; private set; }
    public int FinalViews { get; private set; }
    /// <summary>Whether this process evaluates and writes: always in one process, rank 0 of a data-parallel job.</summary>
    public bool IsRoot => _parallel is null || _parallel.Communicator.Rank == 0;
    /// <summary>Set when a data-parallel job agreed to stop (some rank got Ctrl+C or SIGTERM); every rank then stops.</summary>
    public bool StopAgreed { get; private set; }

    /// <summary>
    /// Test accuracy of the current parameters with test-time averaging over <paramref name="views"/> views
    /// (<see cref="Evaluator.Evaluate"/>; crops use the training crop padding). Kept for the JSON log.
    /// </summary>
    public EvaluationResult EvaluateViews(int views, CancellationToken cancel = default)
    {
        EvaluationResult result = Data.Evaluate(_engine.Forward, _network.Descriptor.ClassCount, _network.MaxBatch, Normalization, views, cancel);
        FinalViewsEvaluation = result;
        FinalViews = views;
        return result;
    }

    /// <summary>Set when an epoch diverged: what went wrong, for the user.</summary>
    public string? DivergenceMessage { get; private set; }

    /// <summary>
    /// Trains epoch <see cref="CompletedEpochs"/> (from the saved batch position when resumed). Stops between
    /// batches when <paramref name="cancel"/> fires (then the position is kept for <see cref="SaveCheckpoint"/>),
    /// and at the first non-finite loss (parameters are then unusable: nothing is saved).
    /// </summary>
    public EpochStatus TrainEpoch(Action<BatchProgress>? progress = null, CancellationToken cancel = default)
    {
        int epoch = CompletedEpochs;
        int classes = _network.Descriptor.ClassCount;
        var stopwatch = Stopwatch.StartNew();
        int batches = _trainLoader.BatchesPerEpoch;
        long seenThisSession = 0;
        foreach (Batch batch in _trainLoader.Epoch(epoch, _batchInEpoch))
        {
            // One process stops before the next step; data-parallel ranks agree within a step and stop after it (below).
            if (cancel.IsCancellationRequested && _parallel is null)
            {
                _partialSeconds += stopwatch.Elapsed.TotalSeconds;
                _engine.CopyStateToHost();
                return EpochStatus.Interrupted;
            }
            // Dropout masks are a pure function of (seed, step): a resumed run draws the same ones.
            ulong dropoutSeed = SplitMixRandom.Mix(Settings.Seed * 0x9E3779B97F4A7C15UL + (ulong)Step);
            float loss;
            long correct = 0;
            if (_parallel is not null)
            {
                DataParallelStep step = _parallel.TrainShard(batch.ImageSpan, batch.LabelSpan, batch.Count, batch.FirstSample, batch.BatchCount,
                    dropoutSeed, cancel.IsCancellationRequested, scoredClasses: Data.ClassNames.Count);
                (loss, correct, StopAgreed) = (step.MeanLoss, step.Correct, step.StopRequested);
            }
            else
            {
                loss = _engine.TrainStep(batch.ImageSpan, batch.LabelSpan, batch.Count, dropoutSeed);
                // Judged on the data's classes, as the test set is (outputs beyond them belong to none).
                ReadOnlySpan<float> logits = _engine.Logits;
                int dataClasses = Data.ClassNames.Count;
                for (int n = 0; n < batch.Count; n++)
                    if (Evaluator.ArgMax(logits.Slice(n * classes, dataClasses)) == batch.Labels[n]) correct++;
            }
            if (!float.IsFinite(loss))
            {
                DivergenceMessage = $"The loss became {loss} at epoch {epoch + 1}, batch {batch.Number + 1} (step {Step}, learning rate {Optimizer.LearningRate:G3}). " +
                    "Training stopped; the parameters were not saved. Try a lower --lr.";
                return EpochStatus.Diverged;
            }
            Step++;

            _partialCorrect += correct;
            _partialLossSum += (double)loss * batch.BatchCount;
            _partialSeen += batch.BatchCount;
            seenThisSession += batch.BatchCount;
            _batchInEpoch = batch.Number + 1;
            double seconds = stopwatch.Elapsed.TotalSeconds;
            progress?.Invoke(new BatchProgress(epoch, batch.Number + 1, batches, _partialLossSum / _partialSeen,
                (double)_partialCorrect / _partialSeen, seconds > 0 ? seenThisSession / seconds : 0));
            if (StopAgreed && _batchInEpoch < batches)
            {
                _partialSeconds += stopwatch.Elapsed.TotalSeconds;
                return EpochStatus.Interrupted;
            }
        }
        double trainSeconds = _partialSeconds + stopwatch.Elapsed.TotalSeconds;
        double imagesPerSecond = _partialSeen / Math.Max(trainSeconds, 1e-9);

        _engine.CopyStateToHost();
        // Data-parallel: rank 0 evaluates; the others take its parameters (equal in principle, now certainly) and,
        // after the schedule has run on rank 0, its learning rate.
        _parallel?.BroadcastState();
        EvaluationResult? test = IsRoot
            ? Data.Evaluate(_engine.Forward, _network.Descriptor.ClassCount, _network.MaxBatch, Normalization, views: 1)
            : null;
        LastEvaluation = test;
        var record = new EpochRecord(epoch + 1, Optimizer.LearningRate, _partialLossSum / Math.Max(_partialSeen, 1), (double)_partialCorrect / Math.Max(_partialSeen, 1),
            test?.Loss ?? double.NaN, test?.Accuracy ?? double.NaN, trainSeconds, imagesPerSecond);
        _history.Add(record);
        _batchInEpoch = 0;
        _partialLossSum = 0;
        _partialCorrect = _partialSeen = 0;
        _partialSeconds = 0;

        bool improved = test is not null && (double.IsNaN(BestAccuracy) || test.Accuracy > BestAccuracy);
        if (improved)
        {
            BestAccuracy = test!.Accuracy;
            BestEpoch = epoch + 1;
            _plateauBadEpochs = 0;
        }
        else
        {
            _plateauBadEpochs++;
        }
        UpdateSchedule();
        if (_parallel is not null)
        {
            float[] rate = [CurrentLearningRate];
            _parallel.Communicator.Broadcast(rate, root: 0);
            CurrentLearningRate = rate[0];
        }
        if (!string.IsNullOrEmpty(OutputFolder))
        {
            // Best before last: a crash between the two leaves a last that still names the previous best's
            // checksum, which Resume detects; the other order could leave a last whose best was never written.
            if (improved) SaveBestCheckpoint();
            SaveCheckpoint();
        }
        return EpochStatus.Completed;
    }

    /// <summary>The learning rate for the next step: the optimizer's, the one copy the schedule sets and every engine reads.</summary>
    public float CurrentLearningRate
    {
        get => Optimizer.LearningRate;
        private set => Optimizer.LearningRate = value;
    }

    private void UpdateSchedule()
    {
        switch (Settings.Schedule)
        {
            case LearningRateSchedule.Step:
                CurrentLearningRate = Settings.LearningRate * MathF.Pow(0.1f, CompletedEpochs / Settings.EffectiveStepEpochs);
                break;
            case LearningRateSchedule.Plateau:
                if (_plateauBadEpochs >= Settings.Patience)
                {
                    CurrentLearningRate *= 0.1f;
                    _plateauBadEpochs = 0;
                }
                break;
        }
    }

    /// <summary>Starts a fresh run (parameters were initialised by the constructor).</summary>
    public void Start()
    {
        CurrentLearningRate = Settings.LearningRate;
        if (!string.IsNullOrEmpty(OutputFolder)) Directory.CreateDirectory(OutputFolder);
    }

    // ---- checkpoints -------------------------------------------------------------------------------

    /// <summary>Saves everything needed to continue (atomically, via Checkpoint.Save).</summary>
    public void SaveCheckpoint(string? path = null)
    {
        path ??= LastCheckpointPath;
        _engine.CopyStateToHost();
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        // best's own metadata would only name an older best: the checksum belongs in last.
        bool isBest = Path.GetFullPath(path) == Path.GetFullPath(BestCheckpointPath);
        Checkpoint.Save(path, _network.Descriptor, _network.Parameters, Optimizer, Metadata(withBestChecksum: !isBest));
    }

    private void SaveBestCheckpoint()
    {
        SaveCheckpoint(BestCheckpointPath);
        _bestSha256 = Checkpoint.FileSha256(BestCheckpointPath);
    }

    /// <summary>What <see cref="Resume"/> found wrong with the run folder and did about it, one line each.</summary>
    public IReadOnlyList<string> ResumeNotices => _resumeNotices;

    private Dictionary<string, string> Metadata(bool withBestChecksum = true)
    {
        var ci = CultureInfo.InvariantCulture;
        var metadata = new Dictionary<string, string>
        {
            ["network"] = _network.Descriptor.Name,
            ["data"] = Data.Description,
            ["class_names"] = string.Join("|", Data.ClassNames),
            ["normalization_mean"] = Normalization.MeanText,
            ["normalization_std"] = Normalization.StdText,
            ["epochs_completed"] = CompletedEpochs.ToString(ci),
            ["batch_in_epoch"] = _batchInEpoch.ToString(ci),
            ["batch_size"] = Settings.BatchSize.ToString(ci),
            ["step"] = Step.ToString(ci),
            ["seed"] = Settings.Seed.ToString(ci),
            ["learning_rate"] = CurrentLearningRate.ToString("R", ci),
            ["best_accuracy"] = BestAccuracy.ToString("R", ci),
            ["best_epoch"] = BestEpoch.ToString(ci),
            ["plateau_bad_epochs"] = _plateauBadEpochs.ToString(ci),
            ["partial_loss_sum"] = _partialLossSum.ToString("R", ci),
            ["partial_correct"] = _partialCorrect.ToString(ci),
            ["partial_seen"] = _partialSeen.ToString(ci),
            ["partial_seconds"] = _partialSeconds.ToString("R", ci),
            ["history"] = string.Join(";", _history.Select(FormatRecord)),
        };
        foreach ((string key, string value) in Data.CheckpointMetadata) metadata[key] = value;
        if (withBestChecksum) metadata["best_sha256"] = _bestSha256;
        return metadata;
    }

    /// <summary>
    /// Continues from a checkpoint saved by <see cref="SaveCheckpoint"/>: parameters, momentum, step, position,
    /// schedule, best accuracy and history. The settings given now must use the same batch size and seed when
    /// the checkpoint stopped mid-epoch (the batch order depends on them).
    /// </summary>
    public void Resume(string path)
    {
        // A checkpoint of another network would fail on its first tensor; say which network it holds instead.
        if (File.Exists(path)) NetworkChoice.EnsureCheckpointHolds(path, _network.Descriptor);
        IReadOnlyDictionary<string, string> m = Checkpoint.Load(path, _network.Descriptor, _network.Parameters, Optimizer);
        var metadata = new ResumeMetadata(path, m);
        // The data's own settings (an image folder's side, split, lighting and held-out images) must be the run's.
        foreach ((string key, string value) in Data.CheckpointMetadata)
        {
            if (!m.TryGetValue(key, out string? savedValue))
                throw new InvalidDataException($"{path}: not trained on this kind of data (its metadata has no '{key}'). Resume with the same --data.");
            if (savedValue != value)
                throw new InvalidDataException(key == ImageFolderData.TestSetKey
                    ? $"{path}: the run was tested on other held-out images than this folder gives now (images added, removed or changed, or another split). Resume with the same folder and options."
                    : $"{path}: trained with {ImageFolderData.OptionFor(key)} = {savedValue}; this run has {value}. Resume with the same value.");
        }
        Normalization saved = Normalization.Parse(metadata.Text("normalization_mean"), metadata.Text("normalization_std"));
        if (!saved.Mean.SequenceEqual(Normalization.Mean) || !saved.Std.SequenceEqual(Normalization.Std))
            throw new InvalidDataException($"{path}: trained with normalisation mean {saved.MeanText}, std {saved.StdText}; this data gives {Normalization.MeanText}, {Normalization.StdText}. Resume with the same --data.");
        int savedBatchSize = metadata.Int("batch_size", 1);
        ulong savedSeed = metadata.ULong("seed");
        int batchInEpoch = metadata.Int("batch_in_epoch", 0);
        if (batchInEpoch > 0 && (savedBatchSize != Settings.BatchSize || savedSeed != Settings.Seed))
            throw new InvalidDataException($"{path}: stopped inside an epoch with --batch-size {savedBatchSize} --seed {savedSeed}; resume with the same values.");
        if (batchInEpoch >= BatchesPerEpoch)
            throw new InvalidDataException($"{path}: metadata 'batch_in_epoch' is {batchInEpoch}, but an epoch of this data has {BatchesPerEpoch} batches. Resume with the same --data.");
        string history = metadata.Text("history");
        EpochRecord[] rows = history.Length == 0 ? [] : history.Split(';').Select(metadata.HistoryRow).ToArray();
        int completed = metadata.Int("epochs_completed", 0);
        if (completed != rows.Length)
            throw new InvalidDataException($"{path}: metadata says {completed} epochs completed but holds {rows.Length} history rows.");

        long step = metadata.Long("step", 0);
        float learningRate = metadata.PositiveFloat("learning_rate");
        double bestAccuracy = metadata.Double("best_accuracy", 0, 1, nanAllowed: true);
        int bestEpoch = metadata.Int("best_epoch", 0, completed);
        int plateauBadEpochs = metadata.Int("plateau_bad_epochs", 0);
        double partialLossSum = metadata.Double("partial_loss_sum", 0);
        long partialCorrect = metadata.Long("partial_correct", 0), partialSeen = metadata.Long("partial_seen", 0);
        double partialSeconds = metadata.Double("partial_seconds", 0);

        // Everything read and checked; only now does the trainer's state change.
        (_batchInEpoch, Step, CurrentLearningRate, BestAccuracy, BestEpoch) = (batchInEpoch, step, learningRate, bestAccuracy, bestEpoch);
        (_plateauBadEpochs, _partialLossSum, _partialCorrect, _partialSeen, _partialSeconds) = (plateauBadEpochs, partialLossSum, partialCorrect, partialSeen, partialSeconds);
        _engine.CopyStateFromHost();
        _history.Clear();
        _history.AddRange(rows);
        _bestSha256 = m.TryGetValue("best_sha256", out string? recorded) ? recorded : "";
        _resumeNotices.Clear();
        if (!string.IsNullOrEmpty(OutputFolder))
        {
            Directory.CreateDirectory(OutputFolder);
            // Temporaries of a writer killed mid-save; the checkpoints themselves were never touched by it.
            SafeTensors.DeleteStaleTemporaryFiles(LastCheckpointPath);
            SafeTensors.DeleteStaleTemporaryFiles(BestCheckpointPath);
            // Checkpoints of older versions record no checksum: nothing to check against.
            if (_bestSha256.Length > 0) CheckBestCheckpoint();
        }
    }

    /// <summary>
    /// Makes best.safetensors agree with the resumed state's record of it. When best is the resumed state itself
    /// (best epoch = epochs completed, at an epoch boundary) it is rewritten; otherwise the file that does not
    /// match is kept aside and best is written again once the run beats the recorded best accuracy.
    /// </summary>
    private void CheckBestCheckpoint()
    {
        string best = BestCheckpointPath;
        bool exists = File.Exists(best);
        if (exists && Checkpoint.FileSha256(best) == _bestSha256) return;
        string problem = exists ? $"{best} does not match the checksum recorded in {LastCheckpointName}" : $"{best} is missing";
        if (BestEpoch == CompletedEpochs && _batchInEpoch == 0)
        {
            SaveBestCheckpoint();
            _resumeNotices.Add($"{problem}; rewrote it from the resumed state (epoch {BestEpoch}, the best so far).");
            return;
        }
        string kept = "";
        if (exists)
        {
            File.Move(best, best + RunFolder.StaleBestSuffix, overwrite: true);
            kept = $" (kept aside as {BestCheckpointName + RunFolder.StaleBestSuffix})";
        }
        _bestSha256 = "";
        _resumeNotices.Add(string.Create(CultureInfo.InvariantCulture,
            $"{problem}{kept}; the best checkpoint will be written again when the run beats the recorded best test accuracy {100 * BestAccuracy:F2}% (epoch {BestEpoch})."));
    }

    private static string FormatRecord(EpochRecord r)
    {
        var ci = CultureInfo.InvariantCulture;
        return string.Join(",", r.Epoch.ToString(ci), r.LearningRate.ToString("R", ci), r.TrainLoss.ToString("R", ci), r.TrainAccuracy.ToString("R", ci),
            r.TestLoss.ToString("R", ci), r.TestAccuracy.ToString("R", ci), r.Seconds.ToString("R", ci), r.ImagesPerSecond.ToString("R", ci));
    }

    public void Dispose()
    {
        _engine.Dispose();
        _ownedLoader?.Dispose();
    }
}
