using System.Globalization;

namespace FashionMnist.App;

/// <summary>
/// The trainer's checkpoint metadata, read with every number checked against its range: a damaged or edited file is
/// an InvalidDataException naming the file and the key, never an OverflowException or a NaN found epochs later.
/// </summary>
internal sealed class ResumeMetadata(string path, IReadOnlyDictionary<string, string> values)
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    public string Text(string key) =>
        values.TryGetValue(key, out string? value) ? value : throw new InvalidDataException($"{path}: metadata '{key}' is missing; it was not written by this trainer.");

    public int Int(string key, int min, int max = int.MaxValue) => CheckedInt(key, Text(key), min, max);

    public long Long(string key, long min) =>
        long.TryParse(Text(key), NumberStyles.AllowLeadingSign, Invariant, out long value) && value >= min
            ? value
            : throw OutOfRange(key, Text(key), $"an integer >= {min}");

    public ulong ULong(string key) =>
        ulong.TryParse(Text(key), NumberStyles.None, Invariant, out ulong value) ? value : throw OutOfRange(key, Text(key), "a non-negative integer");

    /// <summary>A finite number in [min, max]; NaN only where <paramref name="nanAllowed"/> (a value not yet measured).</summary>
    public double Double(string key, double min, double max = double.MaxValue, bool nanAllowed = false) => CheckedDouble(key, Text(key), min, max, nanAllowed);

    public float PositiveFloat(string key) =>
        float.TryParse(Text(key), NumberStyles.Float, Invariant, out float value) && value > 0 && float.IsFinite(value)
            ? value
            : throw OutOfRange(key, Text(key), "a positive number");

    /// <summary>One row of the 'history' key: eight comma-separated fields, as the trainer writes them.</summary>
    public EpochRecord HistoryRow(string row, int index)
    {
        string key = $"history row {index + 1}";
        string[] f = row.Split(',');
        if (f.Length != 8) throw new InvalidDataException($"{path}: metadata {key} '{row}' does not have 8 fields.");
        float learningRate = float.TryParse(f[1], NumberStyles.Float, Invariant, out float lr) && lr > 0 && float.IsFinite(lr)
            ? lr
            : throw OutOfRange(key + " learning rate", f[1], "a positive number");
        return new EpochRecord(
            CheckedInt(key + " epoch", f[0], 1, int.MaxValue),
            learningRate,
            CheckedDouble(key + " train loss", f[2], 0, double.MaxValue, nanAllowed: false),
            CheckedDouble(key + " train accuracy", f[3], 0, 1, nanAllowed: false),
            CheckedDouble(key + " test loss", f[4], 0, double.MaxValue, nanAllowed: false),
            CheckedDouble(key + " test accuracy", f[5], 0, 1, nanAllowed: false),
            CheckedDouble(key + " seconds", f[6], 0, double.MaxValue, nanAllowed: false),
            CheckedDouble(key + " images per second", f[7], 0, double.MaxValue, nanAllowed: false));
    }

    private int CheckedInt(string key, string text, int min, int max) =>
        int.TryParse(text, NumberStyles.AllowLeadingSign, Invariant, out int value) && value >= min && value <= max
            ? value
            : throw OutOfRange(key, text, max == int.MaxValue ? $"an integer >= {min}" : $"an integer in [{min}, {max}]");

    private double CheckedDouble(string key, string text, double min, double max, bool nanAllowed)
    {
        if (double.TryParse(text, NumberStyles.Float, Invariant, out double value) && ((value >= min && value <= max) || (nanAllowed && double.IsNaN(value))))
            return value;
        string range = max == double.MaxValue ? $"a number >= {min.ToString(Invariant)}" : $"a number in [{min.ToString(Invariant)}, {max.ToString(Invariant)}]";
        throw OutOfRange(key, text, range + (nanAllowed ? " or NaN" : ""));
    }

    private InvalidDataException OutOfRange(string key, string text, string expected) =>
        new($"{path}: metadata '{key}' is '{Shorten(text)}', not {expected}; the checkpoint is damaged or was edited.");

    private static string Shorten(string text) => text.Length <= 40 ? text : text[..40] + "...";
}
