using AlexNetCompiler.Distributed;

namespace AlexNetCompiler.Tests.Distributed;

public sealed class InProcessCommunicatorTests
{
    /// <summary>Generous: only a hang guard, never reached when the ranks behave.</summary>
    private static readonly TimeSpan Patient = TimeSpan.FromMinutes(2);

    /// <summary>Runs body(rank's communicator) on one thread per rank and rethrows the first failure.</summary>
    internal static void OnEveryRank(InProcessCommunicator[] ranks, Action<InProcessCommunicator> body)
    {
        Exception?[] errors = new Exception?[ranks.Length];
        Thread[] threads = ranks.Select((c, r) => new Thread(() =>
        {
            try { body(c); }
            catch (Exception e) { errors[r] = e; }
        })).ToArray();
        foreach (Thread t in threads) t.Start();
        foreach (Thread t in threads) t.Join();
        if (errors.FirstOrDefault(e => e is not null) is { } error) throw new AggregateException(error);
    }

    [Fact]
    public void AllReduceSum_GivesEveryRankTheSumOfAllBuffers_InRankOrder()
    {
        InProcessCommunicator[] ranks = InProcessCommunicator.CreateGroup(3, Patient);
        var results = new float[3][];
        OnEveryRank(ranks, c =>
        {
            // The third elements are 1e8, -1e8 and 1: in rank order (1e8 - 1e8) + 1 = 1, whereas 1e8 + (-1e8 + 1) = 0 in
            // float32 (1 is below half the spacing of floats near 1e8, which is 8).
            float[] buffer = [c.Rank + 1, 10 * (c.Rank + 1), c.Rank switch { 0 => 1e8f, 1 => -1e8f, _ => 1f }];
            PendingSum pending = c.StartAllReduceSum(buffer);
            pending.Wait();
            Assert.True(pending.IsCompleted);
            results[c.Rank] = buffer;
        });
        foreach (float[] result in results) Assert.Equal([6f, 60f, 1f], result);
    }

    [Fact]
    public void Broadcast_CopiesTheRootsBuffer_AndSeveralSumsCanBeInFlight()
    {
        InProcessCommunicator[] ranks = InProcessCommunicator.CreateGroup(2, Patient);
        var results = new float[2][];
        OnEveryRank(ranks, c =>
        {
            float[] a = [c.Rank], b = [10 * c.Rank + 1];
            PendingSum first = c.StartAllReduceSum(a), second = c.StartAllReduceSum(b);
            second.Wait();
            first.Wait();
            float[] root = [c.Rank == 1 ? 42f : -1f, c.Rank];
            c.Broadcast(root, root: 1);
            results[c.Rank] = [a[0], b[0], .. root];
        });
        Assert.Equal([1f, 12f, 42f, 1f], results[0]);
        Assert.Equal([1f, 12f, 42f, 1f], results[1]);
    }

    [Fact]
    public void AMissingPeer_IsATimeoutNamingTheCollective_NotAHang()
    {
        // Rank 1 never calls: rank 0's wait must end with the timeout's message. The assertion is on the outcome, not
        // on how long it took.
        InProcessCommunicator[] ranks = InProcessCommunicator.CreateGroup(2, TimeSpan.FromSeconds(1));
        float[] buffer = new float[5];
        var error = Assert.Throws<CommunicatorTimeoutException>(() => ranks[0].StartAllReduceSum(buffer).Wait());
        Assert.Contains("Rank 0 of 2: all-reduce of 5 floats did not complete within 1 s", error.Message);
        Assert.Contains("another rank has died, stalled", error.Message);
    }

    [Fact]
    public void BuffersOfDifferentLengths_AreAnError_OnEveryRank()
    {
        InProcessCommunicator[] ranks = InProcessCommunicator.CreateGroup(2, Patient);
        var error = Assert.Throws<AggregateException>(() => OnEveryRank(ranks, c => c.AllReduceSum(new float[3 + c.Rank])));
        Assert.Contains("rank 0 gave 3 floats, rank 1 4", error.InnerException!.Message);
    }

    [Fact]
    public void OneRank_LeavesBuffersAsTheyAre()
    {
        using InProcessCommunicator single = InProcessCommunicator.Single();
        float[] buffer = [1.5f, -2f];
        single.AllReduceSum(buffer);
        single.Broadcast(buffer, root: 0);
        Assert.Equal((0, 1), (single.Rank, single.Size));
        Assert.Equal([1.5f, -2f], buffer);
    }
}
