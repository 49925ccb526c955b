using System.Diagnostics;
using System.Globalization;

namespace AlexNetCompiler.Bench;

/// <summary>Min, median and max of repeated timings, in seconds.</summary>
internal readonly record struct TimingSummary(double Min, double Median, double Max)
{
    public static TimingSummary Of(IReadOnlyList<double> seconds)
    {
        if (seconds.Count == 0) throw new ArgumentException("No timings.", nameof(seconds));
        double[] sorted = [.. seconds];
        Array.Sort(sorted);
        int n = sorted.Length;
        double median = n % 2 == 1 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
        return new TimingSummary(sorted[0], median, sorted[^1]);
    }
}

/// <summary>
/// How a timed action is warmed and measured. Warming ends when the last <see cref="StableWindow"/> calls agree within
/// <see cref="StableSpread"/> (max/min - 1) — JIT tiers, scratch growth, a library's first-call allocations and the
/// caches have settled — or at the caps, which the result reports as not stable.
/// </summary>
internal static class Timing
{
    public const int StableWindow = 3;
    public const double StableSpread = 0.05;
    public const int MinWarmups = 3;
    public const int MaxWarmups = 40;
    public static readonly TimeSpan MaxWarmupTime = TimeSpan.FromSeconds(90);

    public sealed record Result(int Warmups, bool Stable, double[] Seconds);

    public static Result WarmThenTime(int repetitions, Action action)
    {
        var warm = new List<double>();
        var total = Stopwatch.StartNew();
        bool stable = false;
        while (warm.Count < MaxWarmups && total.Elapsed < MaxWarmupTime)
        {
            warm.Add(TimeOnce(action));
            if (warm.Count >= Math.Max(MinWarmups, StableWindow) && Spread(warm.TakeLast(StableWindow)) <= StableSpread)
            {
                stable = true;
                break;
            }
        }
        var seconds = new double[repetitions];
        for (int i = 0; i < repetitions; i++) seconds[i] = TimeOnce(action);
        return new Result(warm.Count, stable, seconds);
    }

    private static double TimeOnce(Action action)
    {
        long start = Stopwatch.GetTimestamp();
        action();
        return Stopwatch.GetElapsedTime(start).TotalSeconds;
    }

    private static double Spread(IEnumerable<double> times)
    {
        double min = times.Min(), max = times.Max();
        return max / min - 1;
    }

    public static string Format(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}
