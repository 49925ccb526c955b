using AlexNetCompiler.Data;
using FashionMnist.App;

namespace AlexNetCompiler.Tests.Data;

/// <summary>
/// The paper's input pipeline (Krizhevsky et al. 2012, section 4.1), each transform against its definition:
/// crops, mirrors, the five and ten views, colour statistics, the eigen decomposition and PCA lighting.
/// </summary>
public sealed class ImagePipelineTests
{
    /// <summary>
    /// Converting a byte b to b * (1f / 255f) rounds twice (the reciprocal and the product), each at most half an ulp
    /// relative, so the result is within 2^-23 ≈ 1.2e-7 of b / 255 for values up to 1; 2e-7 leaves room.
    /// </summary>
    private const float ByteScaleTolerance = 2e-7f;

    private static byte[] RandomImage(int side, int seed)
    {
        var pixels = new byte[3 * side * side];
        new Random(seed).NextBytes(pixels);
        return pixels;
    }

    /// <summary>Statistics that make the normalisation the identity (mean 0, std 1) with the given PCA.</summary>
    private static ImageStatistics Identity(double[] eigenValues, double[] eigenVectors) =>
        new([0, 0, 0], [1, 1, 1], new double[9], eigenValues, eigenVectors);

    // Columns: (1, 1, 1)/√3, (1, -1, 0)/√2, (1, 1, -2)/√6, an orthonormal basis not aligned with R, G, B.
    private static readonly double[] Basis =
    [
        1 / Math.Sqrt(3), 1 / Math.Sqrt(2), 1 / Math.Sqrt(6),
        1 / Math.Sqrt(3), -1 / Math.Sqrt(2), 1 / Math.Sqrt(6),
        1 / Math.Sqrt(3), 0, -2 / Math.Sqrt(6),
    ];

    private static readonly double[] BasisEigenValues = [0.04, 0.01, 0.0025];

    [Fact]
    public void Crop_IsTheWindowOfTheImage_ScaledToUnitRange()
    {
        const int side = 9, size = 5, top = 3, left = 2;
        byte[] image = RandomImage(side, 1);
        var crop = new float[3 * size * size];

        ImageTransforms.Crop(image, 3, side, top, left, size, mirror: false, crop);

        for (int c = 0; c < 3; c++)
            for (int y = 0; y < size; y++)
                for (int x = 0; x < size; x++)
                    Assert.Equal(image[c * side * side + (top + y) * side + left + x] / 255.0, crop[(c * size + y) * size + x], ByteScaleTolerance);
    }

    [Fact]
    public void MirroredCrop_ReversesEveryRowOfTheCrop()
    {
        const int side = 9, size = 6;
        byte[] image = RandomImage(side, 2);
        float[] plain = new float[3 * size * size], mirrored = new float[3 * size * size];
        ImageTransforms.Crop(image, 3, side, 1, 3, size, mirror: false, plain);
        ImageTransforms.Crop(image, 3, side, 1, 3, size, mirror: true, mirrored);

        for (int row = 0; row < 3 * size; row++)
            Assert.Equal(plain.AsSpan(row * size, size).ToArray().Reverse(), mirrored.AsSpan(row * size, size).ToArray());
        Assert.NotEqual(plain, mirrored);
    }

    [Fact]
    public void Crop_OutsideTheImage_IsRefused()
    {
        byte[] image = RandomImage(8, 3);
        var crop = new float[3 * 5 * 5];
        Assert.Throws<ArgumentOutOfRangeException>(() => ImageTransforms.Crop(image, 3, 8, 4, 0, 5, false, crop));
        Assert.Throws<ArgumentOutOfRangeException>(() => ImageTransforms.Crop(image, 3, 8, 0, -1, 5, false, crop));
    }

    [Fact]
    public void RandomCorners_StayInsideTheImage_AndReachEveryPosition()
    {
        const int side = 12, size = 9;
        var random = new SplitMixRandom(5);
        var tops = new HashSet<int>();
        var lefts = new HashSet<int>();
        for (int i = 0; i < 1000; i++)
        {
            (int top, int left) = ImageTransforms.RandomCorner(side, size, ref random);
            Assert.InRange(top, 0, side - size);
            Assert.InRange(left, 0, side - size);
            tops.Add(top);
            lefts.Add(left);
        }
        Assert.Equal([0, 1, 2, 3], tops.Order());
        Assert.Equal([0, 1, 2, 3], lefts.Order());
    }

    [Fact]
    public void FiveViews_AreTheCornersAndTheCentre()
    {
        // 256 - 227 = 29; the centre starts at 29 / 2 = 14.
        Assert.Equal([(0, 0), (0, 29), (29, 0), (29, 29), (14, 14)], ImageTransforms.FiveViewCorners(256, 227));
        Assert.Equal([(0, 0), (0, 32), (32, 0), (32, 32), (16, 16)], ImageTransforms.FiveViewCorners(256, 224));
    }

    [Fact]
    public void TenViews_AreTheFiveCropsThenTheirMirrors_Normalised()
    {
        const int side = 10, size = 7, length = 3 * size * size;
        byte[] image = RandomImage(side, 4);
        var statistics = new ImageStatistics([0.5f, 0.4f, 0.3f], [0.2f, 0.25f, 0.5f], new double[9], [0, 0, 0], [1, 0, 0, 0, 1, 0, 0, 0, 1]);
        var pipeline = new ImagePipeline(new ImagePipelineOptions { Side = side, CropSize = size, LightingSigma = 0 }, statistics);
        var views = new float[10 * length];

        pipeline.TenViews(image, views);

        (int Top, int Left)[] corners = [(0, 0), (0, 3), (3, 0), (3, 3), (1, 1)];
        for (int v = 0; v < 10; v++)
        {
            (int top, int left) = corners[v % 5];
            bool mirror = v >= 5;
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < size; y++)
                    for (int x = 0; x < size; x++)
                    {
                        int sourceX = left + (mirror ? size - 1 - x : x);
                        double expected = (image[c * side * side + (top + y) * side + sourceX] / 255.0 - statistics.Mean[c]) / statistics.Std[c];
                        // Values up to (1 - 0.3) / 0.2 = 3.5: a few float roundings at that size stay below 1e-6.
                        Assert.Equal(expected, views[v * length + (c * size + y) * size + x], 1e-6);
                    }
        }
        var centre = new float[length];
        pipeline.Centre(image, centre);
        Assert.Equal(views.AsSpan(4 * length, length).ToArray(), centre);
    }

    [Fact]
    public void Statistics_OfKnownImages_AreTheirMeanStdAndCovariance()
    {
        // Two flat 2x2 images: (R, G, B) = (0, 255, 51) and (255, 255, 153), i.e. (0, 1, 0.2) and (1, 1, 0.6).
        const int plane = 4;
        byte[] Flat(byte r, byte g, byte b) => [.. Enumerable.Repeat(r, plane), .. Enumerable.Repeat(g, plane), .. Enumerable.Repeat(b, plane)];

        ImageStatistics s = ImageStatistics.Compute([Flat(0, 255, 51), Flat(255, 255, 153)], plane);

        // Sums of small integers are exact; one division and products in double leave errors near 1e-16.
        const double tolerance = 1e-12;
        Assert.Equal(0.5, s.Mean[0], 1e-7);
        Assert.Equal(1.0, s.Mean[1], 1e-7);
        Assert.Equal(0.4, s.Mean[2], 1e-7);
        Assert.Equal(0.5, s.Std[0], 1e-7);
        Assert.Equal(1e-6, s.Std[1], 1e-12); // a constant channel: the floor that keeps the division finite
        Assert.Equal(0.2, s.Std[2], 1e-7);
        double[] covariance = [0.25, 0, 0.1, 0, 0, 0, 0.1, 0, 0.04];
        for (int i = 0; i < 9; i++) Assert.Equal(covariance[i], s.Covariance[i], tolerance);
        // The R-B block [[0.25, 0.1], [0.1, 0.04]] has determinant 0: eigenvalues 0.29 and 0, the first along (5, 2)/√29.
        Assert.Equal(0.29, s.EigenValues[0], tolerance);
        Assert.Equal(0, s.EigenValues[1], tolerance);
        Assert.Equal(0, s.EigenValues[2], tolerance);
        double[] p = s.Component(0);
        double sign = Math.Sign(p[0]);
        Assert.Equal(5 / Math.Sqrt(29), sign * p[0], tolerance);
        Assert.Equal(0, p[1], tolerance);
        Assert.Equal(2 / Math.Sqrt(29), sign * p[2], tolerance);
    }

    [Fact]
    public void Statistics_OfACachedSet_MatchTheDirectComputation()
    {
        using var temp = new TempFolder();
        string images = Path.Combine(temp.Path, "images");
        for (int i = 0; i < 3; i++) ImageFiles.WriteNoise(Path.Combine(images, i < 2 ? "a" : "b", $"{i}.png"), 6, 6, seed: i);
        using ImageCache cache = ImageCache.Open(ImageFolder.Scan(images), 6, Path.Combine(temp.Path, "cache"), SkiaImageDecoder.Instance);

        ImageStatistics fromSet = ImageStatistics.Compute(ImageSet.All("all", cache));
        ImageStatistics direct = ImageStatistics.Compute(Enumerable.Range(0, 3).Select(i => cache.Pixels(i).ToArray()).ToList(), 36);

        Assert.Equal(direct.Mean, fromSet.Mean);
        Assert.Equal(direct.Covariance, fromSet.Covariance);
        // By hand, the red mean of the cached bytes.
        double red = Enumerable.Range(0, 3).Sum(i => cache.Pixels(i)[..36].ToArray().Sum(b => (double)b)) / (3 * 36) / 255;
        Assert.Equal(red, fromSet.Mean[0], 1e-6);
    }

    [Fact]
    public void SymmetricEigen_RecoversAKnownDecomposition()
    {
        // A = P diag(0.04, 0.01, 0.0025) P^T.
        var a = new double[9];
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
                for (int k = 0; k < 3; k++) a[i * 3 + j] += Basis[i * 3 + k] * BasisEigenValues[k] * Basis[j * 3 + k];

        (double[] values, double[] vectors) = ImageStatistics.SymmetricEigen3(a);

        // Jacobi converges to rounding level; 1e-12 is far above double's 1e-16 and far below the eigenvalues.
        Assert.Equal(BasisEigenValues, values, (x, y) => Math.Abs(x - y) < 1e-12);
        for (int k = 0; k < 3; k++)
        {
            double dot = 0;
            for (int row = 0; row < 3; row++) dot += vectors[row * 3 + k] * Basis[row * 3 + k];
            Assert.Equal(1, Math.Abs(dot), 1e-12); // the same direction, up to sign
        }
    }

    [Fact]
    public void Lighting_ShiftsEveryPixelOfAnImageByTheSameRgbOffset()
    {
        const int side = 8, size = 8, plane = size * size;
        byte[] image = RandomImage(side, 6);
        ImageStatistics statistics = Identity(BasisEigenValues, Basis);
        var options = new ImagePipelineOptions { Side = side, CropSize = size, RandomCrop = false, HorizontalFlip = false, LightingSigma = 0.1f };
        var lit = new ImagePipeline(options, statistics);
        var plain = new ImagePipeline(options with { LightingSigma = 0 }, statistics);
        float[] withLight = new float[3 * plane], without = new float[3 * plane];

        for (ulong seed = 0; seed < 5; seed++)
        {
            var random = new SplitMixRandom(seed);
            lit.Training(image, withLight, ref random);
            var unused = new SplitMixRandom(seed);
            plain.Training(image, without, ref unused);
            for (int c = 0; c < 3; c++)
            {
                float offset = withLight[c * plane] - without[c * plane];
                Assert.NotEqual(0f, offset);
                // (x + o) - x in float: one rounding of a value below 1.1, at most 2^-24 * 2 each way; 2.5e-7 covers it.
                for (int i = 0; i < plane; i++) Assert.Equal(offset, withLight[c * plane + i] - without[c * plane + i], 2.5e-7f);
            }
        }
    }

    [Theory]
    [InlineData(LightingScale.StandardDeviation)]
    [InlineData(LightingScale.Eigenvalue)]
    public void LightingOffsets_FollowTheStatedDistribution(LightingScale scale)
    {
        // offset = sum_i alpha_i s_i p_i with alpha_i ~ N(0, 0.1^2): its coordinate along p_i is alpha_i s_i, normal with
        // standard deviation 0.1 s_i, and the three coordinates are independent.
        const int n = 20_000;
        const double sigma = 0.1;
        var lighting = new PcaLighting(Identity(BasisEigenValues, Basis), (float)sigma, scale);
        var coordinates = new double[3, n];
        var random = new SplitMixRandom(11);
        Span<float> offset = stackalloc float[3];
        for (int k = 0; k < n; k++)
        {
            lighting.DrawOffset(ref random, offset);
            for (int i = 0; i < 3; i++)
                coordinates[i, k] = offset[0] * Basis[i] + offset[1] * Basis[3 + i] + offset[2] * Basis[6 + i];
        }
        for (int i = 0; i < 3; i++)
        {
            double s = scale == LightingScale.Eigenvalue ? BasisEigenValues[i] : Math.Sqrt(BasisEigenValues[i]);
            double expectedStd = sigma * s;
            double mean = 0, squares = 0, withinOne = 0;
            for (int k = 0; k < n; k++)
            {
                mean += coordinates[i, k];
                squares += coordinates[i, k] * coordinates[i, k];
                if (Math.Abs(coordinates[i, k]) < expectedStd) withinOne++;
            }
            mean /= n;
            double std = Math.Sqrt(squares / n - mean * mean);
            // Six standard errors: the mean's is std/√n, the standard deviation's std/√(2n) (0.5% here), a
            // proportion's √(p(1-p)/n); a correct sampler fails one of these about once in 10^8 runs.
            Assert.InRange(mean, -6 * expectedStd / Math.Sqrt(n), 6 * expectedStd / Math.Sqrt(n));
            Assert.InRange(std / expectedStd, 1 - 6 / Math.Sqrt(2.0 * n), 1 + 6 / Math.Sqrt(2.0 * n));
            Assert.InRange(withinOne / n, 0.6827 - 6 * Math.Sqrt(0.6827 * 0.3173 / n), 0.6827 + 6 * Math.Sqrt(0.6827 * 0.3173 / n));
        }
        double correlation = 0, norm0 = 0, norm1 = 0;
        for (int k = 0; k < n; k++)
        {
            correlation += coordinates[0, k] * coordinates[1, k];
            norm0 += coordinates[0, k] * coordinates[0, k];
            norm1 += coordinates[1, k] * coordinates[1, k];
        }
        Assert.InRange(correlation / Math.Sqrt(norm0 * norm1), -6 / Math.Sqrt(n), 6 / Math.Sqrt(n));
    }

    [Fact]
    public void Gaussian_HasMeanZeroAndVarianceOne()
    {
        const int n = 100_000;
        var random = new SplitMixRandom(3);
        double sum = 0, squares = 0;
        for (int i = 0; i < n; i++)
        {
            double x = random.NextGaussian();
            Assert.True(double.IsFinite(x));
            sum += x;
            squares += x * x;
        }
        double mean = sum / n, variance = squares / n - mean * mean;
        // Six standard errors: 1/√n for the mean, √(2/n) for the variance.
        Assert.InRange(mean, -6 / Math.Sqrt(n), 6 / Math.Sqrt(n));
        Assert.InRange(variance, 1 - 6 * Math.Sqrt(2.0 / n), 1 + 6 * Math.Sqrt(2.0 / n));
    }

    [Fact]
    public void Options_OutOfRange_AreRefusedNamingTheOption()
    {
        Assert.Contains("ImagePipelineOptions.CropSize 300", Assert.Throws<ArgumentException>(() => new ImagePipelineOptions { CropSize = 300 }.Validate()).Message);
        Assert.Contains("ImagePipelineOptions.LightingSigma -1", Assert.Throws<ArgumentException>(() => new ImagePipelineOptions { LightingSigma = -1 }.Validate()).Message);
    }
}
