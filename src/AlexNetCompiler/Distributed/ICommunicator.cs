namespace AlexNetCompiler.Distributed;

/// <summary>
/// The ranks of a data-parallel job and the collectives training needs: an in-place sum of float buffers over all
/// ranks (started without blocking, so several buffers can be in flight at once) and a broadcast from one rank.
/// Every rank must call the same collectives in the same order. Waits are bounded by <see cref="Timeout"/>: a peer
/// that died or stalled becomes a <see cref="CommunicatorTimeoutException"/> naming the collective, not a hang.
/// </summary>
public interface ICommunicator : IDisposable
{
    /// <summary>This process's rank, 0 to <see cref="Size"/> - 1. Rank 0 writes checkpoints and logs.</summary>
    int Rank { get; }

    /// <summary>How many ranks take part.</summary>
    int Size { get; }

    /// <summary>One line for the user: the transport and the job's shape.</summary>
    string Description { get; }

    /// <summary>How long one collective may wait for the other ranks.</summary>
    TimeSpan Timeout { get; }

    /// <summary>
    /// Starts replacing <paramref name="buffer"/> with the element-wise sum of every rank's buffer (same length on
    /// every rank). The buffer must not be read or written until the returned reduction's <see cref="PendingSum.Wait"/>
    /// has returned.
    /// </summary>
    PendingSum StartAllReduceSum(Memory<float> buffer);

    /// <summary>Copies rank <paramref name="root"/>'s buffer into every other rank's (same length on every rank).</summary>
    void Broadcast(Memory<float> buffer, int root);
}

/// <summary>An all-reduce in flight; <see cref="Wait"/> completes it (idempotent).</summary>
public abstract class PendingSum
{
    /// <summary>Whether the sum has arrived, without waiting (drives the transport's progress where it needs that).</summary>
    public abstract bool IsCompleted { get; }

    /// <summary>Blocks until the sum is in the buffer; throws <see cref="CommunicatorTimeoutException"/> after the communicator's timeout.</summary>
    public abstract void Wait();
}

/// <summary>A collective did not complete in time: another rank died, stalled or called a different collective.</summary>
public sealed class CommunicatorTimeoutException(string message) : Exception(message);

/// <summary>Helpers over <see cref="ICommunicator"/>.</summary>
public static class CommunicatorExtensions
{
    /// <summary>Sums <paramref name="buffer"/> over all ranks in place and waits for the result.</summary>
    public static void AllReduceSum(this ICommunicator communicator, Memory<float> buffer)
    {
        ArgumentNullException.ThrowIfNull(communicator);
        communicator.StartAllReduceSum(buffer).Wait();
    }

    /// <summary>The message of a timeout, the same for every transport.</summary>
    internal static string TimeoutMessage(ICommunicator communicator, string collective, int length) =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"Rank {communicator.Rank} of {communicator.Size}: {collective} of {length} floats did not complete within " +
        $"{communicator.Timeout.TotalSeconds:0.#} s; another rank has died, stalled or is running different settings (see its output).");
}
