using AlexNetCompiler.Cpu;

namespace AlexNetCompiler.Tests.Cpu;

public unsafe class GemmTests
{
    public static TheoryData<int, int, int, bool, bool> Shapes()
    {
        var data = new TheoryData<int, int, int, bool, bool>();
        // Odd sizes around the micro-tile (6 x 32) and the cache blocks (KC 256, MC 120), all operand layouts.
        (int M, int N, int K)[] sizes = [(1, 1, 1), (5, 31, 7), (6, 32, 256), (7, 33, 257), (13, 70, 300), (121, 65, 19), (64, 3, 513), (2, 100, 1), (125, 40, 300)];
        foreach (var (m, n, k) in sizes)
            foreach (bool ta in new[] { false, true })
                foreach (bool tb in new[] { false, true })
                    data.Add(m, n, k, ta, tb);
        return data;
    }

    public static IEnumerable<GemmKernel> AvailableKernels()
    {
        yield return GemmKernel.Scalar;
        if (System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated && System.Runtime.Intrinsics.X86.Fma.IsSupported) yield return GemmKernel.Vector256;
        if (System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated && System.Runtime.Intrinsics.X86.Avx512F.IsSupported) yield return GemmKernel.Vector512;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Matches_naive_triple_loop(int m, int n, int k, bool transA, bool transB)
    {
        float[] a = KernelAssert.Random(m * k, 1), b = KernelAssert.Random(k * n, 2);
        float[] rowBias = KernelAssert.Random(m, 3), colBias = KernelAssert.Random(n, 4);
        int lda = transA ? m : k, ldb = transB ? k : n;
        int ldc = n + 3; // a leading dimension wider than N: the padding columns must stay untouched
        foreach (bool accumulate in new[] { false, true })
        foreach (int epilogueKind in new[] { 0, 1, 2 })
        {
            // Naive reference in double: C = (accumulate ? C0 : 0) + op(A) op(B) + biases, ReLU when epilogue 2.
            float[] c0 = KernelAssert.Random(m * ldc, 5);
            var expected = new float[m * ldc];
            var magnitude = new float[m * ldc];
            for (int i = 0; i < m; i++)
            {
                for (int j = 0; j < ldc; j++)
                {
                    if (j >= n) { expected[i * ldc + j] = c0[i * ldc + j]; continue; }
                    double sum = accumulate ? c0[i * ldc + j] : 0, abs = Math.Abs(sum);
                    for (int p = 0; p < k; p++)
                    {
                        double term = (double)(transA ? a[p * lda + i] : a[i * lda + p]) * (transB ? b[j * ldb + p] : b[p * ldb + j]);
                        sum += term;
                        abs += Math.Abs(term);
                    }
                    if (epilogueKind >= 1) { sum += rowBias[i] + colBias[j]; abs += Math.Abs(rowBias[i]) + Math.Abs(colBias[j]); }
                    if (epilogueKind == 2) sum = Math.Max(0, sum);
                    expected[i * ldc + j] = (float)sum;
                    magnitude[i * ldc + j] = (float)abs;
                }
            }
            foreach (GemmKernel kernel in AvailableKernels())
            foreach (int threads in new[] { 1, 3 })
            {
                using var ctx = new CpuContext(threads);
                float[] c = (float[])c0.Clone();
                fixed (float* pa = a, pb = b, pc = c, prb = rowBias, pcb = colBias)
                {
                    var epilogue = epilogueKind == 0 ? GemmEpilogue.None : new GemmEpilogue(prb, pcb, epilogueKind == 2);
                    // threads = 3 splits the larger shapes into uneven parts (13 x 70 x 300 splits M).
                    Gemm.Multiply(m, n, k, pa, lda, transA, pb, ldb, transB, pc, ldc, accumulate, epilogue, ctx, kernel: kernel);
                }
                // Roundings per element: one per FMA in a K block (<= 256), one per K block added to C, plus
                // the accumulate add and the two bias adds.
                int roundings = Math.Min(k, Gemm.KC) + (k + Gemm.KC - 1) / Gemm.KC + 3;
                KernelAssert.WithinSummationBound(expected, c, magnitude, roundings,
                    $"GEMM {kernel} threads={threads} M={m} N={n} K={k} transA={transA} transB={transB} accumulate={accumulate} epilogue={epilogueKind}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Packed_A_gives_the_same_bits_as_packing_per_product(int m, int n, int k, bool transA, bool transB)
    {
        // PackWhole writes the slivers the loop nest would pack block by block, so the products are the same bits.
        // The shapes cover several K blocks with a short last one (K 257, 300, 513), several M blocks (M 121), and both
        // (125 x 300). The packed buffer has a float past its length that must stay untouched.
        float[] a = KernelAssert.Random(m * k, 11), b = KernelAssert.Random(k * n, 12), colBias = KernelAssert.Random(n, 13);
        int lda = transA ? m : k, ldb = transB ? k : n;
        var packed = new float[Gemm.PackedLength(m, k) + 1];
        packed[^1] = 12345f;
        fixed (float* pa = a, pp = packed) Gemm.PackWhole(m, k, pa, lda, transA, pp);
        Assert.Equal(12345f, packed[^1]);
        foreach (GemmKernel kernel in AvailableKernels())
        foreach (bool accumulate in new[] { false, true })
        {
            using var ctx = new CpuContext(1);
            float[] expected = KernelAssert.Random(m * n, 14), actual = (float[])expected.Clone();
            fixed (float* pa = a, pb = b, pe = expected, pc = actual, pbias = colBias, pp = packed)
            {
                var epilogue = new GemmEpilogue(null, pbias, true);
                Gemm.Multiply(m, n, k, pa, lda, transA, pb, ldb, transB, pe, n, accumulate, epilogue, ctx, threadIndex: 0, kernel: kernel);
                Gemm.MultiplyPacked(m, n, k, pp, pb, ldb, transB, pc, n, accumulate, epilogue, ctx, threadIndex: 0, kernel: kernel);
            }
            Assert.Equal(expected, actual);
        }
    }

    [Theory]
    [InlineData(1, 5, 7)]       // K shorter than a vector: only the scalar tail
    [InlineData(3, 9, 1100)]    // K over two chunks of 512 and a shorter one, then a tail of 12; pairs of A rows, an odd one; a ragged eight of B rows
    [InlineData(16, 70, 2048)]  // whole chunks; fours of A rows; items of 64 B rows (sixes, the last four) and a ragged last item
    [InlineData(24, 13, 531)]   // six fours of A rows, the most an item keeps at once
    [InlineData(30, 4, 600)]    // past them: a second pass over B's rows, for the last 6 rows (a four and a two)
    [InlineData(27, 11, 300)]   // a second pass of 3 rows: a four with one row repeated
    public void Row_dot_products_match_naive_sums_and_do_not_depend_on_the_other_rows(int m, int n, int k)
    {
        float[] a = KernelAssert.Random(m * k, 21), b = KernelAssert.Random(n * k, 22), bias = KernelAssert.Random(n, 23);
        var expected = new float[m * n];
        var magnitude = new float[m * n];
        for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
        {
            double sum = bias[j], abs = Math.Abs(bias[j]);
            for (int p = 0; p < k; p++) { double t = (double)a[i * k + p] * b[j * k + p]; sum += t; abs += Math.Abs(t); }
            expected[i * n + j] = (float)Math.Max(0, sum);
            magnitude[i * n + j] = (float)abs;
        }
        foreach (int threads in new[] { 1, 3 })
        {
            using var ctx = new CpuContext(threads);
            var c = new float[m * n];
            fixed (float* pa = a, pb = b, pc = c, pbias = bias)
                Gemm.MultiplyRowsByRows(m, n, k, pa, k, pb, k, pc, n, new GemmEpilogue(null, pbias, true), ctx);
            // Roundings per element: k / 16 products per lane (k / 8 with Vector256), 4 in the horizontal sum, the tail, the bias.
            KernelAssert.WithinSummationBound(expected, c, magnitude, k / 8 + k % 16 + 6, $"row dot M={m} N={n} K={k} threads={threads}");

            // Row i of C is computed by the same operations whether A has one row or m: a sample's output does not
            // depend on the batch it is in.
            foreach (int i in new[] { 0, m / 3, 2 * m / 3, m - 1 }.Distinct())
            {
                var single = new float[n];
                fixed (float* pa = a, pb = b, ps = single, pbias = bias)
                    Gemm.MultiplyRowsByRows(1, n, k, pa + i * k, k, pb, k, ps, n, new GemmEpilogue(null, pbias, true), ctx);
                Assert.Equal(c.AsSpan(i * n, n).ToArray(), single);
            }
        }
    }

    [Fact]
    public void Row_dot_products_read_A_at_its_row_stride()
    {
        // A's rows 1100 + 9 floats apart, the 9 between them NaN: the chunks copied side by side must take only the
        // rows' own floats, so the product is the same bits as with the rows packed together.
        const int m = 16, n = 9, k = 1100, lda = k + 9;
        float[] a = KernelAssert.Random(m * k, 31), b = KernelAssert.Random(n * k, 32);
        var strided = new float[m * lda];
        Array.Fill(strided, float.NaN);
        for (int i = 0; i < m; i++) a.AsSpan(i * k, k).CopyTo(strided.AsSpan(i * lda, k));
        using var ctx = new CpuContext(2);
        float[] packed = new float[m * n], apart = new float[m * n];
        fixed (float* pa = a, ps = strided, pb = b, pc = packed, pd = apart)
        {
            Gemm.MultiplyRowsByRows(m, n, k, pa, k, pb, k, pc, n, GemmEpilogue.None, ctx);
            Gemm.MultiplyRowsByRows(m, n, k, ps, lda, pb, k, pd, n, GemmEpilogue.None, ctx);
        }
        Assert.All(apart, value => Assert.True(float.IsFinite(value)));
        Assert.Equal(packed, apart);
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    [InlineData(7, 3100, 20, false, false)]   // N past one block of NC columns: the second block's panels
    [InlineData(30, 3100, 270, true, true)]   // and over two K blocks; three threads split the columns
    public void Packed_B_gives_the_same_bits_as_packing_per_product(int m, int n, int k, bool transA, bool transB)
    {
        // PackBRows writes the panels each product would pack block by block, so the products are the same bits on any
        // number of threads, whether they split the rows of C or its columns. The rows are packed in two parts, the
        // later ones first, as threads might, into a buffer with a float past its length that must stay untouched.
        float[] a = KernelAssert.Random(m * k, 51), b = KernelAssert.Random(k * n, 52), rowBias = KernelAssert.Random(m, 53);
        int lda = transA ? m : k, ldb = transB ? k : n;
        var rows = new float[k * n];
        for (int p = 0; p < k; p++)
            for (int j = 0; j < n; j++) rows[p * n + j] = transB ? b[j * k + p] : b[p * n + j];
        var packed = new float[Gemm.PackedBLength(n, k) + 1];
        packed[^1] = 12345f;
        int half = k / 2;
        fixed (float* pr = rows, pp = packed)
        {
            Gemm.PackBRows(n, k, half, k - half, pr + half * n, n, pp);
            Gemm.PackBRows(n, k, 0, half, pr, n, pp);
        }
        Assert.Equal(12345f, packed[^1]);
        foreach (GemmKernel kernel in AvailableKernels())
        foreach (bool accumulate in new[] { false, true })
        foreach (int threads in new[] { 1, 3 })
        {
            using var ctx = new CpuContext(threads);
            float[] expected = KernelAssert.Random(m * n, 54), actual = (float[])expected.Clone();
            fixed (float* pa = a, pb = b, pe = expected, pc = actual, pbias = rowBias, pp = packed)
            {
                var epilogue = new GemmEpilogue(pbias, null, true);
                Gemm.Multiply(m, n, k, pa, lda, transA, pb, ldb, transB, pe, n, accumulate, epilogue, ctx, kernel: kernel);
                Gemm.MultiplyPackedB(m, n, k, pa, lda, transA, pp, pc, n, accumulate, epilogue, ctx, kernel: kernel);
            }
            Assert.True(expected.AsSpan().SequenceEqual(actual), $"GEMM {kernel} threads={threads} M={m} N={n} K={k} accumulate={accumulate}");
        }
    }

    [Fact]
    public void Packing_rows_of_B_that_do_not_exist_is_refused()
    {
        var packed = new float[Gemm.PackedBLength(8, 4)];
        var rows = new float[2 * 8];
        var error = Assert.Throws<ArgumentOutOfRangeException>(() =>
        {
            fixed (float* pr = rows, pp = packed) Gemm.PackBRows(8, 4, 3, 2, pr, 8, pp);
        });
        Assert.Contains("K=4", error.Message);
    }

    [Fact]
    public void Packed_A_product_refuses_to_spread_over_threads()
    {
        using var ctx = new CpuContext(2);
        var packed = new float[Gemm.PackedLength(6, 4)];
        var b = new float[4 * 8];
        var c = new float[6 * 8];
        var error = Assert.Throws<ArgumentOutOfRangeException>(() =>
        {
            fixed (float* pp = packed, pb = b, pc = c)
                Gemm.MultiplyPacked(6, 8, 4, pp, pb, 8, false, pc, 8, false, GemmEpilogue.None, ctx, threadIndex: -1);
        });
        Assert.Contains("calling thread", error.Message);
    }

    [Fact]
    public void Large_product_split_over_threads_matches_single_thread_exactly()
    {
        // Threads split C into disjoint column (or row) ranges and each element is summed in the same order,
        // so the threaded result must equal the single-threaded one bit for bit.
        foreach (var (m, n, k) in new[] { (96, 3025, 363), (1200, 50, 128), (17, 4100, 40) })
        {
            float[] a = KernelAssert.Random(m * k, 6), b = KernelAssert.Random(k * n, 7);
            float[] c1 = new float[m * n], c2 = new float[m * n];
            using var one = new CpuContext(1);
            using var many = new CpuContext(3);
            fixed (float* pa = a, pb = b, p1 = c1, p2 = c2)
            {
                Gemm.Multiply(m, n, k, pa, k, false, pb, n, false, p1, n, false, GemmEpilogue.None, one);
                Gemm.Multiply(m, n, k, pa, k, false, pb, n, false, p2, n, false, GemmEpilogue.None, many);
            }
            Assert.Equal(c1, c2);
        }
    }

    [Fact]
    public void Zero_depth_overwrites_with_epilogue_only()
    {
        float[] c = [5f, -5f, 7f, -7f];
        float[] bias = [1f, -2f];
        using var ctx = new CpuContext(1);
        fixed (float* pc = c, pb = bias)
            Gemm.Multiply(2, 2, 0, null, 0, false, null, 0, false, pc, 2, false, new GemmEpilogue(pb, null, true), ctx);
        Assert.Equal(new[] { 1f, 1f, 0f, 0f }, c);
    }

    [Fact]
    public void Negative_size_is_rejected()
    {
        using var ctx = new CpuContext(1);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Gemm.Multiply(-1, 2, 2, null, 0, false, null, 0, false, null, 0, false, GemmEpilogue.None, ctx));
        Assert.Contains("M=-1", e.Message);
    }
}
