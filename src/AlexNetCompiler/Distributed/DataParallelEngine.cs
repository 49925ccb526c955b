using System.Numerics;
using AlexNetCompiler.Training;

namespace AlexNetCompiler.Distributed;

/// <summary>What one data-parallel step gives every rank: the same numbers on all of them.</summary>
/// <param name="MeanLoss">Mean loss over the whole batch (all shards).</param>
/// <param name="Correct">Samples of the whole batch whose largest logit is their label.</param>
/// <param name="StopRequested">Whether any rank asked to stop; every rank then stops after this step.</param>
public readonly record struct DataParallelStep(float MeanLoss, long Correct, bool StopRequested);

/// <summary>
/// A data-parallel training engine: every rank trains its shard of each batch and applies the same summed update.
/// <see cref="DataParallelEngine"/> on the CPU, <see cref="CudaDataParallelEngine"/> on GPUs over NCCL.
/// </summary>
public interface IDataParallelEngine : ITrainingEngine
{
    /// <summary>The ranks; also carries the host-side broadcasts of the trainer (the learning rate).</summary>
    ICommunicator Communicator { get; }

    /// <summary>
    /// One step on this rank's shard: samples [<paramref name="firstSample"/>, + <paramref name="count"/>) of a batch of
    /// <paramref name="batchCount"/>. Every rank must call it for the same batch. The update is skipped on every rank
    /// when the batch's loss is not finite. <paramref name="scoredClasses"/>: the correct predictions count the argmax of the
    /// first that many outputs (a data set of fewer classes than outputs); 0, all of them.
    /// </summary>
    DataParallelStep TrainShard(ReadOnlySpan<float> images, ReadOnlySpan<int> labels, int count, int firstSample, int batchCount,
        ulong dropoutSeed, bool stopRequested = false, int scoredClasses = 0);

    /// <summary>Copies rank 0's parameters, momentum and learning rate to every rank.</summary>
    void BroadcastState();
}

/// <summary>
/// Synchronous data-parallel SGD on the CPU: every rank holds the whole network and optimizer, runs the generated
/// ForwardBackward on its shard of each batch, and the gradients are summed over the ranks before every rank applies
/// the same update. Each shard's gradient is the mean over the shard; scaled by shard / batch before the sum, the sum
/// is the mean over the whole batch, the gradient one process computes. Dropout masks come from the whole batch's
/// stream (<see cref="INetwork.ForwardBackward(ReadOnlySpan{float}, ReadOnlySpan{int}, int, ulong?, long)"/>), so the
/// only difference from one process is the order in which the batch's per-sample terms are added.
///
/// The gradients are summed in buckets (ranges of the gradient buffer, last parameters first) while backward goes on:
/// the generated ForwardBackward reports each layer's gradients as soon as they are final
/// (<see cref="GradientsReady"/>), and a bucket's sum starts as soon as all of it is final, so the last layers'
/// gradients (the dense layers: nearly all of AlexNet's) travel while the convolutions' backward runs.
/// </summary>
public sealed class DataParallelEngine : IDataParallelEngine
{
    /// <summary>4 Mi floats (16 MiB) per bucket: large enough that the per-message latency is small against the bandwidth term.</summary>
    public const int DefaultBucketFloats = 1 << 22;

    private readonly INetwork _network;
    private readonly Sgd _optimizer;
    private readonly ICommunicator _communicator;
    private readonly (int Offset, int Length)[] _buckets;
    private readonly PendingSum[] _pending;
    private readonly float[] _stats = new float[3]; // loss x shard size, correct, stop requested
    private readonly GradientsReady _onGradientsReady;
    // During a pass: the next bucket to start, the start of the final tail of the gradient buffer, and the shard's scale.
    private int _nextBucket, _finalFrom;
    private float _shardScale;

    public DataParallelEngine(INetwork network, Sgd optimizer, ICommunicator communicator, int bucketFloats = DefaultBucketFloats)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(communicator);
        ArgumentOutOfRangeException.ThrowIfLessThan(bucketFloats, 1);
        _network = network;
        _optimizer = optimizer;
        _communicator = communicator;
        _buckets = Buckets(network.Gradients.Length, bucketFloats);
        _pending = new PendingSum[_buckets.Length + 1];
        _onGradientsReady = OnGradientsReady;
    }

    /// <summary>The gradient buffer's ranges, last first, each at most <paramref name="bucketFloats"/> long.</summary>
    public static (int Offset, int Length)[] Buckets(int length, int bucketFloats)
    {
        var buckets = new List<(int, int)>();
        for (int end = length; end > 0; end -= bucketFloats)
        {
            int start = Math.Max(0, end - bucketFloats);
            buckets.Add((start, end - start));
        }
        return buckets.ToArray();
    }

    /// <summary>
    /// The samples of a batch of <paramref name="batchCount"/> that rank <paramref name="rank"/> of <paramref name="size"/>
    /// trains on: a contiguous range, the ranks in order, sizes differing by at most one (empty when the batch is smaller
    /// than the job).
    /// </summary>
    public static (int First, int Count) Shard(int batchCount, int rank, int size)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(batchCount);
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(rank);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(rank, size);
        int first = (int)((long)batchCount * rank / size);
        int next = (int)((long)batchCount * (rank + 1) / size);
        return (first, next - first);
    }

    /// <summary>TrainShard's check, shared with <see cref="CudaDataParallelEngine"/>: the shard lies inside its batch.</summary>
    internal static void CheckShardRange(int count, int firstSample, int batchCount)
    {
        if (count < 0 || firstSample < 0 || firstSample + count > batchCount)
            throw new ArgumentException($"Shard [{firstSample}, {firstSample + count}) is not inside a batch of {batchCount}.");
    }

    public ICommunicator Communicator => _communicator;

    public string Description => $"cpu, data-parallel: {_communicator.Description}";

    /// <summary>
    /// One step on this rank's shard: samples [<paramref name="firstSample"/>, + <paramref name="count"/>) of a batch of
    /// <paramref name="batchCount"/>. Every rank must call it for the same batch. The update is skipped on every rank
    /// when the batch's loss is not finite.
    /// </summary>
    public DataParallelStep TrainShard(ReadOnlySpan<float> images, ReadOnlySpan<int> labels, int count, int firstSample, int batchCount,
        ulong dropoutSeed, bool stopRequested = false, int scoredClasses = 0)
    {
        CheckShardRange(count, firstSample, batchCount);
        float[] gradients = _network.Gradients;
        float shardLoss = 0;
        long correct = 0;
        _nextBucket = 0;
        _finalFrom = gradients.Length;
        _shardScale = batchCount == 0 ? 1 : (float)count / batchCount;
        if (count > 0)
        {
            // Buckets start from OnGradientsReady as backward finishes them.
            shardLoss = _network.ForwardBackward(images, labels, count, dropoutSeed, firstSample, _onGradientsReady);
            correct = CountCorrect(_network.Logits, labels[..count], _network.Descriptor.ClassCount, scoredClasses);
        }
        else
        {
            Array.Clear(gradients); // a rank without samples adds nothing (all of it is started below)
        }
        _stats[0] = shardLoss * count;
        _stats[1] = correct;
        _stats[2] = stopRequested ? 1 : 0;

        // Whatever was not reported (a network that reports nothing, or out of order) is final now.
        if (_finalFrom > 0) OnGradientsReady(0, _finalFrom);
        _pending[^1] = _communicator.StartAllReduceSum(_stats);
        foreach (PendingSum pending in _pending) pending.Wait();

        float meanLoss = _stats[0] / batchCount;
        if (float.IsFinite(meanLoss)) _optimizer.Step(_network.Parameters, gradients);
        return new DataParallelStep(meanLoss, (long)_stats[1], _stats[2] > 0);
    }

    /// <summary>
    /// <see cref="ITrainingEngine"/>'s step when every rank holds the whole batch: trains this rank's shard of it.
    /// <see cref="Logits"/> then holds the shard's logits only.
    /// </summary>
    public float TrainStep(ReadOnlySpan<float> images, ReadOnlySpan<int> labels, int count, ulong dropoutSeed)
    {
        (int first, int shard) = Shard(count, _communicator.Rank, _communicator.Size);
        int sampleLength = _network.Descriptor.InputChannels * _network.Descriptor.InputHeight * _network.Descriptor.InputWidth;
        return TrainShard(images.Slice(first * sampleLength, shard * sampleLength), labels.Slice(first, shard), shard, first, count, dropoutSeed).MeanLoss;
    }

    public ReadOnlySpan<float> Logits => _network.Logits;

    public void Forward(ReadOnlySpan<float> images, int count, Span<float> logits) => _network.Forward(images, count, logits);

    /// <summary>The network's own buffers are the state.</summary>
    public void CopyStateToHost() { }

    /// <summary>Takes rank 0's parameters and momentum on every rank (after initialisation or a resume): all ranks start equal.</summary>
    public void CopyStateFromHost() => BroadcastState();

    /// <summary>
    /// Copies rank 0's parameters, momentum and learning rate to every rank. Every rank applies the same update to the
    /// same sum, so they stay equal; this makes it certain whatever the transport's summation order on each rank.
    /// </summary>
    public void BroadcastState()
    {
        _communicator.Broadcast(_network.Parameters, root: 0);
        _communicator.Broadcast(_optimizer.Velocity, root: 0);
        float[] rate = [_optimizer.LearningRate];
        _communicator.Broadcast(rate, root: 0);
        _optimizer.LearningRate = rate[0];
    }

    public void Dispose() { }

    /// <summary>
    /// Gradients[offset, offset + length) are final: scales them to the shard's share of the batch and starts every bucket
    /// that now lies in the final tail of the buffer. Ranges arrive last to first, each ending where the tail begins; one
    /// that does not is left for the end of the pass.
    /// </summary>
    private void OnGradientsReady(int offset, int length)
    {
        if (offset + length != _finalFrom) return;
        float[] gradients = _network.Gradients;
        if (_shardScale != 1) Scale(gradients.AsSpan(offset, length), _shardScale);
        _finalFrom = offset;
        while (_nextBucket < _buckets.Length && _buckets[_nextBucket].Offset >= _finalFrom)
        {
            (int bucketOffset, int bucketLength) = _buckets[_nextBucket];
            _pending[_nextBucket++] = _communicator.StartAllReduceSum(gradients.AsMemory(bucketOffset, bucketLength));
        }
        // Sums already in flight advance only inside calls into some transports (MPI without a progress thread).
        for (int b = 0; b < _nextBucket; b++) _ = _pending[b].IsCompleted;
    }

    private static void Scale(Span<float> span, float factor)
    {
        var vector = new Vector<float>(factor);
        int i = 0;
        for (; i <= span.Length - Vector<float>.Count; i += Vector<float>.Count)
            (new Vector<float>(span[i..]) * vector).CopyTo(span[i..]);
        for (; i < span.Length; i++) span[i] *= factor;
    }

    internal static long CountCorrect(ReadOnlySpan<float> logits, ReadOnlySpan<int> labels, int classes, int scoredClasses = 0)
    {
        int scored = scoredClasses > 0 ? Math.Min(scoredClasses, classes) : classes;
        long correct = 0;
        for (int n = 0; n < labels.Length; n++)
        {
            ReadOnlySpan<float> row = logits.Slice(n * classes, scored);
            int best = 0;
            for (int c = 1; c < scored; c++) if (row[c] > row[best]) best = c;
            if (best == labels[n]) correct++;
        }
        return correct;
    }
}
