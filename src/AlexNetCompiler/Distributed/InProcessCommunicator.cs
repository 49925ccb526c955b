namespace AlexNetCompiler.Distributed;

/// <summary>
/// Ranks that are threads of one process, sharing memory: one rank alone (<see cref="Single"/>, where every collective
/// is the identity), or a group of several (<see cref="CreateGroup"/>) for tests and benchmarks of data-parallel training
/// without MPI. A group sums in rank order (rank 0's buffer + rank 1's + ...), the same on every rank, so its result
/// is deterministic.
/// </summary>
public sealed class InProcessCommunicator : ICommunicator
{
    private readonly Group _group;

    private InProcessCommunicator(Group group, int rank)
    {
        _group = group;
        Rank = rank;
    }

    /// <summary>One rank: sums and broadcasts leave the buffer as it is.</summary>
    public static InProcessCommunicator Single() => CreateGroup(1, System.Threading.Timeout.InfiniteTimeSpan)[0];

    /// <summary>
    /// <paramref name="size"/> ranks; give each to its own thread (the collectives block until every rank has called
    /// them). <paramref name="timeout"/> bounds each wait.
    /// </summary>
    public static InProcessCommunicator[] CreateGroup(int size, TimeSpan timeout)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        var group = new Group(size, timeout);
        return Enumerable.Range(0, size).Select(rank => new InProcessCommunicator(group, rank)).ToArray();
    }

    public int Rank { get; }
    public int Size => _group.Size;
    public string Description => Size == 1 ? "one process" : $"{Size} ranks in one process";
    public TimeSpan Timeout => _group.Timeout;

    /// <summary>Number of collectives this rank has called (each rank's count must agree; they are matched by it).</summary>
    private long _sequence;

    public PendingSum StartAllReduceSum(Memory<float> buffer)
    {
        if (Size == 1) return Completed.Instance;
        Operation operation = _group.Join(_sequence++, Rank, buffer, root: -1, "all-reduce", this);
        return new Pending(operation, this, buffer.Length);
    }

    public void Broadcast(Memory<float> buffer, int root)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(root);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(root, Size);
        if (Size == 1) return;
        Operation operation = _group.Join(_sequence++, Rank, buffer, root, "broadcast", this);
        new Pending(operation, this, buffer.Length).Wait();
    }

    public void Dispose() { }

    private sealed class Completed : PendingSum
    {
        public static readonly Completed Instance = new();
        public override bool IsCompleted => true;
        public override void Wait() { }
    }

    private sealed class Pending(Operation operation, InProcessCommunicator owner, int length) : PendingSum
    {
        public override bool IsCompleted => operation.Done.IsSet;

        public override void Wait()
        {
            if (!operation.Done.Wait(owner.Timeout))
                throw new CommunicatorTimeoutException(CommunicatorExtensions.TimeoutMessage(owner, operation.Kind, length));
            if (operation.Error is { } error) throw new InvalidOperationException(error);
        }
    }

    /// <summary>One collective: the buffers of the ranks that have joined it so far.</summary>
    private sealed class Operation(int size, string kind, int root)
    {
        public readonly Memory<float>[] Buffers = new Memory<float>[size];
        public readonly ManualResetEventSlim Done = new();
        public readonly string Kind = kind;
        public readonly int Root = root;
        public int Joined;
        public string? Error;
    }

    private sealed class Group(int size, TimeSpan timeout)
    {
        private readonly Dictionary<long, Operation> _open = new();
        public int Size { get; } = size;
        public TimeSpan Timeout { get; } = timeout;

        public Operation Join(long sequence, int rank, Memory<float> buffer, int root, string kind, InProcessCommunicator owner)
        {
            Operation operation;
            lock (_open)
            {
                if (!_open.TryGetValue(sequence, out operation!))
                {
                    operation = new Operation(Size, kind, root);
                    _open[sequence] = operation;
                }
                operation.Buffers[rank] = buffer;
                if (++operation.Joined < Size) return operation;
                _open.Remove(sequence);
            }
            // The last rank to arrive does the work; the others are blocked in Wait until Done is set.
            operation.Error = Check(operation, kind, root);
            if (operation.Error is null)
            {
                if (root < 0) Sum(operation.Buffers);
                else for (int r = 0; r < Size; r++) if (r != root) operation.Buffers[root].Span.CopyTo(operation.Buffers[r].Span);
            }
            operation.Done.Set();
            return operation;
        }

        private string? Check(Operation operation, string kind, int root)
        {
            if (operation.Kind != kind || operation.Root != root)
                return $"The ranks called different collectives at the same point ({operation.Kind} and {kind}).";
            int length = operation.Buffers[0].Length;
            for (int r = 1; r < Size; r++)
                if (operation.Buffers[r].Length != length)
                    return $"{kind}: rank 0 gave {length} floats, rank {r} {operation.Buffers[r].Length}.";
            return null;
        }

        // Rank order, left to right: ((b0 + b1) + b2) + ..., then the total into every rank's buffer.
        private void Sum(Memory<float>[] buffers)
        {
            Span<float> total = buffers[0].Span;
            for (int r = 1; r < Size; r++)
            {
                Span<float> addend = buffers[r].Span;
                for (int i = 0; i < total.Length; i++) total[i] += addend[i];
            }
            for (int r = 1; r < Size; r++) total.CopyTo(buffers[r].Span);
        }
    }
}
