using AlexNetCompiler.Cuda;
using AlexNetCompiler.Training;

namespace AlexNetCompiler.Distributed;

/// <summary>
/// Synchronous data-parallel SGD on GPUs, one per rank, over NCCL: the step of <see cref="DataParallelEngine"/> with
/// the gradients kept on the device. Each rank runs its shard's forward and backward pass, scales the gradients by
/// shard / batch on the GPU, and the ranks sum them in place with ncclAllReduce on the training stream, followed by a
/// three-float sum of the shard's loss x size, its correct count and the stop flag; every rank then applies the same SGD
/// update on its GPU. Parameters and momentum are broadcast from rank 0 on the device (ncclBroadcast).
///
/// Dropout: each rank passes its shard's first sample to
/// <see cref="CudaNetwork.ForwardBackward(ReadOnlySpan{float}, ReadOnlySpan{int}, int, ulong?, long)"/>, whose kernels
/// draw the whole batch's masks at that offset, so the ranks together apply the masks one GPU applies to the batch.
/// </summary>
/// <remarks>
/// The engine owns the network and the communicator: disposing it ends the communicator first (it uses the network's
/// device), then frees the network.
/// </remarks>
public sealed class CudaDataParallelEngine : IDataParallelEngine
{
    private readonly CudaNetwork _network;
    private readonly INetwork _host;
    private readonly Sgd _optimizer;
    private readonly NcclCommunicator _communicator;
    private readonly DeviceBuffer _statsBuffer;
    private readonly float[] _stats = new float[3]; // loss x shard size, correct, stop requested

    /// <param name="network">Owned: disposed with the engine.</param>
    /// <param name="host">The host network whose parameters are the checkpointed copy.</param>
    /// <param name="optimizer">Its settings drive the GPU update; its velocity is the checkpointed momentum.</param>
    /// <param name="communicator">NCCL over this network's device. Owned: disposed with the engine (a second dispose does nothing).</param>
    public CudaDataParallelEngine(CudaNetwork network, INetwork host, Sgd optimizer, NcclCommunicator communicator)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(host);
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(communicator);
        _network = network;
        _host = host;
        _optimizer = optimizer;
        _communicator = communicator;
        _statsBuffer = network.Device.Allocate(_stats.Length * sizeof(float));
    }

    public ICommunicator Communicator => _communicator;

    public string Description => $"{_network.Description}, data-parallel: {_communicator.Description}";

    public DataParallelStep TrainShard(ReadOnlySpan<float> images, ReadOnlySpan<int> labels, int count, int firstSample, int batchCount,
        ulong dropoutSeed, bool stopRequested = false, int scoredClasses = 0)
    {
        DataParallelEngine.CheckShardRange(count, firstSample, batchCount);
        CudaNetworkRunner runner = _network.Runner;
        float shardLoss = 0;
        long correct = 0;
        if (count > 0)
        {
            // Reads the loss back, so the backward pass has finished when this returns.
            shardLoss = _network.ForwardBackward(images, labels, count, dropoutSeed, firstSample);
            correct = DataParallelEngine.CountCorrect(_network.Logits, labels[..count], _network.Descriptor.ClassCount, scoredClasses);
        }
        else
        {
            runner.ZeroGradients(); // a rank without samples adds nothing
        }
        _stats[0] = shardLoss * count;
        _stats[1] = correct;
        _stats[2] = stopRequested ? 1 : 0;
        // Uploaded before any collective is enqueued: a copy from pageable memory waits for the stream, and must not
        // wait behind a sum that a stalled peer never completes (Wait below is the bounded wait).
        _statsBuffer.CopyFrom<float>(_stats);

        if (count > 0 && count != batchCount) runner.EnqueueScaleGradients((float)count / batchCount);
        long parameters = _network.Descriptor.ParameterCount;
        _communicator.EnqueueAllReduceSum(runner.GradientBuffer, parameters);
        _communicator.EnqueueAllReduceSum(_statsBuffer, _stats.Length);
        _communicator.Wait("all-reduce", parameters + _stats.Length);
        _statsBuffer.CopyTo<float>(_stats);
        _network.GradientsChangedOnDevice();

        float meanLoss = _stats[0] / batchCount;
        if (float.IsFinite(meanLoss)) _network.Update(_optimizer);
        return new DataParallelStep(meanLoss, (long)_stats[1], _stats[2] > 0);
    }

    /// <summary>
    /// <see cref="ITrainingEngine"/>'s step when every rank holds the whole batch: trains this rank's shard of it.
    /// <see cref="Logits"/> then holds the shard's logits only.
    /// </summary>
    public float TrainStep(ReadOnlySpan<float> images, ReadOnlySpan<int> labels, int count, ulong dropoutSeed)
    {
        (int first, int shard) = DataParallelEngine.Shard(count, _communicator.Rank, _communicator.Size);
        int sampleLength = _network.Descriptor.InputLength;
        return TrainShard(images.Slice(first * sampleLength, shard * sampleLength), labels.Slice(first, shard), shard, first, count, dropoutSeed).MeanLoss;
    }

    public ReadOnlySpan<float> Logits => _network.Logits;

    public void Forward(ReadOnlySpan<float> images, int count, Span<float> logits) => _network.Forward(images, count, logits);

    public void CopyStateToHost()
    {
        _network.CopyParametersTo(_host.Parameters);
        _network.CopyOptimizerStateToHost();
    }

    /// <summary>Takes the host state on this rank's GPU, then rank 0's on every rank (after initialisation or a resume).</summary>
    public void CopyStateFromHost()
    {
        _network.CopyParametersFrom(_host.Parameters);
        _network.BindOptimizer(_optimizer);
        BroadcastState();
    }

    /// <summary>Rank 0's parameters and momentum to every rank's GPU (ncclBroadcast), then its learning rate.</summary>
    public void BroadcastState()
    {
        _network.SynchroniseParametersToDevice();
        _network.EnsureBound(_optimizer);
        CudaNetworkRunner runner = _network.Runner;
        long parameters = _network.Descriptor.ParameterCount;
        _communicator.EnqueueBroadcast(runner.ParameterBuffer, parameters, root: 0);
        _communicator.EnqueueBroadcast(runner.VelocityBuffer, parameters, root: 0);
        _communicator.Wait("broadcast", 2 * parameters);
        _network.ParametersChangedOnDevice();
        float[] rate = [_optimizer.LearningRate];
        _communicator.Broadcast(rate, root: 0);
        _optimizer.LearningRate = rate[0];
    }

    public void Dispose()
    {
        _communicator.Dispose();
        _statsBuffer.Dispose();
        _network.Dispose();
    }
}
