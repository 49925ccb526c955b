using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using AlexNetCompiler.Cuda;

namespace AlexNetCompiler.Distributed;

/// <summary>
/// <see cref="ICommunicator"/> over NVIDIA's NCCL, one GPU per rank: the collectives run on the GPU, on the stream the
/// network trains on (the legacy default stream, where <see cref="CudaNetworkRunner"/> launches), so a sum enqueued after
/// the backward pass starts when the gradients are complete and the update enqueued after it sees the sum.
/// <see cref="EnqueueAllReduceSum"/> and <see cref="EnqueueBroadcast"/> work on device buffers; <see cref="Wait"/> then
/// polls an event recorded after them and <c>ncclCommGetAsyncError</c>, so that a peer that died or stalled becomes a
/// <see cref="CommunicatorTimeoutException"/> (or the <see cref="NcclException"/> NCCL reported) after
/// <see cref="Timeout"/> instead of a hang; the communicator is then aborted (<c>ncclCommAbort</c>). The host-memory
/// collectives of <see cref="ICommunicator"/> go through a small device buffer and complete before they return.
///
/// Setup: rank 0 creates the unique id (<see cref="CreateUniqueId"/>), every rank receives it (through MPI,
/// <see cref="ShareUniqueId"/>, or a file, <see cref="ShareUniqueIdThroughFile"/>) and calls <see cref="Create"/>,
/// which returns when all ranks have joined.
/// </summary>
public sealed unsafe class NcclCommunicator : ICommunicator
{
    private readonly CudaDevice _device;
    private readonly CudaEvent _done;
    private IntPtr _communicator;
    private DeviceBuffer? _staging;
    private bool _failed;

    private NcclCommunicator(CudaDevice device, IntPtr communicator, int rank, int size, TimeSpan timeout, int version)
    {
        _device = device;
        _communicator = communicator;
        Rank = rank;
        Size = size;
        Timeout = timeout;
        Version = NcclApi.VersionText(version);
        _done = device.CreateEvent();
    }

    public int Rank { get; }
    public int Size { get; }
    public TimeSpan Timeout { get; }

    /// <summary>The loaded library's version, e.g. "2.27.7".</summary>
    public string Version { get; }

    public string Description => $"NCCL {Version}, rank {Rank} of {Size} on {_device.Name}";

    /// <summary>The version of the NCCL library this process loads (ncclGetVersion), as "2.27.7".</summary>
    public static string LibraryVersion()
    {
        EnsureLoaded();
        NcclApi.Check(NcclApi.ncclGetVersion(out int version), "ncclGetVersion");
        return NcclApi.VersionText(version);
    }

    /// <summary>A new id for one communicator (rank 0 calls it and hands the id to the others).</summary>
    public static NcclUniqueId CreateUniqueId()
    {
        EnsureLoaded();
        NcclApi.Check(NcclApi.ncclGetUniqueId(out NcclUniqueId id), "ncclGetUniqueId");
        return id;
    }

    /// <summary>
    /// Rank 0 of <paramref name="bootstrap"/> (an MPI job) creates the id and broadcasts it; every rank returns it. The
    /// 128 bytes travel as 32 floats whose bits a broadcast copies unchanged.
    /// </summary>
    public static NcclUniqueId ShareUniqueId(ICommunicator bootstrap)
    {
        ArgumentNullException.ThrowIfNull(bootstrap);
        float[] carrier = new float[NcclApi.UniqueIdBytes / sizeof(float)];
        if (bootstrap.Rank == 0) CreateUniqueId().ToArray().CopyTo(MemoryMarshal.AsBytes(carrier.AsSpan()));
        bootstrap.Broadcast(carrier, root: 0);
        return NcclUniqueId.FromBytes(MemoryMarshal.AsBytes(carrier.AsSpan()));
    }

    /// <summary>
    /// Without MPI: rank 0 creates the id and writes it to <paramref name="path"/> (atomically: a temporary file renamed),
    /// the other ranks wait up to <paramref name="timeout"/> for the file and read it. Use a path that no earlier job left
    /// behind (a follower would read a stale id and wait in <see cref="Create"/> for peers that never come).
    /// </summary>
    public static NcclUniqueId ShareUniqueIdThroughFile(string path, int rank, TimeSpan timeout)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentOutOfRangeException.ThrowIfNegative(rank);
        if (rank == 0)
        {
            NcclUniqueId id = CreateUniqueId();
            string temporary = $"{path}.{Environment.ProcessId}.tmp";
            File.WriteAllBytes(temporary, id.ToArray());
            File.Move(temporary, path, overwrite: true);
            return id;
        }
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var file = new FileInfo(path);
            if (file.Exists && file.Length == NcclApi.UniqueIdBytes) return NcclUniqueId.FromBytes(File.ReadAllBytes(path));
            if (timeout != System.Threading.Timeout.InfiniteTimeSpan && clock.Elapsed > timeout)
                throw new CommunicatorTimeoutException(string.Create(CultureInfo.InvariantCulture,
                    $"Rank {rank}: the NCCL unique id did not appear in {path} within {timeout.TotalSeconds:0.#} s; rank 0 has not started or failed (see its output)."));
            Thread.Sleep(50);
        }
    }

    /// <summary>
    /// Joins rank <paramref name="rank"/> of <paramref name="size"/> to the communicator named by <paramref name="id"/>
    /// on <paramref name="device"/> (ncclCommInitRank, which returns when every rank has called it). Waits at most
    /// <paramref name="timeout"/> for the others; the same timeout bounds every later collective. Throws
    /// <see cref="NcclUnavailableException"/> when libnccl cannot be loaded.
    /// </summary>
    /// <param name="device">Not owned; it must outlive the communicator.</param>
    public static NcclCommunicator Create(CudaDevice device, int rank, int size, NcclUniqueId id, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(rank);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(rank, size);
        if (timeout <= TimeSpan.Zero && timeout != System.Threading.Timeout.InfiniteTimeSpan)
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "The timeout must be positive.");
        EnsureLoaded();
        NcclApi.Check(NcclApi.ncclGetVersion(out int code), "ncclGetVersion");

        // ncclCommInitRank blocks until every rank has joined: on a thread of its own, so that a rank that never
        // comes is a timeout here rather than a hang. NCCL uses the calling thread's current CUDA context.
        IntPtr communicator = IntPtr.Zero;
        int result = -1;
        Exception? failure = null;
        var init = new Thread(() =>
        {
            try
            {
                device.MakeCurrent();
                result = NcclApi.ncclCommInitRank(out communicator, size, id, rank);
            }
            catch (Exception e)
            {
                failure = e;
            }
        }) { IsBackground = true, Name = "nccl-init" };
        init.Start();
        if (!init.Join(timeout))
            throw new CommunicatorTimeoutException(string.Create(CultureInfo.InvariantCulture,
                $"Rank {rank} of {size}: NCCL's communicator setup did not complete within {timeout.TotalSeconds:0.#} s; another rank has died, stalled or is running different settings (see its output)."));
        if (failure is not null) throw failure;
        NcclApi.Check(result, "ncclCommInitRank");
        return new NcclCommunicator(device, communicator, rank, size, timeout, code);
    }

    /// <summary>
    /// Enqueues the in-place sum of the first <paramref name="count"/> floats of <paramref name="buffer"/> over all ranks
    /// (ncclAllReduce, float32, sum) on the training stream. Complete it with <see cref="Wait"/>.
    /// </summary>
    public void EnqueueAllReduceSum(DeviceBuffer buffer, long count)
    {
        CheckRange(buffer, count);
        IntPtr communicator = Live();
        _device.MakeCurrent();
        void* pointer = (void*)buffer.Pointer;
        NcclApi.Check(NcclApi.ncclAllReduce(pointer, pointer, (nuint)count, NcclApi.ncclFloat32, NcclApi.ncclSum, communicator, IntPtr.Zero), "ncclAllReduce");
    }

    /// <summary>Enqueues the in-place copy of rank <paramref name="root"/>'s first <paramref name="count"/> floats to every rank (ncclBroadcast).</summary>
    public void EnqueueBroadcast(DeviceBuffer buffer, long count, int root)
    {
        CheckRange(buffer, count);
        ArgumentOutOfRangeException.ThrowIfNegative(root);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(root, Size);
        IntPtr communicator = Live();
        _device.MakeCurrent();
        void* pointer = (void*)buffer.Pointer;
        NcclApi.Check(NcclApi.ncclBroadcast(pointer, pointer, (nuint)count, NcclApi.ncclFloat32, root, communicator, IntPtr.Zero), "ncclBroadcast");
    }

    /// <summary>
    /// Waits until everything enqueued on the training stream so far has finished, polling, at most
    /// <see cref="Timeout"/>. An error NCCL reports (ncclCommGetAsyncError) or the timeout aborts the communicator and
    /// throws; <paramref name="collective"/> and <paramref name="length"/> name what was waited for in the message.
    /// </summary>
    public void Wait(string collective, long length)
    {
        IntPtr communicator = Live();
        _device.MakeCurrent();
        _done.Record();
        var clock = Stopwatch.StartNew();
        int polls = 0;
        while (true)
        {
            bool complete = _done.IsComplete;
            CheckAsyncError(communicator, collective, length);
            if (complete) return;
            if (Timeout != System.Threading.Timeout.InfiniteTimeSpan && clock.Elapsed > Timeout)
            {
                Abort();
                throw new CommunicatorTimeoutException(CommunicatorExtensions.TimeoutMessage(this, collective, (int)Math.Min(length, int.MaxValue)));
            }
            if (++polls < 1000) Thread.SpinWait(20);
            else Thread.Sleep(polls < 2000 ? 0 : 1);
        }
    }

    public PendingSum StartAllReduceSum(Memory<float> buffer)
    {
        DeviceBuffer staging = Stage(buffer.Span);
        EnqueueAllReduceSum(staging, buffer.Length);
        Wait("all-reduce", buffer.Length);
        staging.CopyTo(buffer.Span);
        return CompletedSum.Instance;
    }

    public void Broadcast(Memory<float> buffer, int root)
    {
        DeviceBuffer staging = Stage(buffer.Span);
        EnqueueBroadcast(staging, buffer.Length, root);
        Wait("broadcast", buffer.Length);
        staging.CopyTo(buffer.Span);
    }

    /// <summary>
    /// Ends the communicator at once (ncclCommAbort): for a rank that cannot go on, so that nothing waits on it. Later
    /// collectives throw.
    /// </summary>
    public void Abort()
    {
        _failed = true;
        if (_communicator == IntPtr.Zero) return;
        _device.MakeCurrent();
        NcclApi.ncclCommAbort(_communicator);
        _communicator = IntPtr.Zero;
    }

    /// <summary>ncclCommDestroy after a normal end; ncclCommAbort after an error (the peers may be gone). A second call does nothing.</summary>
    public void Dispose()
    {
        if (_communicator != IntPtr.Zero)
        {
            _device.MakeCurrent();
            if (_failed) NcclApi.ncclCommAbort(_communicator);
            else NcclApi.ncclCommDestroy(_communicator);
            _communicator = IntPtr.Zero;
        }
        _staging?.Dispose();
        _staging = null;
        _done.Dispose();
    }

    /// <summary>Throws <see cref="NcclUnavailableException"/> (one line: what to install or set) when libnccl cannot be loaded.</summary>
    internal static void EnsureLoaded()
    {
        if (!NativeLibraries.TryLoad(NativeLibraries.Nccl, out _, out string? error))
            throw new NcclUnavailableException(error!);
        NativeLibraries.EnsureRegistered();
    }

    private void CheckAsyncError(IntPtr communicator, string collective, long length)
    {
        NcclApi.Check(NcclApi.ncclCommGetAsyncError(communicator, out int asyncError), "ncclCommGetAsyncError");
        if (asyncError == NcclApi.ncclSuccess || asyncError == NcclApi.ncclInProgress) return;
        Abort();
        throw new NcclException(string.Create(CultureInfo.InvariantCulture,
            $"Rank {Rank} of {Size}: NCCL failed during {collective} of {length} floats: {NcclApi.ErrorText(asyncError)} (NCCL error {asyncError}, {NcclApi.ResultName(asyncError)}); another rank may have died (see its output)."),
            "ncclCommGetAsyncError", asyncError);
    }

    private IntPtr Live()
    {
        if (_failed) throw new InvalidOperationException($"Rank {Rank} of {Size}: the NCCL communicator was aborted after an error; no more collectives can run on it.");
        ObjectDisposedException.ThrowIf(_communicator == IntPtr.Zero, this);
        return _communicator;
    }

    private static void CheckRange(DeviceBuffer buffer, long count)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        if (count < 0 || count * sizeof(float) > buffer.Bytes)
            throw new ArgumentOutOfRangeException(nameof(count), $"{count} floats do not fit a {buffer.Bytes}-byte device buffer.");
    }

    private DeviceBuffer Stage(ReadOnlySpan<float> values)
    {
        Live();
        long bytes = Math.Max(4, (long)values.Length * sizeof(float));
        if (_staging is null || _staging.Bytes < bytes)
        {
            _staging?.Dispose();
            _staging = _device.Allocate(bytes);
        }
        _staging.CopyFrom(values);
        return _staging;
    }

    private sealed class CompletedSum : PendingSum
    {
        public static readonly CompletedSum Instance = new();
        public override bool IsCompleted => true;
        public override void Wait() { }
    }
}
