using AlexNetCompiler;
using AlexNetCompiler.Cuda;
using AlexNetCompiler.Devices;
using AlexNetCompiler.Distributed;
using AlexNetCompiler.Training;
using FashionMnist.App;

namespace FashionMnist.Commands;

/// <summary>
/// The ranks of a --distributed run and how they talk: over MPI on the CPU; over NCCL with --device cuda, one GPU per
/// rank, the NCCL id shared through MPI under mpirun or through a file when the process runs alone (one rank, no MPI
/// needed).
/// </summary>
internal sealed class DistributedJob(MpiCommunicator? mpi, bool gpu, TimeSpan peerTimeout)
{
    /// <summary>Whether Open MPI's mpirun started this process (it sets OMPI_COMM_WORLD_SIZE in every rank's environment).</summary>
    public static bool LaunchedByMpirun => Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE") is { Length: > 0 };

    /// <summary>Loads NCCL before anything else starts, so that a machine without it fails at once with one line.</summary>
    public static void RequireNccl()
    {
        try
        {
            _ = NcclCommunicator.LibraryVersion();
        }
        catch (NcclUnavailableException e)
        {
            throw new NotSupportedException($"--distributed --device cuda: {e.Message}", e);
        }
    }

    public int Rank => mpi?.Rank ?? 0;
    public int Size => mpi?.Size ?? 1;
    public bool Gpu => gpu;

    /// <summary>
    /// This rank's GPU: its rank among the job's ranks on this machine (Open MPI's OMPI_COMM_WORLD_LOCAL_RANK), so that
    /// the ranks of one machine take GPUs 0, 1, ... ; 0 when started alone or on the CPU.
    /// </summary>
    public int DeviceOrdinal =>
        gpu && int.TryParse(Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_LOCAL_RANK"), out int local) && local >= 0 ? local : 0;

    /// <summary>
    /// Several GPU ranks split every batch, and a shard that does not start at sample 0 needs the batch's dropout masks at
    /// its offset, which the CUDA kernels cannot draw yet: refused before anything starts, the same on every rank.
    /// </summary>
    public void CheckNetwork(NetworkChoice network)
    {
        if (gpu && Size > 1 && network.Model.Layers.Any(l => l.Kind == LayerKind.Dropout))
            throw new NotSupportedException($"--distributed --device cuda over {Size} ranks: {network.Model.Name} has dropout, whose masks the CUDA kernels " +
                "cannot draw for a shard of a batch yet; run one GPU rank, or train on the CPU (--device cpu).");
    }

    /// <summary>This rank's communicator on the chosen device (for a GPU job: NCCL's setup, which waits for every rank).</summary>
    public Connection Connect(DeviceChoice choice)
    {
        if (!gpu) return new Connection(mpi ?? throw new InvalidOperationException("A CPU job runs over MPI."), null, null);
        CudaDevice device = choice.CudaDevice ?? throw new InvalidOperationException("The CUDA device choice holds no network.");
        NcclCommunicator nccl;
        try
        {
            NcclUniqueId id = mpi is not null ? NcclCommunicator.ShareUniqueId(mpi) : ShareThroughFile();
            nccl = NcclCommunicator.Create(device, Rank, Size, id, peerTimeout);
        }
        catch (NcclUnavailableException e)
        {
            throw new NotSupportedException($"--distributed --device cuda: {e.Message}", e);
        }
        return new Connection(nccl, nccl, choice.DataParallelEngineFactory(nccl));
    }

    // One rank alone: rank 0 writes the id and reads nothing back, but the path is the one a job of several
    // processes without MPI would share.
    private NcclUniqueId ShareThroughFile()
    {
        DirectoryInfo folder = Directory.CreateTempSubdirectory("alexnet-nccl-");
        try
        {
            return NcclCommunicator.ShareUniqueIdThroughFile(Path.Combine(folder.FullName, "nccl-id"), Rank, peerTimeout);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    /// <summary>
    /// A rank's communicator and, for a GPU job, the engine factory that hands it with the GPU network to the trainer.
    /// Disposing ends what <see cref="Connect"/> created (the NCCL communicator, unless an engine took it); MPI is the
    /// job's.
    /// </summary>
    internal sealed class Connection(ICommunicator communicator, NcclCommunicator? owned, Func<INetwork, Sgd, ITrainingEngine>? engineFactory) : IDisposable
    {
        public ICommunicator Communicator => communicator;
        public Func<INetwork, Sgd, ITrainingEngine>? EngineFactory => engineFactory;
        public void Dispose() => owned?.Dispose();
    }
}
