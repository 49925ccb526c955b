using AlexNetCompiler.Cpu;

namespace AlexNetCompiler.Tests.Cpu;

[CollectionDefinition(nameof(AllocationSensitive), DisableParallelization = true)]
public sealed class AllocationSensitive;

[Collection(nameof(AllocationSensitive))]
public unsafe class CpuContextTests
{
    private struct Counter
    {
        public int* Hits;
        public int* ThreadOfItem;
    }

    private static void Visit(void* state, int item, int threadIndex)
    {
        ref Counter c = ref *(Counter*)state;
        Interlocked.Increment(ref c.Hits[item]);
        c.ThreadOfItem[item] = threadIndex;
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 1)]
    [InlineData(2, 1000)]
    [InlineData(3, 7)]
    public void For_runs_every_item_exactly_once(int threads, int count)
    {
        using var ctx = new CpuContext(threads);
        var hits = new int[count];
        var owner = new int[count];
        fixed (int* h = hits, o = owner)
        {
            var state = new Counter { Hits = h, ThreadOfItem = o };
            for (int round = 0; round < 20; round++) ctx.For(count, &Visit, &state);
        }
        Assert.All(hits, x => Assert.Equal(20, x));
        Assert.All(owner, t => Assert.InRange(t, 0, threads - 1));
    }

    private static void Throw(void* state, int item, int threadIndex)
    {
        if (item == 3) throw new InvalidOperationException("item 3 failed");
    }

    [Fact]
    public void A_failing_item_surfaces_and_the_context_stays_usable()
    {
        using var ctx = new CpuContext(2);
        var e = Assert.Throws<AggregateException>(() => ctx.For(10, &Throw, null));
        Assert.Contains("item 3 failed", e.InnerException!.Message);
        For_runs_every_item_exactly_once(2, 5);
        var hits = new int[4];
        var owner = new int[4];
        fixed (int* h = hits, o = owner)
        {
            var state = new Counter { Hits = h, ThreadOfItem = o };
            ctx.For(4, &Visit, &state);
        }
        Assert.All(hits, x => Assert.Equal(1, x));
    }

    [Fact]
    public void Scratch_grows_once_then_is_reused()
    {
        using var ctx = new CpuContext(2);
        float* first = ctx.Scratch(1, ScratchSlot.Columns, 5000);
        first[4999] = 1f;
        Assert.True(first == ctx.Scratch(1, ScratchSlot.Columns, 100));
        Assert.True(((nint)first & 63) == 0, "scratch must be 64-byte aligned for Vector512");
        long held = ctx.ScratchBytes;
        ctx.Scratch(1, ScratchSlot.Columns, 4000);
        Assert.Equal(held, ctx.ScratchBytes);
        Assert.Throws<ArgumentOutOfRangeException>(() => ctx.Scratch(2, ScratchSlot.Columns, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new CpuContext(0));
    }

    [Fact]
    public void A_repeated_conv_and_dense_step_allocates_nothing_after_the_first()
    {
        // A small training-like sequence: conv forward/backward, pool, LRN, dense forward/backward.
        var conv = new Conv2dGeometry(3, 17, 17, 8, 9, 9, 3, 3, 2, 2, 1, 1, 1);
        var pool = new PoolGeometry(8, 9, 9, 4, 4, 3, 3, 2, 2, 0, 0);
        var lrn = new LrnGeometry(8, 9, 9, 5, 1e-4f, 0.75f, 2f);
        int batch = 8; // two samples per conv item (a 9x9 plane), so the sample-block scratch is reserved too
        float[] x = KernelAssert.Random(batch * conv.InputLength, 1), w = KernelAssert.Random(conv.WeightLength, 2), b = new float[8];
        float[] y = new float[batch * conv.OutputLength], dy = KernelAssert.Random(y.Length, 3), dx = new float[x.Length], dw = new float[w.Length], db = new float[8];
        float[] l = new float[y.Length], s = new float[y.Length], p = new float[batch * pool.OutputLength];
        int[] arg = new int[p.Length];
        float[] fw = KernelAssert.Random(10 * 128, 4), fo = new float[batch * 10], fdw = new float[fw.Length], fdx = new float[p.Length];
        using var ctx = new CpuContext(2);
        void Step()
        {
            Conv2dKernels.Forward(conv, batch, x, w, b, y, true, ctx);
            LrnKernels.Forward(lrn, batch, y, l, s, ctx);
            MaxPoolKernels.Forward(pool, batch, l, p, arg, ctx);
            DenseKernels.Forward(batch, 128, 10, p, fw, default, fo, false, ctx);
            DenseKernels.Backward(batch, 128, 10, p, fw, fo, fdx, fdw, default, ctx);
            MaxPoolKernels.Backward(pool, batch, fdx, arg, l, ctx);
            LrnKernels.Backward(lrn, batch, y, l, s, dy, y, ctx);
            Conv2dKernels.Backward(conv, batch, x, w, dy, dx, dw, db, ctx);
        }
        Step();
        // Every thread's scratch is reserved before each parallel loop, so it does not matter which thread ran which
        // item in the first step (on a loaded machine a helper may run none).
        long scratch = ctx.ScratchBytes;
        // The calling thread's allocations: the test host's own threads allocate at any time, and the kernels run
        // most of their work on this thread (worker 0) through the same code as the helpers.
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 3; i++) Step();
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(scratch, ctx.ScratchBytes);
        // The test itself allocates nothing in Step (the local function captures by reference into a display
        // class created once); anything here comes from the kernels.
        Assert.True(allocated < 1024, $"{allocated} bytes allocated by 3 steps after the first");
    }
}
