namespace AlexNetCompiler.Data;

/// <summary>
/// How the PCA lighting shift is scaled along each principal component. The paper writes the shift as
/// sum_i alpha_i * lambda_i * p_i with lambda_i the eigenvalue (a variance), which makes its size depend on the
/// pixel unit (0..1 or 0..255); scaling by sqrt(lambda_i), the standard deviation along p_i, does not.
/// </summary>
public enum LightingScale
{
    /// <summary>sqrt(lambda_i): the standard deviation of the training pixels along p_i (the default).</summary>
    StandardDeviation,
    /// <summary>lambda_i as the paper writes it, with pixel values in [0, 1].</summary>
    Eigenvalue,
}

/// <summary>
/// The paper's input pipeline for full-size images (Krizhevsky et al. 2012, section 4.1), as options: random crops
/// of the network's input size from the stored Side x Side square, horizontal flips, PCA lighting, then per-channel
/// normalisation. Evaluation takes the centre crop, or the ten views (four corners and the centre, and their mirror images).
/// </summary>
public sealed record ImagePipelineOptions
{
    /// <summary>Shorter side of the stored images (the paper's 256); the centre square of that side is kept.</summary>
    public int Side { get; init; } = 256;
    /// <summary>Crop side: the network's input (227 for the canonical AlexNet, 224 for torchvision's).</summary>
    public int CropSize { get; init; } = 227;
    /// <summary>Random crop position in training; off: the centre crop.</summary>
    public bool RandomCrop { get; init; } = true;
    public bool HorizontalFlip { get; init; } = true;
    /// <summary>Standard deviation of the lighting coefficients alpha_i (the paper's 0.1); 0 turns lighting off.</summary>
    public float LightingSigma { get; init; } = 0.1f;
    public LightingScale LightingScale { get; init; } = LightingScale.StandardDeviation;

    public void Validate()
    {
        if (Side < 1) throw new ArgumentException($"ImagePipelineOptions.Side {Side}: must be positive.");
        if (CropSize < 1 || CropSize > Side) throw new ArgumentException($"ImagePipelineOptions.CropSize {CropSize}: must be in [1, {Side}] (ImagePipelineOptions.Side {Side}).");
        if (!(LightingSigma >= 0 && LightingSigma <= 10)) throw new ArgumentException($"ImagePipelineOptions.LightingSigma {LightingSigma}: must be in [0, 10] (0 = off, the paper's 0.1).");
    }

    public override string ToString()
    {
        var parts = new List<string> { $"shorter side {Side}, centre {Side}x{Side}", RandomCrop ? $"random {CropSize} crops" : $"centre {CropSize} crop" };
        if (HorizontalFlip) parts.Add("flip");
        if (LightingSigma > 0) parts.Add($"PCA lighting (sigma {LightingSigma:0.###}, {LightingScale})");
        return string.Join(", ", parts);
    }
}

/// <summary>
/// The training images' colour statistics: per-channel mean and standard deviation of the pixel values (in [0, 1]),
/// and the eigen decomposition of their 3x3 RGB covariance for PCA lighting.
/// </summary>
public sealed record ImageStatistics(float[] Mean, float[] Std, double[] Covariance, double[] EigenValues, double[] EigenVectors)
{
    /// <summary>Normalisation by these means and standard deviations.</summary>
    public Normalization Normalization => new(Mean, Std);

    /// <summary>Principal component i (unit length): column i of <see cref="EigenVectors"/>, a row-major 3x3 matrix.</summary>
    public double[] Component(int i) => [EigenVectors[i], EigenVectors[3 + i], EigenVectors[6 + i]];

    /// <summary>
    /// Statistics over the pixels of <paramref name="set"/>, or of at most <paramref name="maxImages"/> of its images
    /// spread evenly through it (a few thousand images estimate a 3x3 covariance well; a whole ImageNet would take minutes).
    /// </summary>
    public static ImageStatistics Compute(ImageSet set, int maxImages = 10_000)
    {
        if (maxImages <= 0) throw new ArgumentOutOfRangeException(nameof(maxImages), $"maxImages {maxImages}: must be positive.");
        if (set.Count == 0) throw new InvalidDataException($"{set.Name}: no images to compute the colour statistics from.");
        int used = Math.Min(set.Count, maxImages);
        var sums = new double[3];
        var products = new double[9];
        int plane = set.Side * set.Side;
        for (int k = 0; k < used; k++)
        {
            ReadOnlySpan<byte> image = set.Pixels((int)((long)k * set.Count / used));
            Accumulate(image, plane, sums, products);
        }
        return FromSums(sums, products, (double)used * plane);
    }

    /// <summary>Statistics of the given uint8 CHW RGB images (for tests and small sets).</summary>
    public static ImageStatistics Compute(IEnumerable<byte[]> images, int plane)
    {
        var sums = new double[3];
        var products = new double[9];
        long pixels = 0;
        foreach (byte[] image in images)
        {
            Accumulate(image, plane, sums, products);
            pixels += plane;
        }
        if (pixels == 0) throw new InvalidDataException("No images to compute the colour statistics from.");
        return FromSums(sums, products, pixels);
    }

    private static void Accumulate(ReadOnlySpan<byte> image, int plane, double[] sums, double[] products)
    {
        ReadOnlySpan<byte> r = image.Slice(0, plane), g = image.Slice(plane, plane), b = image.Slice(2 * plane, plane);
        // Integer sums per image are exact (255^2 * 4096^2 = 2^40 pixels' worth fits a long many times over); doubles only across images.
        long sr = 0, sg = 0, sb = 0, rr = 0, rg = 0, rb = 0, gg = 0, gb = 0, bb = 0;
        for (int i = 0; i < plane; i++)
        {
            int x = r[i], y = g[i], z = b[i];
            sr += x; sg += y; sb += z;
            rr += x * x; rg += x * y; rb += x * z; gg += y * y; gb += y * z; bb += z * z;
        }
        sums[0] += sr; sums[1] += sg; sums[2] += sb;
        products[0] += rr; products[1] += rg; products[2] += rb;
        products[4] += gg; products[5] += gb; products[8] += bb;
    }

    private static ImageStatistics FromSums(double[] sums, double[] products, double count)
    {
        const double unit = 1.0 / 255.0;
        var mean = new double[3];
        for (int c = 0; c < 3; c++) mean[c] = sums[c] / count * unit;
        var covariance = new double[9];
        for (int i = 0; i < 3; i++)
            for (int j = i; j < 3; j++)
            {
                double value = products[i * 3 + j] / count * unit * unit - mean[i] * mean[j];
                covariance[i * 3 + j] = covariance[j * 3 + i] = value;
            }
        var std = new float[3];
        for (int c = 0; c < 3; c++) std[c] = (float)Math.Max(Math.Sqrt(Math.Max(covariance[c * 4], 0)), 1e-6);
        (double[] values, double[] vectors) = SymmetricEigen3(covariance);
        return new ImageStatistics(mean.Select(m => (float)m).ToArray(), std, covariance, values, vectors);
    }

    /// <summary>
    /// Eigenvalues (descending) and unit eigenvectors (the columns of a row-major 3x3 matrix) of a symmetric 3x3
    /// matrix, by cyclic Jacobi rotations until the off-diagonal is below 1e-15 of the matrix's size.
    /// </summary>
    public static (double[] Values, double[] Vectors) SymmetricEigen3(double[] matrix)
    {
        if (matrix.Length != 9) throw new ArgumentException("A 3x3 matrix has 9 values.");
        var a = (double[])matrix.Clone();
        double[] v = [1, 0, 0, 0, 1, 0, 0, 0, 1];
        double scale = Math.Max(a.Select(Math.Abs).Max(), double.Epsilon);
        for (int sweep = 0; sweep < 64; sweep++)
        {
            double off = Math.Abs(a[1]) + Math.Abs(a[2]) + Math.Abs(a[5]);
            if (off <= 1e-15 * scale) break;
            foreach ((int p, int q) in new[] { (0, 1), (0, 2), (1, 2) })
            {
                double apq = a[p * 3 + q];
                if (apq == 0) continue;
                // The rotation that zeroes a[p, q] (Golub and Van Loan, "Matrix Computations", the symmetric Schur decomposition).
                double theta = (a[q * 3 + q] - a[p * 3 + p]) / (2 * apq);
                double t = Math.Sign(theta == 0 ? 1 : theta) / (Math.Abs(theta) + Math.Sqrt(theta * theta + 1));
                double c = 1 / Math.Sqrt(t * t + 1), s = t * c;
                for (int k = 0; k < 3; k++)
                {
                    double akp = a[k * 3 + p], akq = a[k * 3 + q];
                    a[k * 3 + p] = c * akp - s * akq;
                    a[k * 3 + q] = s * akp + c * akq;
                }
                for (int k = 0; k < 3; k++)
                {
                    double apk = a[p * 3 + k], aqk = a[q * 3 + k];
                    a[p * 3 + k] = c * apk - s * aqk;
                    a[q * 3 + k] = s * apk + c * aqk;
                }
                for (int k = 0; k < 3; k++)
                {
                    double vkp = v[k * 3 + p], vkq = v[k * 3 + q];
                    v[k * 3 + p] = c * vkp - s * vkq;
                    v[k * 3 + q] = s * vkp + c * vkq;
                }
            }
        }
        int[] order = [0, 1, 2];
        Array.Sort(order, (i, j) => a[j * 4].CompareTo(a[i * 4]));
        var values = order.Select(i => a[i * 4]).ToArray();
        var vectors = new double[9];
        for (int column = 0; column < 3; column++)
            for (int row = 0; row < 3; row++) vectors[row * 3 + column] = v[row * 3 + order[column]];
        return (values, vectors);
    }
}

/// <summary>
/// PCA colour lighting (Krizhevsky et al. 2012, section 4.1): to every pixel [R, G, B] of an image add the same
/// offset sum_i alpha_i * s_i * p_i, with p_i the eigenvectors of the training pixels' RGB covariance, s_i their
/// eigenvalue or its square root (<see cref="LightingScale"/>), and alpha_i ~ N(0, sigma^2) drawn once per image.
/// </summary>
public sealed class PcaLighting
{
    private readonly double[] _scaledComponents; // row-major: column i is s_i * p_i

    public PcaLighting(ImageStatistics statistics, float sigma, LightingScale scale)
    {
        Sigma = sigma;
        _scaledComponents = new double[9];
        for (int i = 0; i < 3; i++)
        {
            double lambda = Math.Max(statistics.EigenValues[i], 0); // rounding can leave a tiny negative eigenvalue
            double s = scale == LightingScale.Eigenvalue ? lambda : Math.Sqrt(lambda);
            for (int row = 0; row < 3; row++) _scaledComponents[row * 3 + i] = s * statistics.EigenVectors[row * 3 + i];
        }
    }

    public float Sigma { get; }

    /// <summary>Draws alpha and writes the RGB offset for one image.</summary>
    public void DrawOffset(ref SplitMixRandom random, Span<float> offset)
    {
        double a0 = Sigma * random.NextGaussian(), a1 = Sigma * random.NextGaussian(), a2 = Sigma * random.NextGaussian();
        for (int row = 0; row < 3; row++)
            offset[row] = (float)(a0 * _scaledComponents[row * 3] + a1 * _scaledComponents[row * 3 + 1] + a2 * _scaledComponents[row * 3 + 2]);
    }
}

/// <summary>Crops, mirrors and shifts of uint8 CHW squares into float CHW samples. Plain loops; they run off the training thread.</summary>
public static class ImageTransforms
{
    /// <summary>
    /// destination[c, y, x] = image[c, top + y, left + x'] / 255 with x' = x, or size - 1 - x when mirrored: a size x size
    /// window of a side x side image, which must lie inside it.
    /// </summary>
    public static void Crop(ReadOnlySpan<byte> image, int channels, int side, int top, int left, int size, bool mirror, Span<float> destination)
    {
        if (top < 0 || left < 0 || top + size > side || left + size > side)
            throw new ArgumentOutOfRangeException(nameof(top), $"A {size}x{size} crop at ({top}, {left}) leaves the {side}x{side} image.");
        const float scale = 1f / 255f;
        for (int c = 0; c < channels; c++)
            for (int y = 0; y < size; y++)
            {
                ReadOnlySpan<byte> row = image.Slice(c * side * side + (top + y) * side + left, size);
                Span<float> target = destination.Slice((c * size + y) * size, size);
                if (mirror)
                    for (int x = 0; x < size; x++) target[x] = row[size - 1 - x] * scale;
                else
                    for (int x = 0; x < size; x++) target[x] = row[x] * scale;
            }
    }

    /// <summary>A uniformly random top-left corner of a size x size crop inside a side x side image.</summary>
    public static (int Top, int Left) RandomCorner(int side, int size, ref SplitMixRandom random) =>
        (random.NextInt(side - size + 1), random.NextInt(side - size + 1));

    /// <summary>The top-left corners of the five views: the four corners, then the centre.</summary>
    public static (int Top, int Left)[] FiveViewCorners(int side, int size)
    {
        int far = side - size, centre = (side - size) / 2;
        return [(0, 0), (0, far), (far, 0), (far, far), (centre, centre)];
    }

    /// <summary>Adds offset[c] to every value of channel c.</summary>
    public static void AddPerChannel(Span<float> sample, ReadOnlySpan<float> offset, int plane)
    {
        for (int c = 0; c < offset.Length; c++)
        {
            float shift = offset[c];
            Span<float> channel = sample.Slice(c * plane, plane);
            for (int i = 0; i < channel.Length; i++) channel[i] += shift;
        }
    }
}

/// <summary>
/// The pipeline with its training statistics: turns a stored square into a network input. Each training sample's
/// random choices come from the generator passed in, so a sample is a pure function of its stream.
/// </summary>
public sealed class ImagePipeline
{
    public const int TestViewCount = 10;

    public ImagePipeline(ImagePipelineOptions options, ImageStatistics statistics)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(statistics);
        options.Validate();
        Options = options;
        Statistics = statistics;
        Normalization = statistics.Normalization;
        Lighting = options.LightingSigma > 0 ? new PcaLighting(statistics, options.LightingSigma, options.LightingScale) : null;
    }

    public ImagePipelineOptions Options { get; }
    public ImageStatistics Statistics { get; }
    public Normalization Normalization { get; }
    public PcaLighting? Lighting { get; }
    public int SampleLength => ImageCache.Channels * Options.CropSize * Options.CropSize;

    /// <summary>One training sample: crop (random or centre), flip with probability 1/2, lighting, normalisation.</summary>
    public void Training(ReadOnlySpan<byte> image, Span<float> destination, ref SplitMixRandom random)
    {
        int side = Options.Side, size = Options.CropSize;
        (int top, int left) = Options.RandomCrop ? ImageTransforms.RandomCorner(side, size, ref random) : ImageTransforms.FiveViewCorners(side, size)[4];
        bool mirror = Options.HorizontalFlip && random.NextBool();
        ImageTransforms.Crop(image, ImageCache.Channels, side, top, left, size, mirror, destination);
        if (Lighting is not null)
        {
            Span<float> offset = stackalloc float[3];
            Lighting.DrawOffset(ref random, offset);
            ImageTransforms.AddPerChannel(destination, offset, size * size);
        }
        Normalization.Apply(destination, size, size);
    }

    /// <summary>The centre crop, normalised: the single evaluation view.</summary>
    public void Centre(ReadOnlySpan<byte> image, Span<float> destination) => View(image, CentreView, mirror: false, destination);

    /// <summary>Index of the centre crop among <see cref="ImageTransforms.FiveViewCorners"/>.</summary>
    public const int CentreView = 4;

    /// <summary>
    /// One of the paper's test views, normalised: crop <paramref name="crop"/> of <see cref="ImageTransforms.FiveViewCorners"/>
    /// (0-3 the corners, <see cref="CentreView"/> the centre) at the full input size, mirrored when asked.
    /// </summary>
    public void View(ReadOnlySpan<byte> image, int crop, bool mirror, Span<float> destination)
    {
        int side = Options.Side, size = Options.CropSize;
        (int top, int left) = ImageTransforms.FiveViewCorners(side, size)[crop];
        ImageTransforms.Crop(image, ImageCache.Channels, side, top, left, size, mirror, destination);
        Normalization.Apply(destination, size, size);
    }

    /// <summary>
    /// The paper's ten test views of one image, normalised, one after another in <paramref name="destination"/>: the
    /// four corner crops and the centre crop, then the same five mirrored. Their softmax outputs are averaged.
    /// </summary>
    public void TenViews(ReadOnlySpan<byte> image, Span<float> destination)
    {
        int length = SampleLength;
        for (int v = 0; v < TestViewCount; v++) View(image, v % 5, mirror: v >= 5, destination.Slice(v * length, length));
    }
}
