using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace AlexNetCompiler.Cpu;

/// <summary>Named per-thread scratch buffers, so that nested users (a conv kernel and the GEMM it calls) never share one.</summary>
public enum ScratchSlot
{
    /// <summary>GEMM: packed panels of A (MC x KC).</summary>
    GemmPackedA = 0,
    /// <summary>GEMM: packed panels of B (KC x NC).</summary>
    GemmPackedB = 1,
    /// <summary>Conv: the im2col matrix of one sample (or block of samples) and group (thread 0's, at batch 1, packed whole for the GEMM where it splits the output channels; a strided layer's forward pass: one slab of it, packed), or a strided convolution's channel-lanes item: a strip's sums and its zero-padded input rows; a Winograd work item's transformed tiles and products (and, before the items, a block's transformed filters); for the Winograd weight gradient, thread 0's slot holds a chunk's transformed input and output-gradient tiles, shared by every thread.</summary>
    Columns = 2,
    /// <summary>Per-thread partial sums of a parameter gradient (reduced after a parallel loop).</summary>
    PartialGradient = 3,
    /// <summary>Small kernels that need a few rows of temporaries (LRN, the dense layers' fused update); a batch-1 convolution's rows of one input channel before they are packed; a strided convolution's slab of input rows of one channel, split into stride phases.</summary>
    Temporary = 4,
    /// <summary>Conv: a block of samples' output, or output gradient, gathered side by side for one GEMM.</summary>
    SampleBlock = 5,
    /// <summary>Winograd: a layer's transformed filters, computed once per call and shared by every thread, or the weight gradient's 36 sums per filter; im2col + GEMM and the channel lanes: a layer's weight packed once per call for every item (thread 0's slot only).</summary>
    TransformedFilters = 6,
    /// <summary>Dense layers at a small batch: the input's rows copied where their cache lines do not collide (thread 0's slot, shared by every thread).</summary>
    InputRows = 7,
}

/// <summary>
/// Threads and scratch memory for the fast CPU kernels.
/// <para>
/// Work is run on a small dedicated pool: the calling thread is worker 0 and <see cref="Threads"/> - 1 background
/// threads join it. A parallel loop takes an unmanaged function pointer and a pointer to a state struct on the
/// caller's stack, so starting one allocates nothing (a closure per call would allocate on every training step).
/// </para>
/// <para>
/// Scratch is native, 64-byte aligned memory (never moved by the GC, aligned for Vector512 loads), one buffer per
/// (thread, slot). A buffer grows on first use to the largest size requested and is then reused, so a training
/// step allocates nothing after the first.
/// </para>
/// A context serves one caller at a time (its thread-0 scratch belongs to whoever calls the kernels, also outside
/// parallel loops). Generated networks hold <see cref="PassLock"/> for a whole pass, so networks that share a
/// context (such as <see cref="Default"/>) are correct and simply take turns; give each a context of its own to run
/// them in parallel. Kernels never nest parallel loops.
/// </summary>
public sealed unsafe class CpuContext : IDisposable
{
    private static readonly int SlotCount = Enum.GetValues<ScratchSlot>().Length;
    private static CpuContext? s_default;

    /// <summary>A process-wide context using every logical processor.</summary>
    public static CpuContext Default
    {
        get
        {
            CpuContext? existing = Volatile.Read(ref s_default);
            if (existing is not null) return existing;
            var created = new CpuContext(Environment.ProcessorCount);
            CpuContext? winner = Interlocked.CompareExchange(ref s_default, created, null);
            if (winner is null) return created;
            created.Dispose();
            return winner;
        }
    }

    private readonly float*[] _scratch;
    private readonly long[] _scratchLength;
    private readonly Worker[] _workers;
    private readonly object _runLock = new();

    // The job being run: body(state, item, threadIndex) for item in [0, _jobCount).
    private delegate*<void*, int, int, void> _jobBody;
    private void* _jobState;
    private int _jobCount;
    private int _nextItem;
    private int _pendingWorkers;
    private Exception? _jobError;
    private bool _disposed;

    /// <summary>
    /// The most threads a context may have: four per logical processor, at least 64. The kernels gain nothing
    /// beyond the processors, and an absurd count would exhaust the operating system's threads.
    /// </summary>
    public static int MaxThreads => Math.Max(64, 4 * Environment.ProcessorCount);

    /// <param name="threads">Threads the kernels may use (the caller's thread counts as one). At least 1, at most <see cref="MaxThreads"/>.</param>
    public CpuContext(int threads)
    {
        if (threads < 1) throw new ArgumentOutOfRangeException(nameof(threads), threads, "A CpuContext needs at least one thread.");
        if (threads > MaxThreads)
            throw new ArgumentOutOfRangeException(nameof(threads), threads, $"A CpuContext may have at most {MaxThreads} threads (four per logical processor, at least 64); {threads} asked for.");
        Threads = threads;
        _scratch = new float*[threads * SlotCount];
        _scratchLength = new long[threads * SlotCount];
        _workers = new Worker[threads - 1];
        for (int i = 0; i < _workers.Length; i++) _workers[i] = new Worker(this, i + 1);
    }

    /// <summary>Threads the kernels use, the calling thread included.</summary>
    public int Threads { get; }

    /// <summary>
    /// The convolution algorithm for kernel calls that ask for <see cref="Cpu.Conv2dAlgorithm.Auto"/> (all generated code
    /// does): Auto chooses by shape (Winograd F(4x4, 3x3) for wide 3x3 layers and F(2x2, 5x5) for wide 5x5 layers, the
    /// gradients from 64 input channels per group, at large batches, and an inference pass's forward convolutions from
    /// 16 output tiles a group); Im2Col keeps every convolution on im2col + GEMM, e.g. for its accuracy (Winograd's
    /// float32 error is about 12x im2col's, docs/architecture.md) or to compare the two on a whole network. Winograd cannot be forced for every shape here.
    /// </summary>
    public Conv2dAlgorithm Conv2dAlgorithm
    {
        get => _conv2dAlgorithm;
        init => _conv2dAlgorithm = value == Conv2dAlgorithm.Winograd
            ? throw new ArgumentException("A context can choose Auto or Im2Col; Winograd applies to 3x3 and 5x5 stride-1 convolutions only, so it is forced per kernel call.", nameof(value))
            : value;
    }

    private readonly Conv2dAlgorithm _conv2dAlgorithm = Conv2dAlgorithm.Auto;

    /// <summary>Where an im2col forward pass puts its columns, or whether it builds none (the same bits every way; tests compare the layouts).</summary>
    internal ColumnLayout ForwardColumns { get; init; }

    /// <summary>
    /// Held by a caller for a whole sequence of kernel calls (a generated network holds it for a forward or a
    /// training pass) so that concurrent callers sharing this context take turns. Re-entrant: <see cref="For"/>
    /// takes the same lock.
    /// </summary>
    public object PassLock => _runLock;

    /// <summary>Bytes of scratch currently held (all threads and slots).</summary>
    public long ScratchBytes
    {
        get
        {
            long total = 0;
            foreach (long length in _scratchLength) total += length * sizeof(float);
            return total;
        }
    }

    /// <summary>
    /// The scratch buffer of <paramref name="threadIndex"/> for <paramref name="slot"/>, at least
    /// <paramref name="length"/> floats, 64-byte aligned. Contents are unspecified. Valid until the next call for the
    /// same thread and slot with a larger length.
    /// </summary>
    public float* Scratch(int threadIndex, ScratchSlot slot, long length)
    {
        if ((uint)threadIndex >= (uint)Threads) throw new ArgumentOutOfRangeException(nameof(threadIndex));
        int index = threadIndex * SlotCount + (int)slot;
        if (_scratchLength[index] < length)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_scratch[index] != null) NativeMemory.AlignedFree(_scratch[index]);
            _scratch[index] = null;
            _scratchLength[index] = 0;
            // Round up to a whole 4 KiB so that small growth steps do not reallocate repeatedly.
            long rounded = (length + 1023) & ~1023L;
            _scratch[index] = (float*)NativeMemory.AlignedAlloc((nuint)(rounded * sizeof(float)), 64);
            _scratchLength[index] = rounded;
        }
        return _scratch[index];
    }

    /// <summary>
    /// Grows <paramref name="slot"/> to at least <paramref name="length"/> floats for every thread. Called before a
    /// parallel loop whose items take that scratch: which thread runs which item depends on timing (a helper woken
    /// late may run none in the first step), so without it a later step could still grow a buffer.
    /// </summary>
    public void ReserveScratch(ScratchSlot slot, long length)
    {
        for (int t = 0; t < Threads; t++) Scratch(t, slot, length);
    }

    /// <summary>Runs per thread <see cref="ForRuns"/> aims at: enough for the threads to even out.</summary>
    private const int RunsPerThread = 8;

    /// <summary>
    /// As <see cref="For"/>, for many small, even units of work (pooling planes): body(state, unit, threadIndex) for
    /// every unit in [0, units), handed out in runs of consecutive units, about eight runs per thread. Handing out an
    /// item moves a cache line between cores, which takes about as long as pooling a 13x13 plane, so one plane per
    /// item spent more time handing out than pooling.
    /// </summary>
    internal void ForRuns(int units, delegate*<void*, int, int, void> body, void* state)
    {
        int perRun = Math.Max(1, units / (Threads * RunsPerThread));
        if (perRun == 1)
        {
            For(units, body, state);
            return;
        }
        var runs = new RunsJob { Body = body, State = state, Units = units, PerRun = perRun };
        For((units + perRun - 1) / perRun, &RunOfUnits, &runs);
    }

    private struct RunsJob
    {
        public delegate*<void*, int, int, void> Body;
        public void* State;
        public int Units, PerRun;
    }

    private static void RunOfUnits(void* state, int run, int threadIndex)
    {
        ref RunsJob job = ref Unsafe.AsRef<RunsJob>(state);
        int end = Math.Min(job.Units, (run + 1) * job.PerRun);
        for (int unit = run * job.PerRun; unit < end; unit++) job.Body(job.State, unit, threadIndex);
    }

    /// <summary>
    /// Runs body(state, item, threadIndex) for every item in [0, count), spread over the threads (items are handed
    /// out one at a time, so uneven items balance). Returns when all items are done. The state pointer is typically
    /// the address of a struct on the caller's stack holding pinned pointers and sizes.
    /// </summary>
    public void For(int count, delegate*<void*, int, int, void> body, void* state)
    {
        if (count <= 0) return;
        if (Threads == 1 || count == 1)
        {
            for (int i = 0; i < count; i++) body(state, i, 0);
            return;
        }
        lock (_runLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            int helpers = Math.Min(_workers.Length, count - 1);
            _jobBody = body;
            _jobState = state;
            _jobCount = count;
            _nextItem = 0;
            _jobError = null;
            Volatile.Write(ref _pendingWorkers, helpers);
            for (int i = 0; i < helpers; i++) _workers[i].Wake();
            RunItems(0);
            // The helpers finish their last item quickly; spin (yielding now and then) rather than block.
            var spinner = new SpinWait();
            while (Volatile.Read(ref _pendingWorkers) != 0) spinner.SpinOnce(sleep1Threshold: -1);
            _jobBody = null;
            _jobState = null;
            Exception? error = _jobError;
            if (error is not null) throw new AggregateException("A CPU kernel failed on a worker thread.", error);
        }
    }

    private void RunItems(int threadIndex)
    {
        try
        {
            // The job's fields read once: the counter beside them changes hands between the threads on every item,
            // and reading them from its cache line each time would wait for it as well.
            int count = _jobCount;
            delegate*<void*, int, int, void> body = _jobBody;
            void* state = _jobState;
            while (true)
            {
                int item = Interlocked.Increment(ref _nextItem) - 1;
                if (item >= count) break;
                body(state, item, threadIndex);
            }
        }
        catch (Exception e)
        {
            Interlocked.CompareExchange(ref _jobError, e, null);
            Volatile.Write(ref _nextItem, int.MaxValue / 2); // stop handing out items
        }
    }

    public void Dispose()
    {
        lock (_runLock)
        {
            if (_disposed) return;
            _disposed = true;
            foreach (Worker w in _workers) w.Stop();
            for (int i = 0; i < _scratch.Length; i++)
            {
                if (_scratch[i] != null) NativeMemory.AlignedFree(_scratch[i]);
                _scratch[i] = null;
                _scratchLength[i] = 0;
            }
        }
    }

    /// <summary>A background thread that sleeps on its own event and runs items of the current job when woken.</summary>
    private sealed class Worker
    {
        private readonly CpuContext _owner;
        private readonly int _threadIndex;
        // SpinCount: a worker woken soon after its last job (within half a millisecond, docs/architecture.md) never
        // enters the kernel wait.
        private readonly ManualResetEventSlim _wake = new(false, spinCount: 2000);
        private volatile bool _stopping;

        public Worker(CpuContext owner, int threadIndex)
        {
            _owner = owner;
            _threadIndex = threadIndex;
            var thread = new Thread(Loop) { IsBackground = true, Name = $"AlexNetCompiler CPU worker {threadIndex}" };
            thread.Start();
        }

        public void Wake() => _wake.Set();

        public void Stop()
        {
            _stopping = true;
            _wake.Set();
        }

        private void Loop()
        {
            while (true)
            {
                _wake.Wait();
                _wake.Reset();
                if (_stopping) return;
                _owner.RunItems(_threadIndex);
                Interlocked.Decrement(ref _owner._pendingWorkers);
            }
        }
    }
}
