using System.Buffers;
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace AlexNetCompiler.Distributed;

/// <summary>
/// <see cref="ICommunicator"/> over MPI_COMM_WORLD of Open MPI, for processes started by <c>mpirun</c> (a process
/// started alone is a job of one rank, MPI's singleton start). The collectives are the non-blocking MPI_Iallreduce
/// (in place) and MPI_Ibcast, completed by polling MPI_Test, so that a wait can give up after <see cref="Timeout"/>
/// instead of blocking for ever in MPI_Wait on a peer that died. Polling is also what makes Open MPI progress a
/// non-blocking collective, so several buffers started together move while the caller waits for the first.
/// MPI may be started once per process: <see cref="Start"/> a second time throws.
/// </summary>
public sealed unsafe class MpiCommunicator : ICommunicator
{
    private static int _started;
    private readonly object _gate = new(); // MPI_THREAD_SERIALIZED: one call at a time
    private bool _failed, _disposed;

    private MpiCommunicator(int rank, int size, string library, TimeSpan timeout)
    {
        Rank = rank;
        Size = size;
        Library = library;
        Timeout = timeout;
    }

    /// <summary>
    /// MPI_Init_thread (serialized calls from any thread), then this process's rank and the job's size. Throws
    /// <see cref="MpiUnavailableException"/> when libmpi cannot be loaded.
    /// </summary>
    public static MpiCommunicator Start(TimeSpan timeout)
    {
        if (timeout <= TimeSpan.Zero && timeout != System.Threading.Timeout.InfiniteTimeSpan)
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "The timeout must be positive.");
        if (Interlocked.Exchange(ref _started, 1) != 0)
            throw new InvalidOperationException("MPI has already been started in this process; it can be started only once.");
        try
        {
            // Resolving the handles loads the library, so a missing MPI is reported before any call.
            _ = MpiApi.Handles.CommWorld;
            MpiApi.Check(MpiApi.MPI_Init_thread(null, null, MpiApi.MPI_THREAD_SERIALIZED, out int provided), "MPI_Init_thread");
            if (provided < MpiApi.MPI_THREAD_SERIALIZED)
                throw new MpiUnavailableException($"This MPI provides thread level {provided}; training needs MPI_THREAD_SERIALIZED ({MpiApi.MPI_THREAD_SERIALIZED}).");
            MpiApi.Check(MpiApi.MPI_Comm_rank(MpiApi.Handles.CommWorld, out int rank), "MPI_Comm_rank");
            MpiApi.Check(MpiApi.MPI_Comm_size(MpiApi.Handles.CommWorld, out int size), "MPI_Comm_size");
            return new MpiCommunicator(rank, size, LibraryVersion(), timeout);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            throw new MpiUnavailableException($"Could not use Open MPI's libmpi: {e.Message}");
        }
        catch (TypeInitializationException e) when (e.InnerException is MpiUnavailableException unavailable)
        {
            // The handles are looked up in MpiApi.Handles' static initialiser, which wraps what it throws.
            throw unavailable;
        }
    }

    public int Rank { get; }
    public int Size { get; }
    public TimeSpan Timeout { get; }

    /// <summary>MPI_Get_library_version's first line, e.g. "Open MPI v4.1.4, package: Debian OpenMPI, ...".</summary>
    public string Library { get; }

    public string Description => $"MPI, rank {Rank} of {Size} ({Library.Split(',')[0]})";

    public PendingSum StartAllReduceSum(Memory<float> buffer)
    {
        MemoryHandle pin = buffer.Pin();
        IntPtr request;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            int result = MpiApi.MPI_Iallreduce((void*)MpiApi.MPI_IN_PLACE, pin.Pointer, buffer.Length, MpiApi.Handles.Float,
                MpiApi.Handles.Sum, MpiApi.Handles.CommWorld, out request);
            if (result != MpiApi.MPI_SUCCESS) pin.Dispose();
            MpiApi.Check(result, "MPI_Iallreduce");
        }
        return new Pending(this, request, pin, "all-reduce", buffer.Length);
    }

    public void Broadcast(Memory<float> buffer, int root)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(root);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(root, Size);
        MemoryHandle pin = buffer.Pin();
        IntPtr request;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            int result = MpiApi.MPI_Ibcast(pin.Pointer, buffer.Length, MpiApi.Handles.Float, root, MpiApi.Handles.CommWorld, out request);
            if (result != MpiApi.MPI_SUCCESS) pin.Dispose();
            MpiApi.Check(result, "MPI_Ibcast");
        }
        new Pending(this, request, pin, "broadcast", buffer.Length).Wait();
    }

    /// <summary>
    /// MPI_Abort on MPI_COMM_WORLD: Open MPI ends every rank of the job with <paramref name="exitCode"/>. For a rank
    /// that cannot go on and must not leave the others waiting out their timeouts.
    /// </summary>
    public void Abort(int exitCode)
    {
        _failed = true;
        MpiApi.MPI_Abort(MpiApi.Handles.CommWorld, exitCode);
    }

    /// <summary>
    /// Ends MPI normally (MPI_Finalize, which waits for every rank to reach it): call it when this rank has done its
    /// work. Not after a collective timed out (the peers may be gone).
    /// </summary>
    public void Finish()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            if (!_failed) MpiApi.Check(MpiApi.MPI_Finalize(), "MPI_Finalize");
        }
    }

    /// <summary>
    /// Without <see cref="Finish"/> first (an error ended this rank's work), does not finalise: MPI_Finalize would wait
    /// for ranks that may be waiting for this one. The process then exits without finalising, on which mpirun ends the
    /// rest of the job and reports it.
    /// </summary>
    public void Dispose()
    {
        lock (_gate) _disposed = true;
    }

    private static string LibraryVersion()
    {
        byte* text = stackalloc byte[8192]; // MPI_MAX_LIBRARY_VERSION_STRING is 256 in Open MPI; room for others
        return MpiApi.MPI_Get_library_version(text, out int length) == MpiApi.MPI_SUCCESS
            ? System.Text.Encoding.UTF8.GetString(text, Math.Clamp(length, 0, 8192)).Split('\n')[0].Trim()
            : "unknown MPI";
    }

    private sealed class Pending(MpiCommunicator owner, IntPtr request, MemoryHandle pin, string kind, int length) : PendingSum
    {
        private IntPtr _request = request;
        private MemoryHandle _pin = pin;
        private bool _completed;

        public override bool IsCompleted => _completed || Test();

        public override void Wait()
        {
            if (_completed) return;
            var clock = Stopwatch.StartNew();
            int polls = 0;
            while (!Test())
            {
                if (owner.Timeout != System.Threading.Timeout.InfiniteTimeSpan && clock.Elapsed > owner.Timeout)
                {
                    // The request stays pinned and pending: MPI may still write into it, and the job is over anyway.
                    owner._failed = true;
                    throw new CommunicatorTimeoutException(CommunicatorExtensions.TimeoutMessage(owner, kind, length));
                }
                // Spin briefly (a step's sums usually arrive within microseconds), then give the core away.
                if (++polls < 1000) Thread.SpinWait(20);
                else Thread.Sleep(polls < 2000 ? 0 : 1);
            }
        }

        private bool Test()
        {
            lock (owner._gate)
            {
                if (_completed) return true;
                MpiApi.Check(MpiApi.MPI_Test(ref _request, out int flag, null), "MPI_Test");
                if (flag == 0) return false;
                _completed = true;
                _pin.Dispose();
                return true;
            }
        }
    }
}
