namespace AlexNetCompiler.Data;

/// <summary>One batch: NCHW images (normalised, augmented when training), labels and the dataset indices they came from.</summary>
public sealed class Batch
{
    internal Batch(int capacity, int sampleLength)
    {
        Images = new float[capacity * sampleLength];
        Labels = new int[capacity];
        Indices = new int[capacity];
        SampleLength = sampleLength;
    }

    /// <summary>Buffer of capacity * SampleLength floats; the first Count samples are valid.</summary>
    public float[] Images { get; }
    public int[] Labels { get; }
    public int[] Indices { get; }
    public int SampleLength { get; }
    public int Count { get; internal set; }
    /// <summary>Position of this batch in its epoch, from 0.</summary>
    public int Number { get; internal set; }
    /// <summary>Where these samples start in the whole batch: 0 unless the loader gives one shard of each batch.</summary>
    public int FirstSample { get; internal set; }
    /// <summary>Samples in the whole batch, of which this holds <see cref="Count"/> from <see cref="FirstSample"/> on.</summary>
    public int BatchCount { get; internal set; }

    public ReadOnlySpan<float> ImageSpan => Images.AsSpan(0, Count * SampleLength);
    public ReadOnlySpan<int> LabelSpan => Labels.AsSpan(0, Count);
}

/// <summary>
/// Feeds a dataset in batches, preparing the next batch on a background thread while the caller trains on
/// the current one (double buffering). Two batch buffers are allocated up front and reused: after the
/// first epoch starts nothing is allocated per batch. A yielded batch is valid until the next one is
/// requested.
///
/// Determinism: the epoch's order is a pure function of (seed, epoch) and each sample's augmentation a pure
/// function of (seed, epoch, dataset index), so a run resumed at epoch k sees exactly the batches an
/// uninterrupted run would. A sharded loader (one rank of a data-parallel job) prepares only its rank's samples of
/// each batch (<see cref="Distributed.DataParallelEngine.Shard"/>); they are prepared exactly as an unsharded loader
/// prepares them, since the augmentation depends on the dataset index, not on the position in the batch.
/// </summary>
public sealed class BatchLoader : IBatchSource, IDisposable
{
    private const long ShuffleStream = -1;

    private readonly Dataset _data;
    private readonly Normalization _normalization;
    private readonly Augmenter? _augmenter;
    private readonly Batch[] _buffers;
    private readonly float[] _scratch;
    private readonly int[] _order;
    private readonly Thread _worker;
    private readonly SemaphoreSlim _requested = new(0, 1);
    private readonly SemaphoreSlim _completed = new(0, 1);
    private volatile bool _stopping;
    private Batch? _target;
    private int _targetEpoch, _targetNumber;
    private Exception? _workerError;
    private int _outstanding;
    private bool _inEpoch, _disposed;

    /// <param name="shardRank">This rank, 0 to <paramref name="shardCount"/> - 1, when each batch is split over ranks.</param>
    /// <param name="shardCount">Ranks sharing each batch; 1 (the default) prepares whole batches.</param>
    public BatchLoader(Dataset data, int batchSize, Normalization normalization, Augmenter? augmenter = null, bool shuffle = false, ulong seed = 0,
        int shardRank = 0, int shardCount = 1)
    {
        CheckShardAndBatchSize(shardRank, shardCount, batchSize);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(normalization);
        if (normalization.Channels != data.Channels)
            throw new ArgumentException($"Normalisation has {normalization.Channels} channels, dataset '{data.Name}' has {data.Channels}.");
        if (augmenter is not null && augmenter.SampleLength != data.SampleLength)
            throw new ArgumentException($"Augmenter is for [{augmenter.Channels}, {augmenter.Height}, {augmenter.Width}], dataset '{data.Name}' is [{data.Channels}, {data.Height}, {data.Width}].");
        _data = data;
        _normalization = normalization;
        _augmenter = augmenter;
        BatchSize = batchSize;
        Shuffle = shuffle;
        Seed = seed;
        ShardRank = shardRank;
        ShardCount = shardCount;
        int capacity = (batchSize + shardCount - 1) / shardCount; // the largest shard
        _buffers = [new Batch(capacity, data.SampleLength), new Batch(capacity, data.SampleLength)];
        _scratch = new float[data.SampleLength];
        _order = new int[data.Count];
        _worker = new Thread(WorkerLoop) { IsBackground = true, Name = "BatchLoader" };
        _worker.Start();
    }

    /// <summary>The shard and batch-size arguments' checks, shared with <see cref="ImageBatchLoader"/>.</summary>
    internal static void CheckShardAndBatchSize(int shardRank, int shardCount, int batchSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(shardCount, 1);
        if (shardRank < 0 || shardRank >= shardCount)
            throw new ArgumentOutOfRangeException(nameof(shardRank), shardRank, $"The shard rank must be in [0, {shardCount}).");
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), $"Batch size {batchSize} must be positive.");
    }

    public Dataset Data => _data;
    public int BatchSize { get; }
    public bool Shuffle { get; }
    public ulong Seed { get; }
    public int ShardRank { get; }
    public int ShardCount { get; }

    /// <summary>Batches per epoch; the last one holds the remainder and may be smaller.</summary>
    public int BatchesPerEpoch => (_data.Count + BatchSize - 1) / BatchSize;

    /// <summary>
    /// The batches of one epoch, from batch <paramref name="firstBatch"/> on (a run resumed mid-epoch skips
    /// the batches it has already trained on). From batch 0, every sample appears exactly once. Leaving the
    /// loop early is fine: the batch being prepared is finished and discarded.
    /// </summary>
    public IEnumerable<Batch> Epoch(int epoch, int firstBatch = 0)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_inEpoch) throw new InvalidOperationException("BatchLoader: finish (or leave) the previous epoch's loop before starting another.");
        if (firstBatch < 0 || firstBatch > BatchesPerEpoch)
            throw new ArgumentOutOfRangeException(nameof(firstBatch), $"First batch {firstBatch} is outside [0, {BatchesPerEpoch}].");
        return EpochIterator(epoch, firstBatch);
    }

    private IEnumerable<Batch> EpochIterator(int epoch, int firstBatch)
    {
        _inEpoch = true;
        try
        {
            FillOrder(epoch);
            int batches = BatchesPerEpoch;
            if (firstBatch >= batches) yield break;
            Request(_buffers[firstBatch & 1], epoch, firstBatch);
            for (int b = firstBatch; b < batches; b++)
            {
                WaitForWorker();
                Batch current = _buffers[b & 1];
                if (b + 1 < batches) Request(_buffers[(b + 1) & 1], epoch, b + 1);
                yield return current;
            }
        }
        finally
        {
            while (_outstanding > 0) WaitForWorker(rethrow: false);
            _inEpoch = false;
        }
    }

    /// <summary>Prepares batch <paramref name="number"/> of <paramref name="epoch"/> on the calling thread (for evaluation and tests).</summary>
    public void PrepareBatch(int epoch, int number, Batch destination)
    {
        if (_inEpoch) throw new InvalidOperationException("BatchLoader: PrepareBatch cannot run during an epoch loop.");
        FillOrder(epoch);
        Fill(destination, epoch, number, _scratch);
    }

    /// <summary>A batch buffer of this loader's capacity (for PrepareBatch).</summary>
    public Batch CreateBatch() => new((BatchSize + ShardCount - 1) / ShardCount, _data.SampleLength);

    private void FillOrder(int epoch)
    {
        for (int i = 0; i < _order.Length; i++) _order[i] = i;
        if (Shuffle)
        {
            SplitMixRandom random = SplitMixRandom.For(Seed, ShuffleStream, epoch);
            random.Shuffle(_order);
        }
    }

    private void Fill(Batch batch, int epoch, int number, float[] scratch)
    {
        int batchStart = number * BatchSize;
        int batchCount = Math.Min(BatchSize, _data.Count - batchStart);
        (int first, int count) = Distributed.DataParallelEngine.Shard(batchCount, ShardRank, ShardCount);
        int length = _data.SampleLength;
        for (int i = 0; i < count; i++)
        {
            int index = _order[batchStart + first + i];
            Span<float> sample = batch.Images.AsSpan(i * length, length);
            _data.Image(index).CopyTo(sample);
            if (_augmenter is not null)
            {
                SplitMixRandom random = SplitMixRandom.For(Seed, epoch, index);
                _augmenter.Apply(sample, scratch, ref random);
            }
            _normalization.Apply(sample, _data.Height, _data.Width);
            batch.Labels[i] = _data.Labels[index];
            batch.Indices[i] = index;
        }
        batch.Count = count;
        batch.Number = number;
        batch.FirstSample = first;
        batch.BatchCount = batchCount;
    }

    private void Request(Batch target, int epoch, int number)
    {
        _target = target;
        _targetEpoch = epoch;
        _targetNumber = number;
        _outstanding++;
        _requested.Release();
    }

    private void WaitForWorker(bool rethrow = true)
    {
        _completed.Wait();
        _outstanding--;
        Exception? error = _workerError;
        _workerError = null;
        if (error is not null && rethrow)
            throw new InvalidOperationException($"Preparing a batch of '{_data.Name}' failed: {error.Message}", error);
    }

    private void WorkerLoop()
    {
        var scratch = new float[_data.SampleLength];
        while (true)
        {
            _requested.Wait();
            if (_stopping) return;
            try
            {
                Fill(_target!, _targetEpoch, _targetNumber, scratch);
            }
            catch (Exception e)
            {
                _workerError = e;
            }
            _completed.Release();
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _stopping = true;
        _requested.Release();
        _worker.Join();
        _requested.Dispose();
        _completed.Dispose();
    }
}
