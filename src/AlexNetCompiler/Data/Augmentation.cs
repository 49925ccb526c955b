namespace AlexNetCompiler.Data;

/// <summary>
/// Which augmentations to apply to training images. The paper's (Krizhevsky et al. 2012, section 4.1):
/// random crops (here: pad then crop back to the input size, the small-image form) and horizontal flips.
/// The article's additions: random rotation within ±MaxRotationDegrees (bilinear) and brightness/contrast jitter.
/// </summary>
public sealed record AugmentationOptions
{
    public bool RandomCrop { get; init; }
    /// <summary>Zero padding on each side before a random crop of the original size.</summary>
    public int CropPadding { get; init; } = 2;
    public bool HorizontalFlip { get; init; }
    public bool Rotation { get; init; }
    public float MaxRotationDegrees { get; init; } = 10f;
    public bool BrightnessContrast { get; init; }
    /// <summary>Additive brightness shift drawn from [-Brightness, Brightness] (pixel values are in [0, 1]).</summary>
    public float Brightness { get; init; } = 0.1f;
    /// <summary>Contrast factor drawn from [1 - Contrast, 1 + Contrast], applied around the image mean.</summary>
    public float Contrast { get; init; } = 0.2f;

    public static AugmentationOptions None { get; } = new();
    public static AugmentationOptions Paper { get; } = new() { RandomCrop = true, HorizontalFlip = true };

    public bool Any => RandomCrop || HorizontalFlip || Rotation || BrightnessContrast;

    public override string ToString()
    {
        var parts = new List<string>();
        if (RandomCrop) parts.Add($"crop(pad {CropPadding})");
        if (HorizontalFlip) parts.Add("flip");
        if (Rotation) parts.Add($"rotate(±{MaxRotationDegrees:0.#}°)");
        if (BrightnessContrast) parts.Add($"jitter(b ±{Brightness:0.##}, c ±{Contrast:0.##})");
        return parts.Count == 0 ? "none" : string.Join(", ", parts);
    }
}

/// <summary>
/// Applies <see cref="AugmentationOptions"/> to one CHW sample with values in [0, 1]. The random choices
/// come from the generator passed in, so a sample's augmentation is a pure function of its stream.
/// Order: rotation, crop, flip, brightness/contrast.
/// </summary>
public sealed class Augmenter
{
    public Augmenter(AugmentationOptions options, int channels, int height, int width)
    {
        if (options.CropPadding < 0) throw new ArgumentOutOfRangeException(nameof(options), $"CropPadding {options.CropPadding} must be >= 0.");
        if (!(options.MaxRotationDegrees >= 0 && options.MaxRotationDegrees <= 180)) throw new ArgumentOutOfRangeException(nameof(options), $"MaxRotationDegrees {options.MaxRotationDegrees} must be in [0, 180].");
        if (options.Brightness < 0 || options.Contrast < 0 || options.Contrast > 1) throw new ArgumentOutOfRangeException(nameof(options), "Brightness must be >= 0 and Contrast in [0, 1].");
        Options = options;
        Channels = channels;
        Height = height;
        Width = width;
    }

    public AugmentationOptions Options { get; }
    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }
    public int SampleLength => Channels * Height * Width;

    /// <summary>
    /// Augments <paramref name="sample"/> in place; <paramref name="scratch"/> (at least SampleLength) holds
    /// intermediate results so that nothing is allocated.
    /// </summary>
    public void Apply(Span<float> sample, Span<float> scratch, ref SplitMixRandom random)
    {
        if (sample.Length != SampleLength) throw new ArgumentException($"Sample has {sample.Length} values, expected {SampleLength}.");
        scratch = scratch.Slice(0, SampleLength);
        AugmentationOptions o = Options;
        if (o.Rotation)
        {
            float degrees = random.NextSingle(-o.MaxRotationDegrees, o.MaxRotationDegrees);
            ImageOps.Rotate(sample, scratch, Channels, Height, Width, degrees);
            scratch.CopyTo(sample);
        }
        if (o.RandomCrop && o.CropPadding > 0)
        {
            int span = 2 * o.CropPadding + 1;
            int offsetY = random.NextInt(span), offsetX = random.NextInt(span);
            ImageOps.CropPadded(sample, scratch, Channels, Height, Width, o.CropPadding, offsetY, offsetX);
            scratch.CopyTo(sample);
        }
        if (o.HorizontalFlip && random.NextBool())
            ImageOps.FlipHorizontal(sample, Channels, Height, Width);
        if (o.BrightnessContrast)
        {
            float brightness = random.NextSingle(-o.Brightness, o.Brightness);
            float contrast = random.NextSingle(1f - o.Contrast, 1f + o.Contrast);
            ImageOps.AdjustBrightnessContrast(sample, brightness, contrast);
        }
    }
}

/// <summary>Image operations on CHW float samples. Plain loops: these are small images and run off the training thread.</summary>
public static class ImageOps
{
    /// <summary>
    /// Zero-pads the image by <paramref name="padding"/> on each side and crops an H x W window whose top-left
    /// corner is (offsetY, offsetX) in padded coordinates, offsets in [0, 2*padding].
    /// destination[c, y, x] = source[c, y + offsetY - padding, x + offsetX - padding], or 0 outside.
    /// </summary>
    public static void CropPadded(ReadOnlySpan<float> source, Span<float> destination, int channels, int height, int width, int padding, int offsetY, int offsetX)
    {
        if ((uint)offsetY > (uint)(2 * padding) || (uint)offsetX > (uint)(2 * padding))
            throw new ArgumentOutOfRangeException(nameof(offsetY), $"Crop offsets ({offsetY}, {offsetX}) must be in [0, {2 * padding}].");
        int shiftY = offsetY - padding, shiftX = offsetX - padding;
        int plane = height * width;
        for (int c = 0; c < channels; c++)
        {
            ReadOnlySpan<float> src = source.Slice(c * plane, plane);
            Span<float> dst = destination.Slice(c * plane, plane);
            for (int y = 0; y < height; y++)
            {
                int sy = y + shiftY;
                Span<float> row = dst.Slice(y * width, width);
                if ((uint)sy >= (uint)height)
                {
                    row.Clear();
                    continue;
                }
                for (int x = 0; x < width; x++)
                {
                    int sx = x + shiftX;
                    row[x] = (uint)sx < (uint)width ? src[sy * width + sx] : 0f;
                }
            }
        }
    }

    /// <summary>Mirrors every row in place: x -> W - 1 - x.</summary>
    public static void FlipHorizontal(Span<float> sample, int channels, int height, int width)
    {
        for (int row = 0; row < channels * height; row++)
            sample.Slice(row * width, width).Reverse();
    }

    /// <summary>
    /// Rotates by <paramref name="degrees"/> (counter-clockwise on screen) about the image centre with
    /// bilinear interpolation; pixels that map outside the source are 0. Each destination pixel (x, y)
    /// samples the source at the inverse rotation of its offset from the centre ((W-1)/2, (H-1)/2).
    /// </summary>
    public static void Rotate(ReadOnlySpan<float> source, Span<float> destination, int channels, int height, int width, float degrees)
    {
        double radians = degrees * Math.PI / 180.0;
        double cos = Math.Cos(radians), sin = Math.Sin(radians);
        double centreX = (width - 1) * 0.5, centreY = (height - 1) * 0.5;
        int plane = height * width;
        for (int y = 0; y < height; y++)
        {
            double dy = y - centreY;
            for (int x = 0; x < width; x++)
            {
                double dx = x - centreX;
                // Inverse rotation (screen y points down, so counter-clockwise on screen is this sign choice).
                double sx = cos * dx - sin * dy + centreX;
                double sy = sin * dx + cos * dy + centreY;
                int x0 = (int)Math.Floor(sx), y0 = (int)Math.Floor(sy);
                float fx = (float)(sx - x0), fy = (float)(sy - y0);
                float w00 = (1 - fx) * (1 - fy), w01 = fx * (1 - fy), w10 = (1 - fx) * fy, w11 = fx * fy;
                bool in00 = Inside(x0, y0, width, height), in01 = Inside(x0 + 1, y0, width, height);
                bool in10 = Inside(x0, y0 + 1, width, height), in11 = Inside(x0 + 1, y0 + 1, width, height);
                for (int c = 0; c < channels; c++)
                {
                    ReadOnlySpan<float> src = source.Slice(c * plane, plane);
                    float value = 0f;
                    if (in00) value += w00 * src[y0 * width + x0];
                    if (in01) value += w01 * src[y0 * width + x0 + 1];
                    if (in10) value += w10 * src[(y0 + 1) * width + x0];
                    if (in11) value += w11 * src[(y0 + 1) * width + x0 + 1];
                    destination[c * plane + y * width + x] = value;
                }
            }
        }
    }

    /// <summary>x' = clamp((x - mean) * contrast + mean + brightness, 0, 1), mean over the whole sample.</summary>
    public static void AdjustBrightnessContrast(Span<float> sample, float brightness, float contrast)
    {
        double sum = 0;
        foreach (float v in sample) sum += v;
        float mean = sample.Length == 0 ? 0f : (float)(sum / sample.Length);
        for (int i = 0; i < sample.Length; i++)
            sample[i] = Math.Clamp((sample[i] - mean) * contrast + mean + brightness, 0f, 1f);
    }

    private static bool Inside(int x, int y, int width, int height) => (uint)x < (uint)width && (uint)y < (uint)height;
}
