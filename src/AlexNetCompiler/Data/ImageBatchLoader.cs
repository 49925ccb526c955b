namespace AlexNetCompiler.Data;

/// <summary>
/// Feeds an <see cref="ImageSet"/> through an <see cref="ImagePipeline"/> in batches, preparing the next batch on the
/// thread pool (its samples in parallel, at most <c>threads</c> at a time) while the caller trains on the current one.
/// An epoch holds two batch buffers, so memory stays at two batches whatever the set's size; the pixels come from
/// the memory-mapped cache. A loop left early waits for the batch in preparation and discards it.
///
/// Determinism: the epoch's order is a pure function of (seed, epoch) and each training sample's crop, flip and
/// lighting a pure function of (seed, epoch, index in the set), whichever thread prepares it.
/// </summary>
public sealed class ImageBatchLoader
{
    private const long ShuffleStream = -1;

    private readonly ImageSet _set;
    private readonly ImagePipeline _pipeline;
    private readonly ParallelOptions _parallel;
    private bool _inEpoch;

    public ImageBatchLoader(ImageSet set, ImagePipeline pipeline, int batchSize, bool training, ulong seed = 0, int threads = 0)
    {
        ArgumentNullException.ThrowIfNull(set);
        ArgumentNullException.ThrowIfNull(pipeline);
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), $"Batch size {batchSize} must be positive.");
        if (set.Side != pipeline.Options.Side)
            throw new ArgumentException($"{set.Name}: images of {set.Side}x{set.Side}, the pipeline expects {pipeline.Options.Side}x{pipeline.Options.Side}.");
        _set = set;
        _pipeline = pipeline;
        BatchSize = batchSize;
        Training = training;
        Seed = seed;
        _parallel = new ParallelOptions { MaxDegreeOfParallelism = threads == 0 ? Environment.ProcessorCount : threads };
    }

    public ImageSet Set => _set;
    public int BatchSize { get; }
    /// <summary>Training: shuffled, with the pipeline's random crops, flips and lighting; otherwise in order, centre crops.</summary>
    public bool Training { get; }
    public ulong Seed { get; }
    public int BatchesPerEpoch => (_set.Count + BatchSize - 1) / BatchSize;

    /// <summary>
    /// The batches of one epoch; each is valid until the next is requested. Every image appears once. One epoch at a
    /// time: leaving the loop early (break, exception, First()) waits for the batch in preparation, so that the cache
    /// can be disposed once the loop is left.
    /// </summary>
    public IEnumerable<Batch> Epoch(int epoch)
    {
        if (_inEpoch) throw new InvalidOperationException($"{_set.Name}: finish (or leave) the previous epoch's loop before starting another.");
        return EpochIterator(epoch);
    }

    private IEnumerable<Batch> EpochIterator(int epoch)
    {
        _inEpoch = true;
        Task next = Task.CompletedTask;
        try
        {
            int[] order = Order(epoch);
            Batch[] buffers = [CreateBatch(), CreateBatch()];
            int batches = BatchesPerEpoch;
            if (batches == 0) yield break;
            next = Task.Run(() => Fill(buffers[0], order, epoch, 0));
            for (int b = 0; b < batches; b++)
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

    public Batch CreateBatch() => new(BatchSize, _pipeline.SampleLength);

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
        int start = number * BatchSize;
        int count = Math.Min(BatchSize, _set.Count - start);
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
    }
}
