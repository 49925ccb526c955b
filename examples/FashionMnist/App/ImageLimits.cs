namespace FashionMnist.App;

/// <summary>
/// The largest image the program decodes. Checked from the file's header before decoding, so that a tiny file that
/// declares a huge image costs nothing.
/// </summary>
public static class ImageLimits
{
    /// <summary>Pixels (8K UHD is 33 megapixels).</summary>
    public const long MaxPixels = 40_000_000;

    /// <summary>The longest side, in pixels.</summary>
    public const int MaxSide = 32_768;
}
