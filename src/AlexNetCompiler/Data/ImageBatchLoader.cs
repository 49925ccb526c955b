namespace AlexNetCompiler.Data;

/// <summary>
/// Feeds an <see cref="ImageSet"/> through an <see cref="ImagePipeline"/> in batches, preparing the next batch on the
/// thread pool (its samples in parallel, at most <c>threads</c> at a time) while the caller trains on the current one.
/// An epoch holds two batch buffers, so memory stays at two batches whatever the set's size; the pixels come from
/// the memory-mapped cache. A loop left early waits for the batch in preparation and discards it.
///
/// Determinism: the epoch's order is a pure function of (seed, epoch) and each training sample's crop, flip and
/// lighting a pure function of (seed, epoch, index in the set), whichever thread prepares it. A sharded loader (one
/// rank of a data-parallel job) prepares only its rank's samples of each batch
/// (<see cref="Distributed.DataParallelEngine.Shard"/>), exactly as an unsharded loader prepares them.
/// </summary>
public sealed class ImageBatchLoader : IBatchSource
{
    private const long ShuffleStream = -1;

    private readonly ImageSet _set;
    private readonly ImagePipeline _pipeline;
    private readonly ParallelOptions _parallel;
    private bool _inEpoch;

    /// <param name="shardRank">This rank, 0 to <paramref name="shardCount"/> - 1, when each batch is split over ranks.</param>
    /// <param name="shardCount">Ranks sharing each batch; 1 (the default) prepares whole batches.</param>
    public ImageBatchLoader(ImageSet set, ImagePipeline pipeline, int batchSize, bool training, ulong seed = 0, int threads = 0,
        int shardRank = 0, int shardCount = 1)
    {
        BatchLoader.CheckShardAndBatchSize(shardRank, shardCount, batchSize);
        ArgumentNullException.ThrowIfNull(set);
        ArgumentNullException.ThrowIfNull(pipeline);
        if (set.Side != pipeline.Options.Side)
            throw new ArgumentException($"{set.Name}: images of {set.Side}x{set.Side}, the pipeline expects {pipeline.Options.Side}x{pipeline.Options.Side}.");
        _set = set;
        _pipeline = pipeline;
        BatchSize = batchSize;
        Training = training;
        Seed = seed;
        ShardRank = shardRank;
        ShardCount = shardCount;
        _parallel = new ParallelOptions { MaxDegreeOfParallelism = threads == 0 ? Environment.ProcessorCount : threads };
    }

    public ImageSet Set => _set;
    public int BatchSize { get; }
    /// <summary>Training: shuffled, with the pipeline's random crops, flips and lighting; otherwise in order, centre crops.</summary>
    public bool Training { get; }
    public ulong Seed { get; }
    public int ShardRank { get; }
    public int ShardCount { get; }
    public int BatchesPerEpoch => (_set.Count + BatchSize - 1) / BatchSize;

    /// <summary>
    /// The batches of one epoch from batch <paramref name="firstBatch"/> on; each is valid until the next is requested.
    /// From batch 0, every image appears once. One epoch at a time: leaving the loop early (break, exception, First())
    /// waits for the batch in preparation, so that the cache can be disposed once the loop is left.
    /// </summary>
    public IEnumerable<Batch> Epoch(int epoch, int firstBatch = 0)
    {
        if (_inEpoch) throw new InvalidOperationException($"{_set.Name}: finish (or leave) the previous epoch's loop before starting another.");
        if (firstBatch < 0 || firstBatch > BatchesPerEpoch)
            throw new ArgumentOutOfRangeException(nameof(firstBatch), $"First batch {firstBatch} is outside [0, {BatchesPerEpoch}].");
        return EpochIterator(epoch, firstBatch);
    }

    private IEnumerable<Batch> EpochIterator(int epoch, int firstBatch)
    {
        _inEpoch = true;
        Task next = Task.CompletedTask;
        try
        {
            int[] order = Order(epoch);
            Batch[] buffers = [CreateBatch(), CreateBatch()];
            int batches = BatchesPerEpoch;
            if (firstBatch >= batches) yield break;
            next = Task.Run(() => Fill(buffers[firstBatch & 1], order, epoch, firstBatch));
            for (int b = firstBatch; b < batches; b++)
            {
                next.GetAwaiter().GetResult();
                Batch current = buffers[b & 1];
                int following = b + 1; // the lambda must not see the loop variable move on
                next = following < batches ? Task.Run(() => Fill(buffers[following & 1], order, epoch, following)) : Task.CompletedTask;
                yield return current;
            }
        }
        finally
        {
            // A loop left early must not return while a worker still reads the mapped pixels; its failure is of no
            // interest here (the loop is already ending, maybe with an exception of its own).
            try { next.Wait(); } catch (AggregateException) { }
            _inEpoch = false;
        }
    }

    /// <summary>A batch buffer of this loader's capacity: the largest shard of a batch.</summary>
    public Batch CreateBatch() => new((BatchSize + ShardCount - 1) / ShardCount, _pipeline.SampleLength);

    /// <summary>Prepares batch <paramref name="number"/> of <paramref name="epoch"/> on the calling thread (for tests and evaluation).</summary>
    public void PrepareBatch(int epoch, int number, Batch destination) => Fill(destination, Order(epoch), epoch, number);

    /// <summary>The epoch's order of set indices; a fresh array per epoch, so that no two loops share one.</summary>
    private int[] Order(int epoch)
    {
        var order = new int[_set.Count];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        if (Training)
        {
            SplitMixRandom random = SplitMixRandom.For(Seed, ShuffleStream, epoch);
            random.Shuffle(order);
        }
        return order;
    }

    private void Fill(Batch batch, int[] order, int epoch, int number)
    {
        int batchStart = number * BatchSize;
        int batchCount = Math.Min(BatchSize, _set.Count - batchStart);
        (int first, int count) = Distributed.DataParallelEngine.Shard(batchCount, ShardRank, ShardCount);
        int start = batchStart + first;
        int length = _pipeline.SampleLength;
        Parallel.For(0, count, _parallel, i =>
        {
            int index = order[start + i];
            Span<float> sample = batch.Images.AsSpan(i * length, length);
            if (Training)
            {
                SplitMixRandom random = SplitMixRandom.For(Seed, epoch, index);
                _pipeline.Training(_set.Pixels(index), sample, ref random);
            }
            else
            {
                _pipeline.Centre(_set.Pixels(index), sample);
            }
            batch.Labels[i] = _set.Label(index);
            batch.Indices[i] = index;
        });
        batch.Count = count;
        batch.Number = number;
        batch.FirstSample = first;
        batch.BatchCount = batchCount;
    }
}
