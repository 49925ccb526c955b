using System.Diagnostics;
using System.Globalization;
using AlexNetCompiler.Cpu;
using AlexNetCompiler.Distributed;
using AlexNetCompiler.Training;

namespace AlexNetCompiler.Bench;

/// <summary>
/// Data-parallel training and its all-reduce, measured under mpirun (alone, a process is a job of one rank):
/// <c>distributed</c> times the training step of a network over a global batch split across the ranks, and
/// <c>allreduce</c> the bucketed sum of buffers of the sizes given. Rank 0 prints; every rank does the same work.
/// </summary>
internal static class DistributedBench
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(10);

    public static int Train(BenchNetwork net, int globalBatch, int threads, int steps)
    {
        using MpiCommunicator mpi = MpiCommunicator.Start(Timeout);
        (int first, int count) = DataParallelEngine.Shard(globalBatch, mpi.Rank, mpi.Size);
        using var cpu = new CpuContext(threads);
        INetwork network = BenchSetup.CreateOurs(net, Math.Max(1, count), cpu);
        var sgd = new Sgd(network.Parameters.Length, BenchSetup.Sgd, cpu);
        using var engine = new DataParallelEngine(network, sgd, mpi);
        engine.CopyStateFromHost();
        float[] images = BenchSetup.Images(net.Descriptor, globalBatch);
        int[] labels = BenchSetup.Labels(net.Descriptor, globalBatch);
        int sample = net.Descriptor.InputLength;
        void Step(int s) => engine.TrainShard(images.AsSpan(first * sample, count * sample), labels.AsSpan(first, count), count, first, globalBatch, (ulong)s);

        for (int s = 0; s < 2; s++) Step(s); // warm-up: first-touch of buffers and scratch
        var clock = Stopwatch.StartNew();
        for (int s = 0; s < steps; s++) Step(s);
        double stepSeconds = clock.Elapsed.TotalSeconds / steps;

        // The step's all-reduce alone: the same buckets of a gradient-sized buffer, as the engine starts them.
        double reduceSeconds = TimeReduce(mpi, new float[network.Gradients.Length], DataParallelEngine.DefaultBucketFloats, Math.Max(3, steps / 2));
        if (mpi.Rank == 0)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{net.Title}: {mpi.Size} rank(s) x {threads} thread(s), global batch {globalBatch}: {globalBatch / stepSeconds:F1} images/s " +
                $"({1000 * stepSeconds:F1} ms per step; all-reduce of {network.Gradients.Length:N0} floats {1000 * reduceSeconds:F2} ms, " +
                $"{100 * reduceSeconds / stepSeconds:F1}% of a step) [{mpi.Library}]"));
        }
        mpi.Finish();
        return 0;
    }

    public static int AllReduce(int[] sizes, int reps)
    {
        using MpiCommunicator mpi = MpiCommunicator.Start(Timeout);
        foreach (int floats in sizes)
        {
            var buffer = new float[floats];
            buffer.AsSpan().Fill(1f);
            double seconds = TimeReduce(mpi, buffer, DataParallelEngine.DefaultBucketFloats, reps);
            // Ring all-reduce moves 2 (N - 1) / N of the buffer through each rank: the "bus bandwidth" it achieved.
            double movedBytes = 2.0 * (mpi.Size - 1) / mpi.Size * floats * sizeof(float);
            if (mpi.Rank == 0)
            {
                string bandwidth = mpi.Size > 1 ? string.Create(CultureInfo.InvariantCulture, $", {movedBytes / seconds / 1e9:F2} GB/s per rank") : "";
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"all-reduce {mpi.Size} ranks, {floats,11:N0} floats ({floats * 4.0 / (1 << 20),7:F1} MiB): {1000 * seconds,9:F2} ms{bandwidth}"));
            }
        }
        mpi.Finish();
        return 0;
    }

    /// <summary>Median over reps of one bucketed all-reduce of the buffer (after one untimed), the same on every rank.</summary>
    private static double TimeReduce(ICommunicator communicator, float[] buffer, int bucketFloats, int reps)
    {
        (int Offset, int Length)[] buckets = DataParallelEngine.Buckets(buffer.Length, bucketFloats);
        var pending = new PendingSum[buckets.Length];
        var times = new double[reps];
        for (int r = -1; r < reps; r++)
        {
            var clock = Stopwatch.StartNew();
            for (int b = 0; b < buckets.Length; b++) pending[b] = communicator.StartAllReduceSum(buffer.AsMemory(buckets[b].Offset, buckets[b].Length));
            foreach (PendingSum p in pending) p.Wait();
            if (r >= 0) times[r] = clock.Elapsed.TotalSeconds;
        }
        Array.Sort(times);
        return times[reps / 2];
    }
}
